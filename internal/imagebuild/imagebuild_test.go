package imagebuild

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// What a test build stamps.
const (
	testVersion = "v9.8.7-rc.1+meta"
	testTag     = "v9.8.7-rc.1-meta" // '+' is not allowed in a tag
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testEpoch   = 1700000000
)

// The image's files, exactly: anything else (a shell, busybox, a package
// manager) fails the test. Directories end in "/".
var wantFiles = map[string]tarEntry{
	"ecr-preflight":                     {mode: 0o755},
	"etc/":                              {mode: 0o755},
	"etc/group":                         {mode: 0o644},
	"etc/nsswitch.conf":                 {mode: 0o644},
	"etc/passwd":                        {mode: 0o644},
	"etc/ssl/":                          {mode: 0o755},
	"etc/ssl/certs/":                    {mode: 0o755},
	"etc/ssl/certs/ca-certificates.crt": {mode: 0o644},
	"home/":                             {mode: 0o755},
	"home/nonroot/":                     {mode: 0o700, uid: 65532, gid: 65532},
	"tmp/":                              {mode: 0o1777},
}

type tarEntry struct {
	mode     int64
	uid, gid int
	mtime    time.Time
	data     []byte
}

// TestMakeImage runs `make image` on its engine-free path, as on machines
// without docker, podman or buildah (IMAGE_BUILDER=go; only the output
// directory and the stamped version differ from a plain `make image`), and
// inspects what it wrote: the OCI layout as a registry client reads it, and
// the docker tarballs.
func TestMakeImage(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "image",
		"IMAGE_BUILDER=go",
		"IMAGE_OUT="+out,
		"VERSION="+testVersion,
		"COMMIT="+testCommit,
		"SOURCE_DATE_EPOCH=1700000000")
	cmd.Dir = moduleRoot(t)
	// Not the variables of a `make test` this may run under.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool {
		return strings.HasPrefix(e, "MAKEFLAGS=") || strings.HasPrefix(e, "MFLAGS=") || strings.HasPrefix(e, "MAKELEVEL=")
	})
	output, err := cmd.CombinedOutput()
	t.Logf("make image:\n%s", output)
	if err != nil {
		t.Fatalf("make image: %v", err)
	}
	for _, want := range []string{
		"make image: no container engine (IMAGE_BUILDER=go): building with the Go builder",
		"built ecr-preflight:" + testTag + " for linux/amd64, linux/arm64",
		"crane push", "docker load -i",
	} {
		if !strings.Contains(string(output), want) {
			t.Errorf("make image output lacks %q", want)
		}
	}

	// The layout: one entry, the multi-platform index, named by the tag.
	root, err := layout.ImageIndexFromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	rootManifest, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rootManifest.Manifests) != 1 {
		t.Fatalf("index.json has %d entries, want 1 (the multi-platform index)", len(rootManifest.Manifests))
	}
	top := rootManifest.Manifests[0]
	if top.MediaType != types.OCIImageIndex {
		t.Errorf("index.json entry media type %s, want %s", top.MediaType, types.OCIImageIndex)
	}
	if got := top.Annotations["org.opencontainers.image.ref.name"]; got != testTag {
		t.Errorf("ref.name = %q, want %q", got, testTag)
	}
	idx, err := root.ImageIndex(top.Digest)
	if err != nil {
		t.Fatal(err)
	}
	// Manifests and configs are consistent and every blob is there
	// (imageFiles checks the layers' digests, sizes and diff IDs: reading
	// them twice under -race costs a minute).
	if err := validate.Index(idx, validate.Fast); err != nil {
		t.Errorf("the OCI layout's image index does not validate: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.title":       "ecr-preflight",
		"org.opencontainers.image.description": "Kubernetes admission webhook that catches ECR images the nodes cannot pull",
		"org.opencontainers.image.source":      "https://github.com/ecr-preflight/ecr-preflight",
		"org.opencontainers.image.version":     testVersion,
		"org.opencontainers.image.revision":    testCommit,
	}
	for k, v := range wantLabels {
		if im.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, im.Annotations[k], v)
		}
	}
	if got := im.Annotations["org.opencontainers.image.created"]; got != "2023-11-14T22:13:20Z" {
		t.Errorf("index annotation created = %q, want 2023-11-14T22:13:20Z", got)
	}

	var platforms []string
	var baseLayers []v1.Hash
	for _, desc := range im.Manifests {
		if desc.Platform == nil {
			t.Fatalf("manifest %s has no platform", desc.Digest)
		}
		platform := desc.Platform.String()
		platforms = append(platforms, platform)
		if desc.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: media type %s, want %s", platform, desc.MediaType, types.OCIManifestSchema1)
		}
		if desc.ArtifactType != "" {
			t.Errorf("%s: index entry has artifactType %q; an image has none", platform, desc.ArtifactType)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.ReplaceAll(platform, "/", "_"), func(t *testing.T) {
			checkImageConfig(t, img, desc.Platform, wantLabels)
			files := imageFiles(t, img)
			checkFiles(t, files)
			bin := files["ecr-preflight"].data
			checkBinary(t, bin, desc.Platform.Architecture)
			if desc.Platform.Architecture == runtime.GOARCH {
				checkVersionOutput(t, bin, desc.Platform.Architecture)
			}
			checkDockerTarball(t, filepath.Join(out, "ecr-preflight-linux-"+desc.Platform.Architecture+".tar"), img)
		})
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 2 {
			t.Fatalf("%s: %d layers, want 2 (base, binary)", platform, len(layers))
		}
		d, err := layers[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		baseLayers = append(baseLayers, d)
	}
	slices.Sort(platforms)
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms %v, want %v", platforms, want)
	}
	if !slices.Contains(platforms, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("no image for this machine's platform %s/%s: the binary could not be run", runtime.GOOS, runtime.GOARCH)
	}
	if len(baseLayers) == 2 && baseLayers[0] != baseLayers[1] {
		t.Errorf("the base layer differs between platforms (%s, %s); it should be shared", baseLayers[0], baseLayers[1])
	}
}

func checkImageConfig(t *testing.T, img v1.Image, p *v1.Platform, wantLabels map[string]string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("config platform %s/%s, want %s", cf.OS, cf.Architecture, p)
	}
	c := cf.Config
	if !reflect.DeepEqual(c.Entrypoint, []string{"/ecr-preflight"}) {
		t.Errorf("entrypoint %q, want [/ecr-preflight]", c.Entrypoint)
	}
	if !reflect.DeepEqual(c.Cmd, []string{"serve"}) {
		t.Errorf("cmd %q, want [serve]", c.Cmd)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if c.WorkingDir != "/" {
		t.Errorf("working dir %q, want /", c.WorkingDir)
	}
	if !slices.Contains(c.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt") {
		t.Errorf("env %q lacks SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", c.Env)
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e, "SHELL=") {
			t.Errorf("env has %s; the image has no shell", e)
		}
	}
	if !reflect.DeepEqual(c.Labels, wantLabels) {
		t.Errorf("labels\n got %v\nwant %v", c.Labels, wantLabels)
	}
	if got := cf.Created.UTC(); !got.Equal(time.Unix(testEpoch, 0)) {
		t.Errorf("created %s, want %s (SOURCE_DATE_EPOCH)", got, time.Unix(testEpoch, 0).UTC())
	}
	if len(cf.History) != 2 {
		t.Errorf("%d history entries, want 2", len(cf.History))
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	if mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want %s", mt, types.OCIManifestSchema1)
	}
}

// imageFiles reads every layer of img, in order, checks it against its
// digest, size and diff ID, and returns the files the container sees. A name
// in two layers fails: nothing is overridden.
func imageFiles(t *testing.T, img v1.Image) map[string]tarEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]tarEntry{}
	for i, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		if mt != types.OCILayer {
			t.Errorf("layer %d media type %s, want %s", i, mt, types.OCILayer)
		}
		checkLayerDigest(t, i, l)
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		diffID := sha256.New()
		tr := tar.NewReader(io.TeeReader(rc, diffID))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			name := strings.TrimPrefix(h.Name, "./")
			if _, dup := files[name]; dup {
				t.Errorf("%s is in two layers", name)
			}
			e := tarEntry{mode: h.Mode, uid: h.Uid, gid: h.Gid, mtime: h.ModTime}
			switch h.Typeflag {
			case tar.TypeDir:
				if !strings.HasSuffix(name, "/") {
					name += "/"
				}
			case tar.TypeReg:
				if e.data, err = io.ReadAll(tr); err != nil {
					t.Fatal(err)
				}
			default:
				t.Errorf("%s: tar type %q, want only files and directories (no links, devices)", name, h.Typeflag)
			}
			files[name] = e
		}
		if _, err := io.Copy(diffID, rc); err != nil { // the end-of-archive padding
			t.Fatal(err)
		}
		_ = rc.Close()
		want, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		if got := "sha256:" + hex.EncodeToString(diffID.Sum(nil)); got != want.String() {
			t.Errorf("layer %d: uncompressed digest %s, want diff ID %s", i, got, want)
		}
	}
	return files
}

// checkLayerDigest: the layer blob is the size and digest its manifest says.
func checkLayerDigest(t *testing.T, i int, l v1.Layer) {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	got, size, err := v1.SHA256(rc)
	if err != nil {
		t.Fatal(err)
	}
	want, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	wantSize, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	if got != want || size != wantSize {
		t.Errorf("layer %d: blob %s (%d bytes), want %s (%d bytes)", i, got, size, want, wantSize)
	}
}

var shells = regexp.MustCompile(`(^|/)(sh|bash|ash|dash|zsh|ksh|mksh|csh|tcsh|fish|busybox|toybox)$`)

func checkFiles(t *testing.T, files map[string]tarEntry) {
	t.Helper()
	for name, e := range files {
		if shells.MatchString(name) {
			t.Errorf("%s: a shell in the image", name)
		}
		if strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "sbin/") || strings.HasPrefix(name, "usr/") {
			t.Errorf("%s: the image has no bin, sbin or usr", name)
		}
		if !strings.HasSuffix(name, "/") && e.mode&0o111 != 0 && name != "ecr-preflight" {
			t.Errorf("%s is executable (mode %o); only /ecr-preflight may be", name, e.mode)
		}
		want, ok := wantFiles[name]
		if !ok {
			t.Errorf("unexpected file %s in the image", name)
			continue
		}
		if e.mode != want.mode || e.uid != want.uid || e.gid != want.gid {
			t.Errorf("%s: mode %o owner %d:%d, want mode %o owner %d:%d", name, e.mode, e.uid, e.gid, want.mode, want.uid, want.gid)
		}
		if !e.mtime.Equal(time.Unix(testEpoch, 0)) {
			t.Errorf("%s: mtime %s, want SOURCE_DATE_EPOCH %s", name, e.mtime.UTC(), time.Unix(testEpoch, 0).UTC())
		}
	}
	for name := range wantFiles {
		if _, ok := files[name]; !ok {
			t.Errorf("%s missing from the image", name)
		}
	}

	// The CA bundle is the build machine's, and it holds certificates.
	host, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("the build machine's CA bundle: %v (apt-get install ca-certificates)", err)
	}
	ca := files["etc/ssl/certs/ca-certificates.crt"].data
	if !bytes.Equal(ca, host) {
		t.Errorf("the image's CA bundle (%d bytes) differs from /etc/ssl/certs/ca-certificates.crt (%d bytes)", len(ca), len(host))
	}
	if !x509.NewCertPool().AppendCertsFromPEM(ca) {
		t.Error("the image's CA bundle holds no certificate")
	}

	passwd := string(files["etc/passwd"].data)
	if !strings.Contains(passwd, "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot 65532:65532 entry:\n%s", passwd)
	}
	for _, line := range strings.Split(strings.TrimSpace(passwd), "\n") {
		if f := strings.Split(line, ":"); len(f) != 7 || f[6] != "/sbin/nologin" {
			t.Errorf("/etc/passwd line %q: want 7 fields and no login shell", line)
		}
	}
	if group := string(files["etc/group"].data); !strings.Contains(group, "\nnonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot 65532 entry:\n%s", group)
	}
}

// checkBinary: a static ELF executable for arch, built with -trimpath.
func checkBinary(t *testing.T, bin []byte, arch string) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("/ecr-preflight is not ELF: %v", err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("/ecr-preflight machine %s, want %s", f.Machine, want)
	}
	if f.Type != elf.ET_EXEC {
		t.Errorf("/ecr-preflight ELF type %s, want %s", f.Type, elf.ET_EXEC)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("/ecr-preflight has a %s program header: dynamically linked", p.Type)
		}
	}
	if bytes.Contains(bin, []byte(moduleRoot(t))) {
		t.Errorf("/ecr-preflight holds the build directory %s: not built with -trimpath", moduleRoot(t))
	}
}

// checkVersionOutput runs the binary taken out of the image.
func checkVersionOutput(t *testing.T, bin []byte, arch string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ecr-preflight")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--version")
	cmd.Env = []string{} // as in the image: nothing inherited
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ecr-preflight --version: %v\n%s", err, out)
	}
	want := "ecr-preflight " + testVersion + " (commit " + testCommit[:12] + ", " + runtime.Version() + ", linux/" + arch + ")\n"
	if string(out) != want {
		t.Errorf("ecr-preflight --version printed %q, want %q", out, want)
	}
}

// checkDockerTarball: the `docker load` tarball holds the same image.
func checkDockerTarball(t *testing.T, path string, img v1.Image) {
	t.Helper()
	tb, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatalf("docker tarball: %v", err)
	}
	want, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	got, err := tb.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s: config %s, want the layout's %s", path, got, want)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 || !strings.HasSuffix(m[0].RepoTags[0], "ecr-preflight:"+testTag) {
		t.Errorf("%s: manifest.json %+v, want one image tagged ecr-preflight:%s", path, m, testTag)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return dir
}
