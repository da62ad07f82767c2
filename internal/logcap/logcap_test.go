package logcap

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	tests := map[string]struct {
		in   string
		n    int
		want string
	}{
		"short stays":                 {"nginx", 8, "nginx"},
		"exactly n runes stays":       {"ポリシー", 4, "ポリシー"},
		"long is cut with its length": {"abcdefgh", 3, "abc…[+5 bytes]"},
		"cut on a rune boundary":      {"ポリシー!", 2, "ポリ…[+7 bytes]"},
		"zero keeps nothing":          {"abc", 0, "…[+3 bytes]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Cut(tc.in, tc.n); got != tc.want {
				t.Errorf("Cut(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestStringOfAHostileMegabyte(t *testing.T) {
	for name, s := range map[string]string{
		"ASCII":      strings.Repeat("a", 1<<20),
		"multi-byte": strings.Repeat("ポ", 1<<20/3),
		"invalid":    strings.Repeat("\xff", 1<<20),
	} {
		t.Run(name, func(t *testing.T) {
			got := String(s)
			if n := utf8.RuneCountInString(got); n > Value+20 || len(got) > 4*Value+20 {
				t.Errorf("String kept %d runes, %d bytes", n, len(got))
			}
			if !strings.Contains(got, "…[+") {
				t.Errorf("String does not say it cut: %.40q", got[len(got)-40:])
			}
		})
	}
}

func TestStrings(t *testing.T) {
	short := []string{"a", "b"}
	if got := Strings(short); &got[0] != &short[0] {
		t.Error("a list within the caps was copied")
	}
	var many []string
	for i := range 500 {
		many = append(many, fmt.Sprintf("image-%d", i))
	}
	got := Strings(many)
	if len(got) != Entries+1 || got[0] != "image-0" || got[Entries-1] != "image-31" || got[Entries] != "…[+468 more]" {
		t.Errorf("Strings(500 images) = %q", got)
	}
	long := Strings([]string{strings.Repeat("x", 1<<20)})
	if len(long) != 1 || len(long[0]) > Value+20 {
		t.Errorf("a long entry was not cut: %d bytes", len(long[0]))
	}
}

func TestError(t *testing.T) {
	if Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
	err := fmt.Errorf("%s: %w", strings.Repeat("x", 1<<20), fs.ErrNotExist)
	got := Error(err)
	if len(got.Error()) > Value+20 || !errors.Is(got, fs.ErrNotExist) {
		t.Errorf("Error: %d bytes, Is(ErrNotExist) %v", len(got.Error()), errors.Is(got, fs.ErrNotExist))
	}
}
