package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
)

// TestBuildAssetsTriesSetupEnvtestFirst runs e2e/tools/build-assets.sh (what
// `make envtest-assets` runs) against a setup-envtest release index served
// on loopback: where the envtest release can be downloaded it is used, and
// the script says so; where it cannot, ENVTEST_DOWNLOAD=only fails naming
// the reason (auto would build from the Go module proxy instead, which takes
// minutes and is what every other e2e test already relies on). The archive
// holds stand-ins that report the pinned versions: what setup-envtest
// fetches and checks is the point, not the binaries.
func TestBuildAssetsTriesSetupEnvtestFirst(t *testing.T) {
	root, err := envtestutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "e2e", "tools", "build-assets.sh")
	kube := pinned(t, filepath.Join(root, "e2e", "tools", "kube-apiserver", "go.mod"), "k8s.io/kubernetes")

	archiveName := "envtest-" + kube + "-linux-amd64.tar.gz"
	archive := envtestArchive(t, map[string]string{
		"kube-apiserver": "#!/bin/sh\necho 'Kubernetes " + kube + "'\n",
		"etcd":           "#!/bin/sh\necho 'etcd Version: 3.6.99'\n",
	})
	sum := sha512.Sum512(archive)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("/index.yaml", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, "releases:\n  %s:\n    %s:\n      hash: %s\n      selfLink: %s/%s\n",
			kube, archiveName, hex.EncodeToString(sum[:]), srv.URL, archiveName)
	})
	mux.HandleFunc("/"+archiveName, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(archive) })

	tools := t.TempDir() // one setup-envtest for every run
	run := func(outDir, index string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script, outDir)
		cmd.Env = append(os.Environ(), "ENVTEST_DOWNLOAD=only", "ENVTEST_INDEX="+index, "ENVTEST_DOWNLOAD_TIMEOUT=60", "SETUP_ENVTEST_DIR="+tools)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out := t.TempDir()
	log, err := run(out, srv.URL+"/index.yaml")
	if err != nil {
		t.Fatalf("build-assets.sh with a reachable index: %v\n%s", err, log)
	}
	wantAll(t, "build-assets.sh output", log, "downloaded by setup-envtest", "kube-apiserver reports: Kubernetes "+kube)
	stamp, err := os.ReadFile(filepath.Join(out, ".versions"))
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "the stamp", string(stamp), "kube-apiserver "+kube+" setup-envtest")
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if info, err := os.Stat(filepath.Join(out, name)); err != nil || info.Mode()&0o111 == 0 {
			t.Errorf("%s not installed as an executable: %v", name, err)
		}
	}
	// Up to date now: nothing is fetched again.
	if log, err := run(out, "http://127.0.0.1:1/index.yaml"); err != nil || !strings.Contains(log, "up to date") {
		t.Errorf("second run: %v\n%s", err, log)
	}

	// Nothing to download from: the reason is given.
	log, err = run(t.TempDir(), "http://127.0.0.1:1/index.yaml")
	if err == nil {
		t.Fatalf("build-assets.sh with ENVTEST_DOWNLOAD=only and no index succeeded:\n%s", log)
	}
	wantAll(t, "build-assets.sh output", log, "setup-envtest failed", "connection refused", "ENVTEST_DOWNLOAD=only")
}

// pinned reads the version of module in a go.mod.
func pinned(t *testing.T, gomod, module string) string {
	t.Helper()
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s does not pin %s", gomod, module)
	}
	return string(m[1])
}

// envtestArchive is a .tar.gz laid out as envtest releases are
// (controller-tools/envtest/NAME).
func envtestArchive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		hdr := &tar.Header{Name: "controller-tools/envtest/" + name, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
