package imageref

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/distribution/reference"
)

// Kind says whether an image is served by a private ECR registry.
type Kind int

const (
	// NotECR: any registry other than a private ECR registry (Docker Hub,
	// ECR Public, GHCR, a self-hosted mirror, ...). The preflight skips it.
	NotECR Kind = iota
	// ECRPrivate: a private ECR registry, ACCOUNT.dkr.ecr.REGION....
	ECRPrivate
)

// String returns a lower-case name for logs and JSON.
func (k Kind) String() string {
	switch k {
	case ECRPrivate:
		return "ecr-private"
	case NotECR:
		return "not-ecr"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// DefaultTag is the tag the kubelet pulls when a reference names neither a
// tag nor a digest.
const DefaultTag = "latest"

// ErrInvalidReference is matched (errors.Is) by every error Parse returns, so
// callers can tell "this reference can never be pulled" from other failures.
var ErrInvalidReference = errors.New("invalid image reference")

// InvalidReferenceError is the error Parse returns: the reference and why it
// cannot be pulled, so a message can name the cause without the prefix.
type InvalidReferenceError struct {
	Reference string
	Cause     error
}

// Error quotes the reference, shortened when it is longer than any
// pullable one: an error message must not carry a hostile megabyte.
func (e *InvalidReferenceError) Error() string {
	return fmt.Sprintf("%v %s: %v", ErrInvalidReference, QuoteShort(e.Reference), e.Cause)
}

// QuoteShort quotes a reference for a message: whole (as %q would) when it
// is no longer than MaxReferenceLength, else its first 64 bytes, an
// ellipsis and its length, so a message about a hostile string stays short.
func QuoteShort(ref string) string {
	if len(ref) <= MaxReferenceLength {
		return fmt.Sprintf("%q", ref)
	}
	const head = 64
	cut := head
	for cut > 0 && !utf8.RuneStart(ref[cut]) {
		cut--
	}
	return fmt.Sprintf("%q (%d bytes)", ref[:cut]+"...", len(ref))
}

// Is makes errors.Is(err, ErrInvalidReference) true.
func (e *InvalidReferenceError) Is(target error) bool { return target == ErrInvalidReference }

func (e *InvalidReferenceError) Unwrap() error { return e.Cause }

// Image is a parsed image reference. For Kind NotECR only Original, Kind,
// SkipReason, Registry, Repository, Tag and Digest are set.
type Image struct {
	// Original is the reference exactly as written in the workload.
	Original string
	Kind     Kind
	// SkipReason says, for Kind NotECR, why the image is not checked.
	SkipReason string

	// Registry is the registry host as written, including any port; for
	// Docker Hub it is the normalised "docker.io".
	Registry string
	// Account is the 12-digit registry (account) ID of an ECR registry.
	Account string
	// Region is the ECR registry's AWS region, e.g. us-west-2.
	Region string
	// Partition is the AWS partition, e.g. aws, aws-cn, aws-us-gov.
	Partition string
	// Repository is the repository path within the registry, nested paths
	// included (team/app/api). For Docker Hub it is normalised
	// (nginx -> library/nginx).
	Repository string
	// Tag is the tag to pull. It is DefaultTag when the reference names
	// neither tag nor digest, and empty when it names only a digest.
	Tag string
	// Digest is the manifest digest (sha256:...), if the reference names one.
	// When both are present the runtime pulls by digest and ignores the tag.
	Digest string

	// FIPS is true for a FIPS endpoint (dkr.ecr-fips / dkr-ecr-fips).
	FIPS bool
	// DualStack is true for an IPv4+IPv6 endpoint (dkr-ecr.REGION.on...).
	DualStack bool
}

// Parse parses an image reference as the kubelet reads it. It returns an
// error (wrapping ErrInvalidReference) only for a reference that cannot be
// pulled by anyone: unparsable, upper-case repository, or a malformed ECR
// registry host. A valid reference to any other registry is returned with
// Kind NotECR and a SkipReason.
func Parse(s string) (Image, error) {
	img := Image{Original: s}
	// The lengths first, before anything scans the string: a reference the
	// grammar cannot hold is rejected for the price of a comparison, and the
	// grammar's regular expressions only ever see short input.
	if err := checkLengths(s); err != nil {
		return img, &InvalidReferenceError{Reference: s, Cause: err}
	}
	if !strings.Contains(s, "/") {
		// Docker would read a bare ECR host as a Docker Hub repository.
		host, _, _ := strings.Cut(strings.Split(s, "@")[0], ":")
		if _, ecr, _, _ := parseHost(host); ecr {
			return img, &InvalidReferenceError{Reference: s, Cause: errors.New("it names an ECR registry but no repository")}
		}
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return img, &InvalidReferenceError{Reference: s, Cause: err}
	}
	img.Registry = reference.Domain(named)
	img.Repository = reference.Path(named)
	if tagged, ok := named.(reference.Tagged); ok {
		img.Tag = tagged.Tag()
	}
	if digested, ok := named.(reference.Digested); ok {
		img.Digest = digested.Digest().String()
	}
	if img.Tag == "" && img.Digest == "" {
		img.Tag = DefaultTag
	}

	h, ok, reason, err := parseHost(img.Registry)
	if err != nil {
		return img, &InvalidReferenceError{Reference: s, Cause: err}
	}
	if !ok {
		img.Kind, img.SkipReason = NotECR, reason
		return img, nil
	}
	img.Kind = ECRPrivate
	img.Account, img.Region, img.Partition = h.account, h.region, h.partition
	img.FIPS, img.DualStack = h.fips, h.dualStack
	return img, nil
}

// IsECR reports whether the image is in a private ECR registry.
func (i Image) IsECR() bool { return i.Kind == ECRPrivate }

// RepositoryARN returns the repository's ARN,
// arn:PARTITION:ecr:REGION:ACCOUNT:repository/REPOSITORY, or "" for an
// image that is not in a private ECR registry. It is the Resource that ECR
// pull actions (ecr:BatchGetImage, ecr:GetDownloadUrlForLayer) are
// authorised against.
func (i Image) RepositoryARN() string {
	if i.Kind != ECRPrivate {
		return ""
	}
	return "arn:" + i.Partition + ":ecr:" + i.Region + ":" + i.Account + ":repository/" + i.Repository
}

// Reference returns the canonical form of the image: registry/repository,
// then :tag and/or @digest.
func (i Image) Reference() string {
	var b strings.Builder
	b.WriteString(i.Registry)
	b.WriteByte('/')
	b.WriteString(i.Repository)
	if i.Tag != "" {
		b.WriteByte(':')
		b.WriteString(i.Tag)
	}
	if i.Digest != "" {
		b.WriteByte('@')
		b.WriteString(i.Digest)
	}
	return b.String()
}
