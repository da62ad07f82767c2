// Package imagebuild builds the ecr-preflight container image without a
// container engine and without pulling a base image: `make image` uses it
// when no docker, podman or buildah can build the Dockerfile.
//
// The image is assembled from scratch with go-containerregistry, for every
// requested platform (linux/amd64 and linux/arm64 by default):
//
//   - a base layer, identical on every platform: /etc/passwd and /etc/group
//     (root, nonroot 65532, nobody; no login shell), /etc/nsswitch.conf, the
//     build machine's CA bundle (Debian's ca-certificates package) at
//     /etc/ssl/certs/ca-certificates.crt, /tmp (1777) and /home/nonroot;
//   - an application layer: /ecr-preflight, a static CGO_ENABLED=0 build of
//     ./cmd/ecr-preflight with -trimpath and the version stamped by -ldflags.
//
// The config matches the Dockerfile's (distroless static:nonroot base):
// user 65532:65532, entrypoint /ecr-preflight, cmd serve, working directory
// /, SSL_CERT_FILE, and the org.opencontainers.image.* labels. No shell and
// no other executable is in any layer.
//
// Layer file times and the config's created time come from
// SOURCE_DATE_EPOCH, so the same commit, Go version and CA bundle give the
// same digests.
//
// Outputs, under the output directory (bin/image by default):
//
//	oci/                                 OCI image layout; index.json holds one
//	                                     multi-platform image index tagged
//	                                     (org.opencontainers.image.ref.name) with the tag
//	<name>-<os>-<arch>.tar               one `docker load` tarball per platform
//	                                     (<name>: the repository's last element)
//
// Main is the command-line entry point; internal/tools/imagebuild wraps it.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image is made of. The Dockerfile at the repository root states
// the same (TestDockerfileMatchesGoBuilder keeps them in step).
const (
	// BinaryPath is where the ecr-preflight binary lives in the image.
	BinaryPath = "/ecr-preflight"
	// User is the image's user: nonroot, as in distroless' :nonroot images.
	User = "65532:65532"
	// WorkingDir is the image's working directory.
	WorkingDir = "/"
	// CABundlePath is where the CA certificates live in the image, also the
	// value of SSL_CERT_FILE.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	// DefaultCABundle is the bundle read from the build machine: Debian's
	// ca-certificates package.
	DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"
	// Title and Description are the OCI title and description labels.
	Title       = "ecr-preflight"
	Description = "Kubernetes admission webhook that catches ECR images the nodes cannot pull"
	// DefaultSource is the OCI source label.
	DefaultSource = "https://github.com/ecr-preflight/ecr-preflight"

	// cliPackage holds the version variables set by -ldflags -X.
	cliPackage = "github.com/ecr-preflight/ecr-preflight/internal/cli"
	// mainPackage is what is built, relative to the module directory.
	mainPackage = "./cmd/ecr-preflight"

	nonrootID = 65532
)

// Entrypoint and Cmd of the image: `docker run IMAGE` serves; any
// arguments replace Cmd (`docker run IMAGE --version`, `... check ...`), and
// a Kubernetes container's args replace it too.
var (
	Entrypoint = []string{BinaryPath}
	Cmd        = []string{"serve"}
)

// OCI annotation and label keys.
const (
	labelVersion     = "org.opencontainers.image.version"
	labelRevision    = "org.opencontainers.image.revision"
	labelSource      = "org.opencontainers.image.source"
	labelTitle       = "org.opencontainers.image.title"
	labelDescription = "org.opencontainers.image.description"
	labelCreated     = "org.opencontainers.image.created"
	annotationRef    = "org.opencontainers.image.ref.name"
)

// Options says what to build and where to put it.
type Options struct {
	// ModuleDir is the ecr-preflight module root, where `go build` runs.
	ModuleDir string
	// OutDir receives the OCI layout and the docker tarballs.
	OutDir string
	// Platforms to build, e.g. linux/amd64 and linux/arm64.
	Platforms []v1.Platform
	// Version and Commit are stamped into the binary and the labels.
	Version string
	Commit  string
	// Created is the image's creation time and every file's mtime.
	Created time.Time
	// CABundle is the CA certificate bundle on the build machine.
	CABundle string
	// Repository and Tag name the image in the layout and the tarballs.
	Repository string
	Tag        string
	// Source is the OCI source label.
	Source string
}

// DefaultOptions returns the options `make image` starts from.
func DefaultOptions() Options {
	return Options{
		ModuleDir:  ".",
		OutDir:     filepath.Join("bin", "image"),
		Platforms:  []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
		Version:    "dev",
		Created:    time.Unix(0, 0).UTC(),
		CABundle:   DefaultCABundle,
		Repository: "ecr-preflight",
		Source:     DefaultSource,
	}
}

var (
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
	commitRE  = regexp.MustCompile(`^[0-9a-f]{0,64}$`)
)

// Validate reports bad options before anything is built.
func (o *Options) Validate() error {
	var errs []error
	if !versionRE.MatchString(o.Version) {
		errs = append(errs, fmt.Errorf("version %q: want letters, digits, '.', '_', '+' or '-' (at most 128)", o.Version))
	}
	if !commitRE.MatchString(o.Commit) {
		errs = append(errs, fmt.Errorf("commit %q: want a hexadecimal git commit", o.Commit))
	}
	if len(o.Platforms) == 0 {
		errs = append(errs, errors.New("no platforms"))
	}
	seen := map[string]bool{}
	for _, p := range o.Platforms {
		if _, ok := elfMachines[p.Architecture]; !ok || p.OS != "linux" || p.Variant != "" || p.OSVersion != "" {
			errs = append(errs, fmt.Errorf("platform %q: want linux/amd64 or linux/arm64", p.String()))
		}
		if seen[p.String()] {
			errs = append(errs, fmt.Errorf("platform %q given twice", p.String()))
		}
		seen[p.String()] = true
	}
	if _, err := name.NewTag(o.Repository + ":" + o.tag()); err != nil {
		errs = append(errs, fmt.Errorf("image name %s:%s: %w", o.Repository, o.tag(), err))
	}
	if o.OutDir == "" {
		errs = append(errs, errors.New("no output directory"))
	}
	return errors.Join(errs...)
}

// tag is Tag, or the version made into a valid tag ('+' is not allowed).
func (o *Options) tag() string {
	if o.Tag != "" {
		return o.Tag
	}
	return strings.ReplaceAll(o.Version, "+", "-")
}

// Labels returns the image's OCI labels (also the index's annotations).
func (o *Options) Labels() map[string]string {
	l := map[string]string{
		labelTitle:       Title,
		labelDescription: Description,
		labelVersion:     o.Version,
		labelSource:      o.Source,
	}
	if o.Commit != "" {
		l[labelRevision] = o.Commit
	}
	return l
}

// LDFlags returns the -ldflags of the image's binary: symbols stripped
// (panics keep their stack traces) and the version stamped.
func LDFlags(version, commit string) string {
	return fmt.Sprintf("-s -w -X %s.version=%s -X %s.commit=%s", cliPackage, version, cliPackage, commit)
}

// Result is what Build wrote.
type Result struct {
	Index     v1.ImageIndex
	Digest    v1.Hash            // of the multi-platform index
	Name      string             // repository:tag
	LayoutDir string             // OCI image layout
	Tarballs  map[string]string  // platform ("linux/amd64") -> docker tarball
	Manifests map[string]v1.Hash // platform -> image manifest digest
}

// Build compiles the binary for every platform, assembles the image and
// writes the OCI layout and the docker tarballs. Progress goes to log.
func Build(ctx context.Context, o Options, log io.Writer) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// The CA bundle first: a missing package should not cost a compile.
	caBundle, err := ReadCABundle(o.CABundle)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "ecr-preflight-imagebuild-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(work) }()

	binaries := make(map[string][]byte, len(o.Platforms))
	for _, p := range o.Platforms {
		out := filepath.Join(work, "ecr-preflight-"+p.OS+"-"+p.Architecture)
		_, _ = fmt.Fprintf(log, "imagebuild: go build %s (CGO_ENABLED=0, -trimpath, version %s)\n", p.String(), o.Version)
		if err := CompileBinary(ctx, o.ModuleDir, p, o.Version, o.Commit, out); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		binaries[p.String()] = b
	}

	idx, err := Assemble(o, caBundle, binaries)
	if err != nil {
		return nil, err
	}
	return Write(o, idx)
}

// CompileBinary builds ./cmd/ecr-preflight for platform p into out: static
// (CGO_ENABLED=0), -trimpath, baseline instruction set (GOAMD64=v1,
// GOARM64=v8.0) so it runs on every node of that architecture. It fails if
// the result is not a static ELF binary for p.
func CompileBinary(ctx context.Context, moduleDir string, p v1.Platform, version, commit, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", LDFlags(version, commit), "-o", out, mainPackage)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOAMD64=v1", "GOARM64=v8.0")
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w\n%s", p.String(), err, strings.TrimSpace(stderr.String()))
	}
	return CheckStaticELF(out, p.Architecture)
}

// elfMachines maps the supported GOARCHes to the ELF machine of their
// binaries.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}

// CheckStaticELF fails unless path is a statically linked ELF executable
// for GOARCH arch: the image has no dynamic loader and no libc.
func CheckStaticELF(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (it has an ELF interpreter); the image has no libc: build with CGO_ENABLED=0", path)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return fmt.Errorf("%s is dynamically linked against %s; the image has no libc: build with CGO_ENABLED=0", path, strings.Join(libs, ", "))
	}
	want, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("%s: no known ELF machine for GOARCH %s", path, arch)
	}
	if f.Machine != want {
		return fmt.Errorf("%s is a %s binary, want %s for %s", path, f.Machine, want, arch)
	}
	return nil
}

// ReadCABundle reads and checks the build machine's CA bundle.
func ReadCABundle(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("CA certificate bundle %s not found: the image takes its CA certificates from Debian's ca-certificates package on the build machine; install it (apt-get install ca-certificates) or pass -ca-bundle", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate bundle: %w", err)
	}
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("CA certificate bundle %s: certificate %d: %w", path, n+1, err)
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA certificate bundle %s holds no PEM certificate (reinstall ca-certificates: apt-get install --reinstall ca-certificates)", path)
	}
	return b, nil
}

// Assemble builds the multi-platform image index from the CA bundle and one
// binary per platform (keyed "linux/amd64"). It only computes: nothing is
// written.
func Assemble(o Options, caBundle []byte, binaries map[string][]byte) (v1.ImageIndex, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	base, err := newLayer(o.Created, baseFiles(caBundle))
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	labels := o.Labels()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range o.Platforms {
		bin, ok := binaries[p.String()]
		if !ok {
			return nil, fmt.Errorf("no binary for %s", p.String())
		}
		app, err := newLayer(o.Created, []file{{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: bin}})
		if err != nil {
			return nil, fmt.Errorf("%s binary layer: %w", p.String(), err)
		}
		img, err := platformImage(o, p, labels, base, app)
		if err != nil {
			return nil, fmt.Errorf("%s image: %w", p.String(), err)
		}
		platform := p
		adds = append(adds, mutate.IndexAddendum{Add: plainImage{img}, Descriptor: v1.Descriptor{Platform: &platform}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	annotations := maps(labels, map[string]string{labelCreated: o.Created.UTC().Format(time.RFC3339)})
	annotated, ok := mutate.Annotations(idx, annotations).(v1.ImageIndex)
	if !ok {
		return nil, errors.New("annotating the image index")
	}
	return annotated, nil
}

// plainImage keeps go-containerregistry from giving the image's index entry
// an artifactType (the config media type): the entry is an image, not an
// artifact, and is written as docker buildx writes it.
type plainImage struct{ v1.Image }

func (plainImage) ArtifactType() (string, error) { return "", nil }

func maps(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func platformImage(o Options, p v1.Platform, labels map[string]string, layers ...v1.Layer) (v1.Image, error) {
	created := v1.Time{Time: o.Created.UTC()}
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      created,
		Config: v1.Config{
			User:       User,
			Entrypoint: Entrypoint,
			Cmd:        Cmd,
			WorkingDir: WorkingDir,
			Env:        []string{"SSL_CERT_FILE=" + CABundlePath},
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	what := []string{
		"imagebuild: /etc/passwd, /etc/group (nonroot 65532), /etc/nsswitch.conf, CA certificates, /tmp, /home/nonroot",
		"imagebuild: " + BinaryPath + " " + o.Version + " (" + p.String() + ")",
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayer,
			History:   v1.History{Created: created, CreatedBy: what[i]},
		}
	}
	return mutate.Append(img, adds...)
}

// file is one entry of a layer; a name ending in "/" is a directory.
type file struct {
	name     string
	mode     int64
	uid, gid int
	data     []byte
}

// The accounts of the image. No account has a shell: there is none.
const (
	passwd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
`
	group = `root:x:0:
nobody:x:65534:
nonroot:x:65532:
`
	// Go's resolver reads it; files first, so /etc/hosts (which the
	// kubelet writes) wins over DNS, as with glibc.
	nsswitch = "hosts: files dns\n"
)

func baseFiles(caBundle []byte) []file {
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte(nsswitch)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(CABundlePath, "/"), mode: 0o644, data: caBundle},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonrootID, gid: nonrootID},
		{name: "tmp/", mode: 0o1777},
	}
}

// newLayer makes a gzip-compressed OCI layer of files, byte for byte the
// same for the same input.
func newLayer(mtime time.Time, files []file) (v1.Layer, error) {
	files = append([]file(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime.UTC().Truncate(time.Second),
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// Write writes idx as an OCI layout and one docker tarball per platform
// under o.OutDir, replacing earlier outputs.
func Write(o Options, idx v1.ImageIndex) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ref := o.Repository + ":" + o.tag()
	tag, err := name.NewTag(ref)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	res := &Result{
		Index:     idx,
		Name:      ref,
		LayoutDir: filepath.Join(o.OutDir, "oci"),
		Tarballs:  map[string]string{},
		Manifests: map[string]v1.Hash{},
	}
	if res.Digest, err = idx.Digest(); err != nil {
		return nil, err
	}

	// The layout is written next to its final place and renamed over it,
	// so bin/image/oci is never half written and holds no stale blobs.
	tmp, err := os.MkdirTemp(o.OutDir, ".oci-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return nil, err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{annotationRef: o.tag()})); err != nil {
		return nil, fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := os.RemoveAll(res.LayoutDir); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, res.LayoutDir); err != nil {
		return nil, err
	}
	if err := os.Chmod(res.LayoutDir, 0o755); err != nil { // MkdirTemp made it 0700
		return nil, err
	}

	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, desc := range m.Manifests {
		if desc.Platform == nil {
			return nil, fmt.Errorf("manifest %s has no platform", desc.Digest)
		}
		p := desc.Platform.String()
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, err
		}
		tarPath := filepath.Join(o.OutDir, path.Base(o.Repository)+"-"+desc.Platform.OS+"-"+desc.Platform.Architecture+".tar")
		if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
			return nil, fmt.Errorf("writing the docker tarball for %s: %w", p, err)
		}
		res.Tarballs[p] = tarPath
		res.Manifests[p] = desc.Digest
	}
	return res, nil
}
