package harness

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// Fake static credentials: moto accepts any, and acts as the seed's account
// whatever they are (moto.WithAccountID).
const (
	fakeAccessKey = "AKIAE2ETESTING000000"
	fakeSecretKey = "e2e-secret"
)

// AWSEnv is the environment of a process that reaches AWS through moto
// only: its endpoint, fake static credentials and region us-west-2. It
// drops the caller's AWS_* variables and config files, so no real profile,
// role or endpoint can leak in.
func (e *Env) AWSEnv() []string { return awsEnv(e.Moto.URL) }

// awsEnv is AWSEnv with AWS at endpoint: moto, or a proxy in front of it.
func awsEnv(endpoint string) []string {
	env := make([]string, 0, len(os.Environ())+8)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "KUBECONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_ENDPOINT_URL="+endpoint,
		"AWS_ACCESS_KEY_ID="+fakeAccessKey,
		"AWS_SECRET_ACCESS_KEY="+fakeSecretKey,
		"AWS_REGION="+moto.Region,
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	)
}

// CLIResult is what a CLI command of the binary did.
type CLIResult struct {
	Stdout, Stderr string
	// Code is the exit status; -1 when the command did not run.
	Code int
	// Err is nil when it exited 0.
	Err error
}

// Run runs the ecr-preflight binary with args (a CLI command such as
// pools, check or audit) against moto.
func (e *Env) Run(ctx context.Context, args ...string) CLIResult {
	cmd := exec.CommandContext(ctx, e.Binary, args...)
	cmd.Env = awsEnv(e.Moto.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	// ExitCode is -1 when the command never ran (ProcessState nil).
	return CLIResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err, Code: cmd.ProcessState.ExitCode()}
}
