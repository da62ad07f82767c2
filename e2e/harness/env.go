package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// ManifestFile is the seed's Deployment, copied into Env.WorkDir so that
// kubectl commands read (and the demo shows) `-f ui-private.yaml`.
const ManifestFile = "ui-private.yaml"

// seedTimeout bounds planting the seed in moto.
const seedTimeout = 30 * time.Second

// Options change what Start prepares.
type Options struct {
	// Binary is the ecr-preflight binary to run. Empty builds one from
	// this checkout into a temporary directory, so tests never run a stale
	// bin/ecr-preflight; the demo passes the one `make build` produced.
	Binary string
}

// Env is a running API server, a moto acting as the seed's account with
// the seed planted, and the ecr-preflight binary, ready to serve.
type Env struct {
	// Kube is the envtest environment (kube-apiserver and etcd).
	Kube *envtest.Environment
	// Config is an admin (system:masters) REST config for Kube.
	Config *rest.Config
	// Kubeconfig is Config as a file, for kubectl and the webhook.
	Kubeconfig string
	// Moto is the AWS emulator; every request acts as the seed's account.
	Moto *moto.Server
	// Seed is the planted scenario: image, node role, Deny policy.
	Seed *awsseed.Seed
	// Binary is the ecr-preflight binary Serve runs.
	Binary string
	// WorkDir is where kubectl runs; it holds ManifestFile.
	WorkDir string

	kubectl  string
	cacheDir string
}

// Start builds (or takes) the binary, starts moto and the API server, and
// plants the seed. Everything stops when t ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	e := &Env{WorkDir: t.TempDir(), cacheDir: t.TempDir()}

	// The build is the one slow step that returns an error rather than
	// failing t, so it can overlap the start-up of moto and the API server.
	built := make(chan error, 1)
	if o.Binary == "" {
		e.Binary = filepath.Join(t.TempDir(), "ecr-preflight")
		// If start-up fails first, stop the build rather than leave it
		// running after the test.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		t.Cleanup(func() { cancel(); wg.Wait() })
		wg.Go(func() { built <- buildBinary(ctx, e.Binary) })
	} else {
		// Before anything starts: a missing binary is a one-line failure.
		if err := checkBinary(o.Binary); err != nil {
			t.Fatal(err)
		}
		e.Binary = o.Binary
		built <- nil
	}

	e.Moto = moto.Start(t, moto.WithAccountID(awsseed.SeedAccount))
	e.Kube, e.Config = envtestutil.Start(t)
	e.Kubeconfig = envtestutil.WriteKubeconfig(t, e.Kube)
	e.kubectl = e.Kube.ControlPlane.KubectlPath
	if e.kubectl == "" {
		t.Fatal("kubectl not found: put kubectl on PATH or set TEST_ASSET_KUBECTL")
	}

	ctx, cancel := context.WithTimeout(context.Background(), seedTimeout)
	defer cancel()
	seed, err := awsseed.PlantSeed(ctx, awsseed.NewAccount(e.Moto.Config(), awsseed.SeedAccount))
	if err != nil {
		t.Fatalf("planting the seed scenario in moto: %v\nmoto output:\n%s", err, e.Moto.Output())
	}
	e.Seed = seed

	if err := copyManifest(e.WorkDir); err != nil {
		t.Fatal(err)
	}
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	return e
}

// ManifestPath is the seed's Deployment in the source tree.
func ManifestPath() (string, error) {
	root, err := envtestutil.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "e2e", "testdata", ManifestFile), nil
}

// copyManifest puts the seed's Deployment into dir.
func copyManifest(dir string) error {
	src, err := ManifestPath()
	if err != nil {
		return fmt.Errorf("locating %s: %w", ManifestFile, err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading the seed's Deployment: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, ManifestFile), data, 0o600)
}
