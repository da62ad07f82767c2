package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
)

// Tool returns the path of a tool the Makefile installs into bin/ at a
// pinned version (`make tools`: helm, helm-docs). A missing one fails t,
// never skips it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	root, err := envtestutil.RepoRoot()
	if err != nil {
		t.Fatalf("locating %s: %v", name, err)
	}
	path := filepath.Join(root, "bin", name)
	if info, err := os.Stat(path); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing: run `make tools` (installs the pinned helm and helm-docs into bin/)", path)
	}
	return path
}

// Helm runs bin/helm, cut off from the user's Helm configuration, caches
// and kubeconfig.
type Helm struct {
	// Bin is the helm binary.
	Bin string
	// Kubeconfig is passed as --kubeconfig to the commands that talk to
	// the API server (empty: none, for lint and template).
	Kubeconfig string
	// Dir is where helm runs: relative chart paths start there.
	Dir string

	env []string
}

// NewHelm returns a Helm with its own config, cache and data directories
// under t's temporary directory, running in the repository root (so
// `charts/ecr-preflight` is the chart, as in the README).
func NewHelm(t testing.TB, kubeconfig string) *Helm {
	t.Helper()
	root, err := envtestutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := make([]string, 0, len(os.Environ())+4)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HELM_") || strings.HasPrefix(kv, "KUBECONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	return &Helm{Bin: Tool(t, "helm"), Kubeconfig: kubeconfig, Dir: root, env: env}
}

// Run runs helm with args; a non-zero exit is Result.Err. Commands that
// reach the API server get --kubeconfig.
func (h *Helm) Run(ctx context.Context, args ...string) Result {
	full := args
	if h.Kubeconfig != "" && len(args) > 0 && needsCluster(args[0]) {
		full = append(append([]string{}, args...), "--kubeconfig", h.Kubeconfig)
	}
	cmd := exec.CommandContext(ctx, h.Bin, full...)
	cmd.Dir = h.Dir
	cmd.Env = h.env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("helm %s: %w", strings.Join(args, " "), err)
	}
	return Result{
		Command: "helm " + strings.Join(args, " "),
		Stdout:  stdout.String(),
		Stderr:  stderr.String(),
		Output:  stderr.String() + stdout.String(),
		Err:     err,
	}
}

// needsCluster: the helm commands that talk to the API server.
func needsCluster(cmd string) bool {
	switch cmd {
	case "install", "upgrade", "uninstall", "get", "status", "list", "rollback", "history", "test":
		return true
	}
	return false
}
