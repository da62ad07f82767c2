package imageplatform_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
)

// formatAll is the platforms as "linux/amd64 linux/arm64/v8", in order.
func formatAll(ps []ocispec.Platform) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = platforms.FormatAll(p)
	}
	return strings.Join(out, " ")
}

// windowsBuilds is "windows(10.0.0)/amd64 ... windows(10.0.N-1)/amd64".
func windowsBuilds(n int) string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("windows(10.0.%d)/amd64", i)
	}
	return strings.Join(out, " ")
}

// registry is what the table's images are built from.
type registry struct {
	f *fetcher
	// Single-architecture images with their configs.
	amd64, amd64v2, arm64, bare, helm, windows2019 string
	// Configs.
	amd64Config string
}

func newRegistry() registry {
	f := newFetcher()
	r := registry{f: f}
	r.amd64Config = f.putBlob(config(linux("amd64", "")))
	r.amd64 = f.putManifest(ociManifest, image(ociManifest, ocispec.MediaTypeImageConfig, r.amd64Config))
	r.arm64 = f.putManifest(ociManifest, image(ociManifest, ocispec.MediaTypeImageConfig, f.putBlob(config(linux("arm64", "v8")))))
	r.amd64v2 = f.putManifest(ociManifest, image(ociManifest, ocispec.MediaTypeImageConfig, f.putBlob(config(linux("amd64", "v2")))))
	r.bare = f.putManifest(ociManifest, image(ociManifest, ocispec.MediaTypeImageConfig, f.putBlob(config(ocispec.Platform{}))))
	r.helm = f.putManifest(ociManifest, image(ociManifest, helmConfig, f.putBlob([]byte(`{"name":"chart"}`))))
	r.windows2019 = f.putManifest(dockerImage, image(dockerImage, dockerConfig, f.putBlob(config(windows("10.0.17763.5820")))))
	return r
}

func TestPlatformsReadsWhatAnImageOffers(t *testing.T) {
	tests := map[string]struct {
		mode imageplatform.Mode
		// build stores the image and returns its digest and the media type
		// DescribeImages gives.
		build         func(r registry) (digest, mediaType string)
		wantPlatforms string
		wantIndex     bool
		wantKnown     bool
		// wantFetches counts manifest and blob fetches.
		wantFetches int
	}{
		"an OCI index lists its entries' platforms": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				return r.f.putManifest(ociIndex, index(ociIndex,
					ref(ociManifest, r.amd64, ptr(linux("amd64", ""))), ref(ociManifest, r.arm64, ptr(linux("arm64", "v8"))))), ociIndex
			},
			wantPlatforms: "linux/amd64 linux/arm64/v8", wantIndex: true, wantKnown: true, wantFetches: 1,
		},
		"a Docker manifest list with Windows builds": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				return r.f.putManifest(dockerList, index(dockerList,
					ref(dockerImage, r.windows2019, ptr(windows("10.0.17763.5820"))),
					ref(dockerImage, r.amd64, ptr(windows("10.0.20348.2340"))))), dockerList
			},
			wantPlatforms: "windows(10.0.17763.5820)/amd64 windows(10.0.20348.2340)/amd64", wantIndex: true, wantKnown: true, wantFetches: 1,
		},
		"attestation manifests and unknown/unknown entries are left out": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				unannotated := ref(ociManifest, r.bare, &ocispec.Platform{OS: "unknown", Architecture: "unknown"})
				annotated := attestation(r.helm, r.amd64)
				annotated.Platform = ptr(linux("amd64", "")) // the annotation alone decides
				return r.f.putManifest(ociIndex, index(ociIndex,
					ref(ociManifest, r.amd64, ptr(linux("amd64", ""))), attestation(r.bare, r.amd64), unannotated, annotated)), ociIndex
			},
			wantPlatforms: "linux/amd64", wantIndex: true, wantKnown: true, wantFetches: 1,
		},
		"entries that are not images are left out": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				return r.f.putManifest(ociIndex, index(ociIndex,
					ref(ociManifest, r.amd64, ptr(linux("amd64", ""))),
					ref("application/vnd.example.sbom+json", r.bare, ptr(linux("arm64", ""))))), ociIndex
			},
			wantPlatforms: "linux/amd64", wantIndex: true, wantKnown: true, wantFetches: 1,
		},
		"an index of attestations only offers nothing": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				return r.f.putManifest(ociIndex, index(ociIndex, attestation(r.bare, r.amd64))), ociIndex
			},
			wantPlatforms: "", wantIndex: true, wantKnown: true, wantFetches: 1,
		},
		"a nested index is followed": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				nested := r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.arm64, ptr(linux("arm64", "v8")))))
				return r.f.putManifest(ociIndex, index(ociIndex,
					ref(ociIndex, nested, nil), ref(ociManifest, r.amd64, ptr(linux("amd64", ""))))), ociIndex
			},
			wantPlatforms: "linux/arm64/v8 linux/amd64", wantIndex: true, wantKnown: true, wantFetches: 2,
		},
		"indexes nested deeper than the bound are not followed": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				d := r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.arm64, ptr(linux("arm64", "v8")))))
				for range 4 {
					d = r.f.putManifest(ociIndex, index(ociIndex, ref(ociIndex, d, nil)))
				}
				return r.f.putManifest(ociIndex, index(ociIndex,
					ref(ociIndex, d, nil), ref(ociManifest, r.amd64, ptr(linux("amd64", ""))))), ociIndex
			},
			wantPlatforms: "linux/amd64", wantIndex: true, wantKnown: false, wantFetches: 4,
		},
		"an index needing more manifests than the bound is not followed to the end": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				var entries []desc
				for i := range 70 {
					// Distinct nested indexes: each is one more fetch.
					nested := r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.arm64, ptr(windows(fmt.Sprintf("10.0.%d", i))))))
					entries = append(entries, ref(ociIndex, nested, nil))
				}
				return r.f.putManifest(ociIndex, index(ociIndex, entries...)), ociIndex
			},
			wantPlatforms: windowsBuilds(63), wantIndex: true, wantKnown: false, wantFetches: 64,
		},
		"an image manifest in index mode is unknown, with no fetch": {
			mode:        imageplatform.ModeIndex,
			build:       func(r registry) (string, string) { return r.arm64, ociManifest },
			wantFetches: 0,
		},
		"a digest reference to an index's child manifest in full mode reads its config": {
			mode:          imageplatform.ModeFull,
			build:         func(r registry) (string, string) { return r.arm64, ociManifest },
			wantPlatforms: "linux/arm64", wantKnown: true, wantFetches: 2,
		},
		"a single-platform image's config variant is not matched (containerd runs it by os and architecture)": {
			mode:          imageplatform.ModeFull,
			build:         func(r registry) (string, string) { return r.amd64v2, ociManifest },
			wantPlatforms: "linux/amd64", wantKnown: true, wantFetches: 2,
		},
		"a Docker image in full mode gives its Windows build": {
			mode:          imageplatform.ModeFull,
			build:         func(r registry) (string, string) { return r.windows2019, dockerImage },
			wantPlatforms: "windows(10.0.17763.5820)/amd64", wantKnown: true, wantFetches: 2,
		},
		"a config naming no platform is unknown": {
			mode:        imageplatform.ModeFull,
			build:       func(r registry) (string, string) { return r.bare, ociManifest },
			wantFetches: 2,
		},
		"an artifact's config is not read": {
			mode:        imageplatform.ModeFull,
			build:       func(r registry) (string, string) { return r.helm, ociManifest },
			wantFetches: 1,
		},
		"an index entry without a platform is unknown in index mode": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				return r.f.putManifest(ociIndex, index(ociIndex,
					ref(ociManifest, r.amd64, ptr(linux("amd64", ""))), ref(ociManifest, r.arm64, nil))), ociIndex
			},
			wantPlatforms: "linux/amd64", wantIndex: true, wantFetches: 1,
		},
		"an index entry without a platform is read from its config in full mode": {
			mode: imageplatform.ModeFull,
			build: func(r registry) (string, string) {
				return r.f.putManifest(ociIndex, index(ociIndex,
					ref(ociManifest, r.amd64, ptr(linux("amd64", ""))), ref(ociManifest, r.arm64, nil))), ociIndex
			},
			wantPlatforms: "linux/amd64 linux/arm64/v8", wantIndex: true, wantKnown: true, wantFetches: 3,
		},
		"without a media type from DescribeImages, ECR's answer tells": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				return r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.amd64, ptr(linux("amd64", ""))))), ""
			},
			wantPlatforms: "linux/amd64", wantIndex: true, wantKnown: true, wantFetches: 1,
		},
		"without any media type, the body's shape tells": {
			mode: imageplatform.ModeIndex,
			build: func(r registry) (string, string) {
				return r.f.putManifest("", map[string]any{"schemaVersion": 2, "manifests": []desc{ref(ociManifest, r.amd64, ptr(linux("amd64", "")))}}), ""
			},
			wantPlatforms: "linux/amd64", wantIndex: true, wantKnown: true, wantFetches: 1,
		},
		"Docker schema 1 is unknown, with no fetch": {
			mode: imageplatform.ModeFull,
			build: func(r registry) (string, string) {
				return r.amd64, "application/vnd.docker.distribution.manifest.v1+prettyjws"
			},
			wantFetches: 0,
		},
		"off makes no fetch": {
			mode: imageplatform.ModeOff,
			build: func(r registry) (string, string) {
				return r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.amd64, ptr(linux("amd64", ""))))), ociIndex
			},
			wantFetches: 0,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newRegistry()
			digest, mediaType := tc.build(r)
			img, err := imageplatform.NewResolver(r.f, tc.mode).Platforms(context.Background(), teamApp, digest, mediaType)
			if err != nil {
				t.Fatal(err)
			}
			if got := formatAll(img.Platforms); got != tc.wantPlatforms || img.Index != tc.wantIndex || img.Known != tc.wantKnown {
				t.Errorf("got platforms %q, index %t, known %t; want %q, %t, %t", got, img.Index, img.Known, tc.wantPlatforms, tc.wantIndex, tc.wantKnown)
			}
			if got := r.f.total(); got != tc.wantFetches {
				t.Errorf("%d fetches, want %d", got, tc.wantFetches)
			}
		})
	}
}

func TestPlatformsCachesByDigest(t *testing.T) {
	r := newRegistry()
	idx := r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.amd64, ptr(linux("amd64", ""))), ref(ociManifest, r.arm64, nil)))
	obs := &cacheObserver{}
	res := imageplatform.NewResolver(r.f, imageplatform.ModeFull, imageplatform.WithObserver(obs))
	ctx := context.Background()
	other := teamApp
	other.Name = "team/copy"

	first, err := res.Platforms(ctx, teamApp, idx, ociIndex)
	if err != nil {
		t.Fatal(err)
	}
	fetches := r.f.total()
	if fetches != 3 {
		t.Fatalf("%d fetches for the first look, want 3 (index, child, config)", fetches)
	}
	first.Platforms[0].Architecture = "mutated" // the caller's copy, not the cache
	for _, repo := range []awsclient.Repository{teamApp, other} {
		again, err := res.Platforms(ctx, repo, idx, ociIndex)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatAll(again.Platforms); got != "linux/amd64 linux/arm64/v8" {
			t.Errorf("%s: platforms %q on a cached look", repo.Name, got)
		}
	}
	if got := r.f.total(); got != fetches {
		t.Errorf("%d fetches after two more looks (one in another repository), want still %d", got, fetches)
	}
	if obs.hits["image_manifest"] != 4 || obs.hits["image_config"] != 2 || obs.misses["image_manifest"] != 2 || obs.misses["image_config"] != 1 {
		t.Errorf("hits %v, misses %v; want 4 manifest and 2 config hits, 2 and 1 misses", obs.hits, obs.misses)
	}

	// The child by its own digest: both answers come from the cache.
	for i := range 2 {
		child, err := res.Platforms(ctx, teamApp, r.arm64, ociManifest)
		if err != nil {
			t.Fatal(err)
		}
		// By itself, its config's variant is dropped (see the table).
		if got := formatAll(child.Platforms); got != "linux/arm64" {
			t.Errorf("look %d at the child: platforms %q", i, got)
		}
		child.Platforms[0].Architecture = "mutated"
	}
	if got := r.f.total(); got != fetches {
		t.Errorf("%d fetches after looking at the child, want still %d", got, fetches)
	}
}

func TestPlatformsCacheIsBounded(t *testing.T) {
	r := newRegistry()
	a := r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.amd64, ptr(linux("amd64", "")))))
	b := r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.arm64, ptr(linux("arm64", "")))))
	res := imageplatform.NewResolver(r.f, imageplatform.ModeIndex, imageplatform.WithCacheEntries(1))
	for _, d := range []string{a, b, a} {
		if _, err := res.Platforms(context.Background(), teamApp, d, ociIndex); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.f.count(a); got != 2 {
		t.Errorf("%d fetches of the first index, want 2: a one-entry cache keeps only the second", got)
	}
}

func TestPlatformsDoesNotCacheErrors(t *testing.T) {
	r := newRegistry()
	throttled := &awsclient.LookupError{What: "getting the manifest", Class: awsclient.ClassThrottled, Err: errors.New("rate exceeded")}
	r.f.failNext(r.arm64, throttled)
	r.f.failNext(r.amd64Config, errors.New("connection reset"))
	res := imageplatform.NewResolver(r.f, imageplatform.ModeFull)
	ctx := context.Background()

	if _, err := res.Platforms(ctx, teamApp, r.arm64, ociManifest); awsclient.ClassOf(err) != awsclient.ClassThrottled {
		t.Fatalf("err = %v (class %s), want the Fetcher's throttling", err, awsclient.ClassOf(err))
	}
	if img, err := res.Platforms(ctx, teamApp, r.arm64, ociManifest); err != nil || formatAll(img.Platforms) != "linux/arm64" {
		t.Fatalf("second look: %+v, %v; want linux/arm64", img, err)
	}
	if _, err := res.Platforms(ctx, teamApp, r.amd64, ociManifest); err == nil {
		t.Fatal("a failed config read gave no error")
	}
	if img, err := res.Platforms(ctx, teamApp, r.amd64, ociManifest); err != nil || formatAll(img.Platforms) != "linux/amd64" {
		t.Fatalf("after a failed config read: %+v, %v; want linux/amd64", img, err)
	}
	if got, want := r.f.count(r.arm64)+r.f.count(r.amd64Config), 4; got != want {
		t.Errorf("%d fetches of the failed manifest and config, want %d (each failure asked again)", got, want)
	}
	if got := r.f.count(r.amd64); got != 1 {
		t.Errorf("%d fetches of the manifest whose config failed, want 1 (the manifest itself was read)", got)
	}
}

func TestPlatformsSharesOneFetchAmongConcurrentCallers(t *testing.T) {
	r := newRegistry()
	idx := r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.amd64, ptr(linux("amd64", "")))))
	r.f.hold, r.f.started = make(chan struct{}), make(chan struct{}, 100)
	obs := &cacheObserver{}
	res := imageplatform.NewResolver(r.f, imageplatform.ModeIndex, imageplatform.WithObserver(obs))

	const callers = 8
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			img, err := res.Platforms(context.Background(), teamApp, idx, ociIndex)
			if err == nil && formatAll(img.Platforms) != "linux/amd64" {
				err = errors.New("platforms " + formatAll(img.Platforms))
			}
			errs <- err
		})
	}
	<-r.f.started
	waitFor(t, func() bool { return obs.missCount("image_manifest") == callers })
	close(r.f.hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := r.f.count(idx); got != 1 {
		t.Errorf("%d fetches for %d concurrent callers, want 1", got, callers)
	}
}

func TestPlatformsReturnsWhenTheCallerGivesUp(t *testing.T) {
	r := newRegistry()
	idx := r.f.putManifest(ociIndex, index(ociIndex, ref(ociManifest, r.amd64, ptr(linux("amd64", "")))))
	r.f.hold, r.f.started = make(chan struct{}), make(chan struct{}, 100)
	res := imageplatform.NewResolver(r.f, imageplatform.ModeIndex)

	patient := make(chan error, 1)
	go func() {
		_, err := res.Platforms(context.Background(), teamApp, idx, ociIndex)
		patient <- err
	}()
	<-r.f.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := res.Platforms(ctx, teamApp, idx, ociIndex); !errors.Is(err, context.Canceled) || awsclient.ClassOf(err) != awsclient.ClassTimeout {
		t.Errorf("a cancelled caller: err = %v, want context.Canceled of class timeout", err)
	}
	close(r.f.hold)
	if err := <-patient; err != nil {
		t.Errorf("the caller that waited: %v", err)
	}
	if got := r.f.count(idx); got != 1 {
		t.Errorf("%d fetches, want 1", got)
	}
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// cacheObserver counts cache reports.
type cacheObserver struct {
	awsclient.NopObserver
	mu           sync.Mutex
	hits, misses map[string]int
}

func (o *cacheObserver) CacheHit(kind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.hits == nil {
		o.hits = map[string]int{}
	}
	o.hits[kind]++
}

func (o *cacheObserver) CacheMiss(kind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.misses == nil {
		o.misses = map[string]int{}
	}
	o.misses[kind]++
}

func (o *cacheObserver) missCount(kind string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.misses[kind]
}
