package imagebuild

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeBinaries stands in for the compiled binaries where only the assembly
// is under test (TestMakeImage builds the real ones).
func fakeBinaries() map[string][]byte {
	return map[string][]byte{
		"linux/amd64": []byte("\x7fELF fake amd64"),
		"linux/arm64": []byte("\x7fELF fake arm64"),
	}
}

func testOptions() Options {
	o := DefaultOptions()
	o.Version, o.Commit, o.Created = testVersion, testCommit, time.Unix(testEpoch, 0)
	return o
}

func testCABundle(t *testing.T) []byte {
	t.Helper()
	b, err := ReadCABundle(DefaultCABundle)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The same inputs give the same digest; a different version or time does
// not.
func TestAssembleIsReproducible(t *testing.T) {
	ca := testCABundle(t)
	digest := func(o Options) string {
		idx, err := Assemble(o, ca, fakeBinaries())
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	first := digest(testOptions())
	if again := digest(testOptions()); again != first {
		t.Errorf("two assemblies of the same inputs: %s, then %s", first, again)
	}
	other := testOptions()
	other.Version = "v9.8.8"
	if digest(other) == first {
		t.Error("another version gave the same digest")
	}
	later := testOptions()
	later.Created = later.Created.Add(time.Second)
	if digest(later) == first {
		t.Error("another SOURCE_DATE_EPOCH gave the same digest")
	}
}

func TestAssembleNeedsEveryBinary(t *testing.T) {
	bins := fakeBinaries()
	delete(bins, "linux/arm64")
	if _, err := Assemble(testOptions(), testCABundle(t), bins); err == nil || !strings.Contains(err.Error(), "no binary for linux/arm64") {
		t.Errorf("err = %v, want no binary for linux/arm64", err)
	}
}

// Write on fake binaries: the layout and tarballs land under OutDir and a
// second write replaces the first, leaving no temporary directory behind.
func TestWriteReplacesEarlierOutput(t *testing.T) {
	o := testOptions()
	o.OutDir = t.TempDir()
	for i, version := range []string{"v1.0.0", "v1.0.1"} {
		o.Version = version
		idx, err := Assemble(o, testCABundle(t), fakeBinaries())
		if err != nil {
			t.Fatal(err)
		}
		res, err := Write(o, idx)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if res.Name != "ecr-preflight:"+version {
			t.Errorf("name %q, want ecr-preflight:%s", res.Name, version)
		}
	}
	entries, err := os.ReadDir(o.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "ecr-preflight-linux-amd64.tar ecr-preflight-linux-arm64.tar oci"; got != want {
		t.Errorf("output directory holds %q, want %q", got, want)
	}
	var index struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(o.OutDir, "oci", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v1.0.1" {
		t.Errorf("index.json after the second write: %s", b)
	}
}

func TestMissingCABundleSaysWhatToInstall(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := Main([]string{"-module", moduleRoot(t), "-out", out, "-ca-bundle", filepath.Join(out, "no-such-bundle.crt")}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "apt-get install ca-certificates") {
		t.Errorf("stderr %q does not say apt-get install ca-certificates", stderr.String())
	}
	if strings.Contains(stdout.String(), "go build") {
		t.Errorf("compiled before checking the CA bundle: %q", stdout.String())
	}
}

func TestCABundleWithoutCertificates(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty.crt":   "",
		"garbage.crt": "not a certificate\n",
		"key.pem":     "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"broken.crt":  "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadCABundle(path); err == nil {
			t.Errorf("%s: accepted as a CA bundle", name)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-version", "v1 beta"},
		{"-version", ""},
		{"-commit", "not-hex"},
		{"-platforms", "windows/amd64"},
		{"-platforms", "linux/arm/v7"},
		{"-platforms", "linux/riscv64"},
		{"-platforms", "linux/amd64,linux/amd64"},
		{"-platforms", ""},
		{"-source-date-epoch", "yesterday"},
		{"-repository", "Upper/Case"},
		{"-tag", "a+b"},
		{"extra-argument"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(append([]string{"-out", t.TempDir()}, args...), &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2; stderr %q", code, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing (nothing built)", stdout.String())
			}
		})
	}
}

func TestCheckStaticELF(t *testing.T) {
	// Debian's coreutils are dynamically linked.
	err := CheckStaticELF("/bin/true", "amd64")
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/true: err = %v, want dynamically linked", err)
	}
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckStaticELF(notELF, "amd64"); err == nil {
		t.Error("a script passed as a static ELF binary")
	}
}

// The Dockerfile is not built on machines without a container engine; this
// keeps it describing the same image as the Go builder.
func TestDockerfileMatchesGoBuilder(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(b)
	quoted := func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = fmt.Sprintf("%q", s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	o := DefaultOptions()
	o.Version, o.Commit = "${VERSION}", "${COMMIT}"
	want := []string{
		"\nUSER " + User + "\n",
		"\nWORKDIR " + WorkingDir + "\n",
		"\nENTRYPOINT " + quoted(Entrypoint) + "\n",
		"\nCMD " + quoted(Cmd) + "\n",
		"\nENV SSL_CERT_FILE=" + CABundlePath + "\n",
		"\nCOPY --from=build /out/ecr-preflight " + BinaryPath + "\n",
		"CGO_ENABLED=0 ",
		"GOAMD64=v1 GOARM64=v8.0",
		"go build -trimpath -buildvcs=false",
		`-ldflags "` + LDFlags("${VERSION}", "${COMMIT}") + `"`,
		"FROM gcr.io/distroless/static-debian13:nonroot\n",
	}
	for k, v := range o.Labels() {
		want = append(want, fmt.Sprintf("%s=%q", k, v))
	}
	for _, w := range want {
		if !strings.Contains(dockerfile, w) {
			t.Errorf("Dockerfile lacks %q", w)
		}
	}

	// .dockerignore keeps every package the binary is built from.
	ignore, err := os.ReadFile(filepath.Join(moduleRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", mainPackage)
	cmd.Dir = moduleRoot(t)
	deps, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dir := range strings.Fields(string(deps)) {
		rel, err := filepath.Rel(moduleRoot(t), dir)
		if err != nil {
			t.Fatal(err)
		}
		top := strings.Split(filepath.ToSlash(rel), "/")[0]
		for _, line := range strings.Split(string(ignore), "\n") {
			if line = strings.TrimSpace(line); line == top || line == top+"/" {
				t.Errorf(".dockerignore excludes %s, where package %s lives", line, rel)
			}
		}
	}
}
