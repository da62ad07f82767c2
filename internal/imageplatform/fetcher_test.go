package imageplatform_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	godigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

// Media types the tests store.
const (
	ociIndex     = ocispec.MediaTypeImageIndex
	ociManifest  = ocispec.MediaTypeImageManifest
	dockerList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerImage  = "application/vnd.docker.distribution.manifest.v2+json"
	dockerConfig = "application/vnd.docker.container.image.v1+json"
	helmConfig   = "application/vnd.cncf.helm.config.v1+json"
)

var teamApp = awsclient.Repository{Registry: awsclient.Registry{Region: "us-west-2", Account: "123456789012"}, Name: "team/app"}

// fetcher is an in-memory registry that counts fetches per digest, can
// fail a digest's next fetches and can hold fetches until released.
type fetcher struct {
	mu        sync.Mutex
	manifests map[string]stored // by digest
	blobs     map[string][]byte
	fails     map[string][]error // by digest: errors returned in turn, before the content
	calls     map[string]int     // by digest, manifests and blobs alike
	// hold, when set, makes every fetch wait for it to close; started
	// receives one value per fetch that began waiting.
	hold    chan struct{}
	started chan struct{}
}

type stored struct {
	mediaType string
	body      []byte
}

func newFetcher() *fetcher {
	return &fetcher{manifests: map[string]stored{}, blobs: map[string][]byte{}, fails: map[string][]error{}, calls: map[string]int{}}
}

// digestOf is the sha256 digest of body.
func digestOf(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// putManifest stores a manifest of the given media type with the fields of
// doc and returns its digest. The stored mediaType is what ECR answers;
// answered "" makes it answer none.
func (f *fetcher) putManifest(answered string, doc any) string {
	body, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	d := digestOf(body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.manifests[d] = stored{mediaType: answered, body: body}
	return d
}

// putBlob stores a blob and returns its digest.
func (f *fetcher) putBlob(body []byte) string {
	d := digestOf(body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs[d] = body
	return d
}

// failNext makes the next fetches of digest fail with errs, in turn.
func (f *fetcher) failNext(digest string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[digest] = append(f.fails[digest], errs...)
}

func (f *fetcher) count(digest string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[digest]
}

func (f *fetcher) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// begin counts a fetch of digest, waits for hold, and returns the error it
// must fail with, if any.
func (f *fetcher) begin(ctx context.Context, digest string) error {
	f.mu.Lock()
	f.calls[digest]++
	hold, started := f.hold, f.started
	var err error
	if errs := f.fails[digest]; len(errs) > 0 {
		err, f.fails[digest] = errs[0], errs[1:]
	}
	f.mu.Unlock()
	if hold != nil {
		started <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (f *fetcher) ImageManifest(ctx context.Context, _ awsclient.Repository, digest string) (string, []byte, error) {
	if err := f.begin(ctx, digest); err != nil {
		return "", nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.manifests[digest]
	if !ok {
		return "", nil, fmt.Errorf("no manifest %s", digest)
	}
	return m.mediaType, m.body, nil
}

func (f *fetcher) ImageBlob(ctx context.Context, _ awsclient.Repository, digest string, maxBytes int64) ([]byte, error) {
	if err := f.begin(ctx, digest); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blobs[digest]
	switch {
	case !ok:
		return nil, fmt.Errorf("no blob %s", digest)
	case int64(len(b)) > maxBytes:
		return nil, fmt.Errorf("blob %s has %d bytes, more than %d", digest, len(b), maxBytes)
	}
	return b, nil
}

// Document builders.

type desc = ocispec.Descriptor

// ref is an index entry for the manifest with digest.
func ref(mediaType, digest string, p *ocispec.Platform) desc {
	return desc{MediaType: mediaType, Digest: digestFrom(digest), Size: 1, Platform: p}
}

func digestFrom(s string) godigest.Digest { return godigest.Digest(s) }

func index(mediaType string, entries ...desc) map[string]any {
	return map[string]any{"schemaVersion": 2, "mediaType": mediaType, "manifests": entries}
}

func image(mediaType, configType, configDigest string) map[string]any {
	return map[string]any{
		"schemaVersion": 2, "mediaType": mediaType,
		"config": desc{MediaType: configType, Digest: digestFrom(configDigest), Size: 2},
		"layers": []desc{},
	}
}

// config is an image config naming p.
func config(p ocispec.Platform) []byte {
	b, err := json.Marshal(ocispec.Image{Platform: p, RootFS: ocispec.RootFS{Type: "layers"}})
	if err != nil {
		panic(err)
	}
	return b
}

func ptr(p ocispec.Platform) *ocispec.Platform { return &p }

// attestation is BuildKit's attestation manifest entry for subject.
func attestation(digest, subject string) desc {
	d := ref(ociManifest, digest, &ocispec.Platform{OS: "unknown", Architecture: "unknown"})
	d.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": subject}
	return d
}
