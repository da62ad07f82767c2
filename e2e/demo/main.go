// Command demo plays the seed scenario (shared/seed) in the terminal for
// `make demo`: a local kube-apiserver, moto acting as AWS account
// 1234567890, and the real `ecr-preflight serve` as the admission webhook.
// Each step shows the real command and its real output, and checks that it
// behaved as narrated: the demo exits non-zero if one did not, so it is a
// check as well as a show. Everything it starts is stopped, and its
// temporary files removed, when it ends, fails or is interrupted.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
)

func main() {
	binary := flag.String("binary", "", "ecr-preflight binary to run (default: bin/ecr-preflight of this checkout, built by `make build`)")
	flag.Parse()
	if *binary == "" {
		root, err := envtestutil.RepoRoot()
		if err != nil {
			fmt.Fprintf(os.Stderr, "demo: %v (run it from the checkout: make demo)\n", err)
			os.Exit(2)
		}
		*binary = filepath.Join(root, "bin", "ecr-preflight")
	}
	n := newNarrator(os.Stdout)
	code := harness.RunProgram("ecr-preflight-demo", func(tb testing.TB) {
		play(tb, n, *binary)
	})
	n.finish(code)
	os.Exit(code)
}
