package envtestutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	// modulePath identifies the repository root when walking up from the
	// test's working directory (the nested e2e/tools/* modules have their own
	// go.mod files, so "first go.mod found" is not enough).
	modulePath = "github.com/ecr-preflight/ecr-preflight"

	// assetsEnv is the variable envtest itself reads; the Makefile exports it.
	assetsEnv = "KUBEBUILDER_ASSETS"

	missingHint = "run `make envtest-assets` (builds kube-apiserver and etcd from the Go module proxy into bin/k8s; a cold build takes ~10 minutes)"
)

// AssetsDir returns the directory holding kube-apiserver and etcd:
// $KUBEBUILDER_ASSETS when set, else <repo>/bin/k8s. It does not check that
// the binaries are there; Start does.
func AssetsDir() (string, error) {
	if dir := os.Getenv(assetsEnv); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("%s is unset and the repository root was not found: %w", assetsEnv, err)
	}
	return filepath.Join(root, "bin", "k8s"), nil
}

// RepoRoot walks up from the working directory (go test runs each package in
// its own source directory) to the directory whose go.mod declares this
// module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isRepoRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod declaring module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func isRepoRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == modulePath
		}
	}
	return false
}

// CheckAssets returns an error naming every missing binary in dir, with the
// command that builds them.
func CheckAssets(dir string) error {
	var missing []string
	for _, name := range []string{"kube-apiserver", "etcd"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("envtest binaries missing from %s: %s; %s",
			dir, strings.Join(missing, ", "), missingHint)
	}
	return nil
}

var setLoggerOnce sync.Once

// Start starts kube-apiserver and etcd and returns the environment and an
// admin (system:masters) REST config. The environment is stopped when the
// test ends. configure functions run before start-up, to set fields such as
// WebhookInstallOptions, CRDDirectoryPaths or extra API server flags
// (env.ControlPlane.GetAPIServer().Configure().Set(...)).
//
// Start fails the test if the binaries are missing or do not start.
func Start(t testing.TB, configure ...func(*envtest.Environment)) (*envtest.Environment, *rest.Config) {
	t.Helper()

	// controller-runtime prints a stack trace about a missing logger the
	// first time envtest logs anything unless one is set. Its messages (for
	// example start-up retries) are worth seeing, so send them to stderr
	// rather than discarding them.
	setLoggerOnce.Do(func() {
		ctrllog.SetLogger(funcr.New(func(prefix, args string) {
			fmt.Fprintln(os.Stderr, "envtest:", prefix, args)
		}, funcr.Options{}))
	})

	dir, err := AssetsDir()
	if err != nil {
		t.Fatalf("locating envtest binaries: %v; %s", err, missingHint)
	}
	if err := CheckAssets(dir); err != nil {
		t.Fatal(err)
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		// Never fetch anything: this machine and CI cannot reach the
		// release index, and a download would hide a missing build step.
		DownloadBinaryAssets: false,
		// A cold etcd + API server start on a busy 2-core machine can take
		// longer than envtest's 20s default.
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// Set the paths explicitly: envtest's own lookup would prefer
	// TEST_ASSET_* variables and then KUBEBUILDER_ASSETS over the directory
	// we just checked.
	env.ControlPlane.GetAPIServer().Path = filepath.Join(dir, "kube-apiserver")
	env.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(dir, "etcd")}
	env.ControlPlane.KubectlPath = kubectlPath(dir)

	for _, f := range configure {
		f(env)
	}

	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		// Stop whatever did start (etcd, temp dirs) before failing.
		_ = env.Stop()
		t.Fatalf("starting envtest (kube-apiserver and etcd from %s): %v", dir, err)
	}
	t.Logf("envtest control plane up at %s in %s", cfg.Host, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return env, cfg
}

// kubectlPath prefers a kubectl next to the API server binary (none is built
// today), then TEST_ASSET_KUBECTL, then PATH. An empty result only matters if
// Kubectl is called.
func kubectlPath(assetsDir string) string {
	if p := os.Getenv("TEST_ASSET_KUBECTL"); p != "" {
		return p
	}
	if p := filepath.Join(assetsDir, "kubectl"); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	return ""
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

// WriteKubeconfig writes the admin kubeconfig of a started environment to a
// file in the test's temp dir and returns its path, for kubectl or any other
// out-of-process client.
func WriteKubeconfig(t testing.TB, env *envtest.Environment) string {
	t.Helper()
	if len(env.KubeConfig) == 0 {
		t.Fatal("WriteKubeconfig: environment not started (KubeConfig is empty)")
	}
	return writeFile(t, "admin.kubeconfig", env.KubeConfig)
}

// AddUserKubeconfig provisions a user (authenticated by a client certificate
// signed by the envtest CA) and returns a kubeconfig file for it and its REST
// config. Use it to test what a non-admin identity may do; grant rights with
// RBAC objects created through the admin config.
func AddUserKubeconfig(t testing.TB, env *envtest.Environment, user envtest.User) (string, *rest.Config) {
	t.Helper()
	u, err := env.AddUser(user, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		t.Fatalf("adding envtest user %q: %v", user.Name, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig for envtest user %q: %v", user.Name, err)
	}
	return writeFile(t, user.Name+".kubeconfig", data), u.Config()
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return path
}

// Kubectl runs kubectl against the environment with the given kubeconfig and
// returns its stdout. It fails the test, showing stderr, if kubectl exits
// non-zero; use KubectlCmd to inspect failures yourself.
func Kubectl(t testing.TB, env *envtest.Environment, kubeconfig string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := KubectlCmd(ctx, t, env, kubeconfig, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("kubectl %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
		}
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String()
}

// KubectlCmd returns an unstarted kubectl command bound to kubeconfig. The
// kubectl is env.ControlPlane.KubectlPath (see kubectlPath); the machine's
// kubectl may be a few minor versions older than the API server, which is
// fine for the core verbs (get, apply, create, delete) e2e tests use.
func KubectlCmd(ctx context.Context, t testing.TB, env *envtest.Environment, kubeconfig string, args ...string) *exec.Cmd {
	t.Helper()
	if env.ControlPlane.KubectlPath == "" {
		t.Fatal("kubectl not found: set TEST_ASSET_KUBECTL or put kubectl on PATH")
	}
	// Keep the user's real kubeconfig and discovery cache out of the test.
	base := []string{"--kubeconfig=" + kubeconfig, "--cache-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, env.ControlPlane.KubectlPath, append(base, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	return cmd
}
