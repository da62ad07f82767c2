package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
)

// buildTimeout bounds `go build`; a cold build cache on two busy cores is
// the slow case.
const buildTimeout = 5 * time.Minute

// buildBinary builds ./cmd/ecr-preflight of this checkout into out.
func buildBinary(ctx context.Context, out string) error {
	root, err := envtestutil.RepoRoot()
	if err != nil {
		return fmt.Errorf("building ecr-preflight: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/ecr-preflight")
	cmd.Dir = root
	// Cancelling kills the compiler processes go build runs too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/ecr-preflight (in %s): %w\n%s", root, err, output)
	}
	return nil
}

// checkBinary fails early, with the command that builds it, when a given
// binary is missing.
func checkBinary(path string) error {
	info, err := os.Stat(path)
	if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return fmt.Errorf("ecr-preflight binary %s is missing or not executable: run `make build`", path)
	}
	return nil
}

// BuildBinary builds ./cmd/ecr-preflight of this checkout into out, for
// tests that run the binary without the rest of Env (no moto).
func BuildBinary(ctx context.Context, out string) error { return buildBinary(ctx, out) }
