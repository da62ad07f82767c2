// Package logcap bounds the values ecr-preflight writes to its logs.
//
// Many logged values come from the workload (image references, container
// names, annotations) or from AWS (error messages), and a log line must not
// grow with them: a hostile 1 MiB image string is logged as its first
// kilobyte and the number of bytes cut, a pod of 500 images as its first
// Entries images and the number left out. Every function returns its input
// unchanged, without allocating, when it is within the caps.
package logcap

import (
	"fmt"
	"unicode/utf8"
)

const (
	// Value is the most runes of one logged value: a whole valid image
	// reference (at most 780 characters), an AWS error message, or a
	// finding's message or fix fits.
	Value = 1024
	// Text is the most runes of a composed text, such as a denial message
	// with a line per failing image.
	Text = 8192
	// Entries is the most entries of one logged list; the number of the
	// others is logged in their place.
	Entries = 32
)

// String cuts s to Value runes.
func String(s string) string { return Cut(s, Value) }

// Cut returns s when it has at most n runes, else its first n runes, an
// ellipsis and the number of bytes cut: "aaaa…[+1047552 bytes]". It reads
// at most n runes of s.
func Cut(s string, n int) string {
	if len(s) <= n { // n bytes hold at least n runes
		return s
	}
	i := 0
	for range max(n, 0) {
		if i >= len(s) {
			return s
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	if i >= len(s) {
		return s
	}
	return fmt.Sprintf("%s…[+%d bytes]", s[:i], len(s)-i)
}

// Strings caps a list: its first Entries values, each cut to Value runes,
// then "…[+N more]" when some were left out.
func Strings(ss []string) []string { return CutAll(ss, Entries, Value) }

// CutAll caps a list to its first n values, each cut to runes runes, then
// "…[+N more]" when some were left out.
func CutAll(ss []string, n, runes int) []string {
	if len(ss) <= n && fits(ss, runes) {
		return ss
	}
	out := make([]string, 0, min(len(ss), n)+1)
	for _, s := range ss[:min(len(ss), n)] {
		out = append(out, Cut(s, runes))
	}
	if len(ss) > n {
		out = append(out, fmt.Sprintf("…[+%d more]", len(ss)-n))
	}
	return out
}

func fits(ss []string, runes int) bool {
	for _, s := range ss {
		if len(s) > runes {
			return false
		}
	}
	return true
}

// Error wraps err so that its message, where a log prints it, is cut to
// Value runes; errors.Is and errors.As still see err. nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return capped{err}
}

type capped struct{ err error }

func (c capped) Error() string { return String(c.err.Error()) }

func (c capped) Unwrap() error { return c.err }
