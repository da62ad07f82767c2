package imageref

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const ecrHost = "123456789012.dkr.ecr.us-west-2.amazonaws.com"

// hostile are strings of 1 MiB shaped to make the grammar's regular
// expressions work hardest: without the length limits each cost close to a
// CPU-second to reject.
func hostile() map[string]string {
	const mib = 1 << 20
	return map[string]string{
		"a 1 MiB repository name":   ecrHost + "/" + strings.Repeat("a", mib),
		"1 MiB of separators":       ecrHost + "/" + strings.Repeat("a-", mib/2),
		"1 MiB of nested path":      ecrHost + "/" + strings.Repeat("a/", mib/2),
		"a 1 MiB tag":               ecrHost + "/app:" + strings.Repeat("t", mib),
		"1 MiB of upper case":       strings.Repeat("A", mib),
		"1 MiB of multi-byte runes": strings.Repeat("ポ", mib/3),
	}
}

func TestParseRejectsOverlongReferencesByLength(t *testing.T) {
	for name, s := range hostile() {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(s)
			var invalid *InvalidReferenceError
			if !errors.As(err, &invalid) || !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("Parse: %v, want an *InvalidReferenceError", err)
			}
			if want := "no pullable reference is longer than 780 characters"; !strings.Contains(invalid.Cause.Error(), want) {
				t.Errorf("cause %q does not say %q", invalid.Cause, want)
			}
			if invalid.Reference != s {
				t.Errorf("the error lost the reference")
			}
			// The message names the reference by its start and length only.
			if msg := err.Error(); len(msg) > 400 || !strings.Contains(msg, " bytes)") {
				t.Errorf("error message of %d bytes: %.200q", len(msg), msg)
			}
		})
	}
}

func TestParseLengthLimits(t *testing.T) {
	// The longest reference the limits allow: a 253-character DNS name with
	// a port, a 255-character repository name, a 128-character tag and a
	// sha512 digest. The grammar accepts it, so the total cap is not tight.
	label := strings.Repeat("h", 63) + "."
	host := label + label + label + strings.Repeat("x", 253-3*len(label)) // DNS labels have at most 63
	path := strings.Repeat("p", MaxRepositoryLength)
	tag := strings.Repeat("t", MaxTagLength)
	sha512 := "sha512:" + strings.Repeat("f", 128)
	longest := host + ":65535/" + path + ":" + tag + "@" + sha512
	if len(host) != 253 || len(longest) != MaxReferenceLength {
		t.Fatalf("test setup: host %d, reference %d characters, want 253 and %d", len(host), len(longest), MaxReferenceLength)
	}
	img, err := Parse(longest)
	if err != nil {
		t.Fatalf("the longest valid reference was rejected: %v", err)
	}
	if img.Kind != NotECR || img.Repository != path || img.Tag != tag || img.Digest != sha512 {
		t.Errorf("Parse(longest) = %+v", img)
	}

	tests := map[string]struct{ in, cause string }{
		"one character more than any pullable reference": {
			in: "x" + longest, cause: "it is 781 bytes long; no pullable reference is longer than 780 characters " +
				"(a 259-character registry host, a 255-character repository name, a 128-character tag and a sha512 digest)",
		},
		"a 129-character tag": {
			in: ecrHost + "/app:" + strings.Repeat("t", 129), cause: "its tag is longer than the 128 characters a tag may have (129 bytes)",
		},
		"a 129-character tag before a digest": {
			in: ecrHost + "/app:" + strings.Repeat("t", 129) + "@" + dgst, cause: "its tag is longer than the 128 characters a tag may have (129 bytes)",
		},
		"a 256-character repository name, bounded by the grammar itself": {
			in: ecrHost + "/" + strings.Repeat("r", 256) + ":v1", cause: "repository name must not be more than 255 characters",
		},
		"a Docker Hub name that is 255 characters only before normalisation": {
			in: strings.Repeat("r", 250), cause: "repository name must not be more than 255 characters",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.in)
			var invalid *InvalidReferenceError
			if !errors.As(err, &invalid) || invalid.Cause.Error() != tc.cause {
				t.Errorf("Parse: %v, want the cause %q", err, tc.cause)
			}
		})
	}
	t.Run("a port is not a tag", func(t *testing.T) {
		if _, err := Parse("localhost:5000/" + strings.Repeat("r", 200) + ":v1"); err != nil {
			t.Errorf("Parse: %v", err)
		}
	})
}

func TestQuoteShort(t *testing.T) {
	if got := QuoteShort("nginx"); got != `"nginx"` {
		t.Errorf("QuoteShort(nginx) = %s", got)
	}
	long := strings.Repeat("a", 63) + "ポ" + strings.Repeat("b", MaxReferenceLength)
	if got, want := QuoteShort(long), `"`+strings.Repeat("a", 63)+`..." (846 bytes)`; got != want {
		t.Errorf("QuoteShort cuts on a rune boundary: got %s, want %s", got, want)
	}
}

// BenchmarkParseHostile parses 1 MiB strings: each costs a length check,
// where the grammar's regular expressions alone took up to a CPU-second.
func BenchmarkParseHostile(b *testing.B) {
	for name, s := range hostile() {
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(s); err == nil {
					b.Fatal("accepted")
				}
			}
			// Target: a length check, not a scan (a scan of 1 MiB alone
			// takes longer than this).
			if per := b.Elapsed() / time.Duration(b.N); per > 10*time.Microsecond {
				b.Fatalf("%v per 1 MiB string, want under 10µs", per)
			}
		})
	}
}
