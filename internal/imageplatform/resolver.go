package imageplatform

import (
	"context"
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

// Fetcher reads manifests and blobs from ECR; awsclient.Lookups implements
// it. ImageManifest returns the media type ECR gives (empty when it gives
// none) and the manifest; ImageBlob a blob of at most maxBytes, checked
// against digest.
type Fetcher interface {
	ImageManifest(ctx context.Context, repo awsclient.Repository, digest string) (mediaType string, body []byte, err error)
	ImageBlob(ctx context.Context, repo awsclient.Repository, digest string, maxBytes int64) ([]byte, error)
}

var _ Fetcher = (*awsclient.Lookups)(nil)

// MaxConfigBytes bounds a config blob read: an image config is a few KB
// (its history grows with the layers); anything this large is not one.
const MaxConfigBytes = 1 << 20

// Bounds on one image's walk, so a hostile or broken index cannot make an
// admission fetch without end. Past them the image's platforms are unknown.
const (
	// maxDepth is how many levels of nested indexes below the image's own
	// are followed.
	maxDepth = 3
	// maxManifests is how many manifests one image may need, cached ones
	// included.
	maxManifests = 64
)

// Image is what an image offers.
type Image struct {
	// Platforms the image provides, each once: for an index, its runnable
	// entries (attestation manifests and unknown/unknown entries left out,
	// nested indexes followed); for a single-architecture image read in
	// ModeFull, its config's os, architecture, variant and os.version.
	Platforms []ocispec.Platform
	// Index is true for an OCI index or Docker manifest list.
	Index bool
	// Known is false when the platforms cannot be said: ModeOff, a
	// single-architecture image in ModeIndex, a config without os or
	// architecture, a manifest type that names none (Docker schema 1, an
	// artifact), or an index too deep or wide to follow. Platforms may
	// then still hold some: a match among them holds, but a missing one
	// proves nothing.
	Known bool
}

// Resolver says which platforms images offer, caching manifests and
// configs by digest for its lifetime. It is safe for concurrent use.
type Resolver struct {
	fetch Fetcher
	mode  Mode
	cache *cache
}

// Option configures a Resolver.
type Option func(*resolverOptions)

type resolverOptions struct {
	entries  int
	observer awsclient.Observer
}

// WithCacheEntries bounds the manifests and configs kept (default
// DefaultCacheEntries).
func WithCacheEntries(n int) Option {
	return func(o *resolverOptions) { o.entries = n }
}

// WithObserver reports cache hits and misses, of kinds "image_manifest"
// and "image_config" (default none).
func WithObserver(obs awsclient.Observer) Option {
	return func(o *resolverOptions) { o.observer = obs }
}

// NewResolver returns a Resolver reading through f as far as mode says.
func NewResolver(f Fetcher, mode Mode, opts ...Option) *Resolver {
	o := resolverOptions{entries: DefaultCacheEntries, observer: awsclient.NopObserver{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.entries <= 0 {
		o.entries = DefaultCacheEntries
	}
	return &Resolver{fetch: f, mode: mode, cache: newCache(o.entries, o.observer)}
}

// Platforms returns what repo's image with digest offers. mediaType is
// its manifest's media type as DescribeImages gave it (awsclient.ImageDetail),
// which spares a fetch where the mode would learn nothing from it; it may
// be empty. An image manifest in ModeIndex, like any image in ModeOff, is
// answered without a call. Errors are the Fetcher's (awsclient.ClassOf
// classifies them) or a manifest that cannot be parsed; they are not
// cached, so the next call tries again.
func (r *Resolver) Platforms(ctx context.Context, repo awsclient.Repository, digest, mediaType string) (Image, error) {
	if r.mode != ModeIndex && r.mode != ModeFull {
		return Image{}, nil
	}
	if mediaType != "" {
		switch kindOf(mediaType) {
		case kindOther:
			return Image{}, nil
		case kindManifest:
			if r.mode != ModeFull {
				return Image{}, nil
			}
		}
	}
	w := &walk{r: r, repo: repo}
	img, err := w.image(ctx, digest, mediaType, 0)
	if err != nil {
		return Image{}, err
	}
	// The platforms may be the cache's own: the caller gets copies.
	img.Platforms = slices.Clone(img.Platforms)
	for i := range img.Platforms {
		img.Platforms[i].OSFeatures = slices.Clone(img.Platforms[i].OSFeatures)
	}
	return img, nil
}

// walk resolves one image, counting the manifests it reads.
type walk struct {
	r         *Resolver
	repo      awsclient.Repository
	manifests int
}

// image returns what the manifest with digest offers; depth counts the
// indexes above it.
func (w *walk) image(ctx context.Context, digest, mediaType string, depth int) (Image, error) {
	if w.manifests++; w.manifests > maxManifests {
		return Image{}, nil
	}
	m, err := w.r.manifest(ctx, w.repo, digest, mediaType)
	if err != nil {
		return Image{}, err
	}
	switch m.kind {
	case kindIndex:
		return w.index(ctx, m, depth)
	case kindManifest:
		if w.r.mode != ModeFull {
			return Image{}, nil
		}
		img, err := w.r.config(ctx, w.repo, m.config)
		if err != nil || depth > 0 {
			return img, err
		}
		// A manifest pulled by itself is not matched by containerd at all;
		// only whether its binaries can execute matters, which its os and
		// architecture decide (an amd64/v2 config runs on any amd64 node).
		return withoutVariants(img), nil
	}
	return Image{}, nil
}

// index returns what an index's runnable entries offer.
func (w *walk) index(ctx context.Context, m manifest, depth int) (Image, error) {
	img := Image{Index: true, Known: true}
	for _, e := range m.entries {
		k := kindOf(e.mediaType)
		if !e.runnable || k == kindOther {
			// Not an image a node runs; containerd skips such entries too.
			continue
		}
		if k == kindManifest && e.platform != nil {
			img.add(*e.platform)
			continue
		}
		// A nested index, or a manifest whose platform is in its config
		// (containerd reads the config then).
		if (k == kindIndex && depth >= maxDepth) || (k == kindManifest && w.r.mode != ModeFull) {
			img.Known = false
			continue
		}
		child, err := w.image(ctx, e.digest, e.mediaType, depth+1)
		if err != nil {
			return Image{}, err
		}
		for _, p := range child.Platforms {
			img.add(p)
		}
		img.Known = img.Known && child.Known
	}
	return img, nil
}

// withoutVariants is img with each platform's variant dropped, in new
// slices (img may be shared with the cache).
func withoutVariants(img Image) Image {
	out := Image{Index: img.Index, Known: img.Known}
	for _, p := range img.Platforms {
		p.Variant = ""
		out.add(p)
	}
	return out
}

// add appends p unless it is already there.
func (img *Image) add(p ocispec.Platform) {
	if !slices.ContainsFunc(img.Platforms, func(q ocispec.Platform) bool { return samePlatform(p, q) }) {
		img.Platforms = append(img.Platforms, p)
	}
}

func samePlatform(p, q ocispec.Platform) bool {
	return p.OS == q.OS && p.Architecture == q.Architecture && p.Variant == q.Variant &&
		p.OSVersion == q.OSVersion && slices.Equal(p.OSFeatures, q.OSFeatures)
}

// manifest returns the parsed manifest with digest, from the cache or
// ECR. mediaType is the caller's idea of its type, used when ECR's answer
// gives none.
func (r *Resolver) manifest(ctx context.Context, repo awsclient.Repository, digest, mediaType string) (manifest, error) {
	what := fmt.Sprintf("reading the manifest %s in %s", digest, repo.Name)
	return load(ctx, r.cache, kindManifestCache, "manifest|"+digest, flightKey("manifest", repo, digest), what,
		func(ctx context.Context) (manifest, error) {
			answered, body, err := r.fetch.ImageManifest(ctx, repo, digest)
			if err != nil {
				return manifest{}, err
			}
			m, err := parseManifest(answered, mediaType, body)
			if err != nil {
				return manifest{}, fmt.Errorf("parsing the manifest %s in %s: %w", digest, repo.Name, err)
			}
			return m, nil
		})
}

// config returns the platform an image's config names.
func (r *Resolver) config(ctx context.Context, repo awsclient.Repository, config ocispec.Descriptor) (Image, error) {
	if !isImageConfig(config.MediaType) {
		return Image{}, nil
	}
	digest := config.Digest.String()
	what := fmt.Sprintf("reading the image config %s in %s", digest, repo.Name)
	return load(ctx, r.cache, kindConfigCache, "config|"+digest, flightKey("config", repo, digest), what,
		func(ctx context.Context) (Image, error) {
			body, err := r.fetch.ImageBlob(ctx, repo, digest, MaxConfigBytes)
			if err != nil {
				return Image{}, err
			}
			p, ok, err := parseConfig(body)
			if err != nil {
				return Image{}, fmt.Errorf("parsing the image config %s in %s: %w", digest, repo.Name, err)
			}
			if !ok {
				return Image{}, nil
			}
			return Image{Platforms: []ocispec.Platform{p}, Known: true}, nil
		})
}

// flightKey names one fetch: the content is the digest's wherever it is
// stored, but whether it can be read depends on the repository, so callers
// for different repositories do not share a failure.
func flightKey(what string, repo awsclient.Repository, digest string) string {
	return strings.Join([]string{what, repo.Region, repo.Account, repo.Name, digest}, "|")
}
