package imageref

import (
	// go-digest accepts sha384 and sha512 digests only when the hash is
	// linked, as it is in any binary with crypto/tls: link it here too, so
	// that Parse reads them the same everywhere (tests included).
	_ "crypto/sha512"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// Length limits of an image reference. The grammar the kubelet and the
// container runtimes parse with (github.com/distribution/reference) bounds
// the repository name and the tag; a digest is bounded by the hash
// algorithms go-digest knows and a registry host by DNS. Their sum bounds a
// whole reference, so a longer string is rejected before any regular
// expression or scan looks at it: a hostile megabyte costs a comparison,
// not a CPU-second of backtracking.
const (
	// MaxRepositoryLength bounds the repository name (path), as the
	// grammar does after Docker Hub normalisation.
	MaxRepositoryLength = reference.RepositoryNameTotalLengthMax // 255
	// MaxTagLength bounds a tag: the grammar's tag is [\w][\w.-]{0,127}.
	// distribution/reference has no constant for it.
	MaxTagLength = 128
	// maxHostLength bounds a registry host as written: a DNS name has at
	// most 253 characters in text form (RFC 1035: 255 octets on the wire),
	// then ":" and a port of at most 5 digits. A bracketed IPv6 literal
	// ([...], at most 47) is shorter. The grammar itself does not bound a
	// host, but nothing longer resolves, so nothing longer can be pulled.
	maxHostLength = 253 + len(":65535")
	// maxDigestLength bounds a digest: go-digest accepts only the
	// algorithms it knows, the longest of which is sha512 (128 hex digits).
	maxDigestLength = len("sha512:") + 128
	// MaxReferenceLength bounds a whole reference,
	// HOST/REPOSITORY:TAG@DIGEST, with its three separators: 780.
	MaxReferenceLength = maxHostLength + 1 + MaxRepositoryLength + 1 + MaxTagLength + 1 + maxDigestLength
)

// checkLengths rejects a reference longer than the grammar allows, as a
// whole first (without looking at its content), then its tag. The
// repository name's own bound is left to the grammar, which applies it
// after normalisation and says so clearly.
func checkLengths(s string) error {
	if len(s) > MaxReferenceLength {
		return fmt.Errorf("it is %d bytes long; no pullable reference is longer than %d characters "+
			"(a %d-character registry host, a %d-character repository name, a %d-character tag and a sha512 digest)",
			len(s), MaxReferenceLength, maxHostLength, MaxRepositoryLength, MaxTagLength)
	}
	name, _, _ := strings.Cut(s, "@")
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i:], "/") {
		// After the last ':' of the name, unless a '/' follows it (then it
		// was a host's port): the tag.
		if tag := name[i+1:]; len(tag) > MaxTagLength {
			return fmt.Errorf("its tag is longer than the %d characters a tag may have (%d bytes)", MaxTagLength, len(tag))
		}
	}
	return nil
}
