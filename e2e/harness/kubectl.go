package harness

import (
	"context"
	"os/exec"
	"strings"
)

// kubectlRequestTimeout bounds each kubectl request; above the webhook's
// HookTimeoutSeconds, so a slow webhook shows as its own error.
const kubectlRequestTimeout = "30s"

// Result is what one kubectl command did.
type Result struct {
	// Command is the command as a person would type it: "kubectl " and the
	// arguments, without the connection flags the harness adds.
	Command string
	// Stdout and Stderr are kubectl's two streams. Output is stderr then
	// stdout: what a terminal shows for the single-object commands used
	// here (warnings arrive with the response, before kubectl prints the
	// result), without depending on how two pipes interleave.
	Stdout, Stderr, Output string
	// Err is nil when kubectl exited 0.
	Err error
}

// Warnings are the lines kubectl printed as "Warning: ...", prefix cut:
// the API server's warnings, admission warnings among them.
func (r Result) Warnings() []string {
	var out []string
	for line := range strings.Lines(r.Stderr) {
		if w, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "Warning: "); ok {
			out = append(out, w)
		}
	}
	return out
}

// Kubectl runs kubectl in WorkDir against the API server as admin and
// returns what it did; a non-zero exit is Result.Err, not a failure here.
// Discovery is cached in one directory for the whole Env, which keeps each
// call to a few hundred milliseconds.
func (e *Env) Kubectl(ctx context.Context, args ...string) Result {
	full := append([]string{
		"--kubeconfig=" + e.Kubeconfig,
		"--cache-dir=" + e.cacheDir,
		"--request-timeout=" + kubectlRequestTimeout,
	}, args...)
	cmd := exec.CommandContext(ctx, e.kubectl, full...)
	cmd.Dir = e.WorkDir
	cmd.Env = e.AWSEnv() // no KUBECONFIG from the caller
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return Result{
		Command: "kubectl " + strings.Join(args, " "),
		Stdout:  stdout.String(),
		Stderr:  stderr.String(),
		Output:  stderr.String() + stdout.String(),
		Err:     err,
	}
}
