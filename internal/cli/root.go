// Package cli builds the ecr-preflight command tree. Each subcommand turns
// its flags into one Options struct with a Validate method, wires real
// clients, and hands off to the package that does the work.
package cli

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes shared by every subcommand.
const (
	ExitOK    = 0
	ExitFail  = 1 // the command ran and found a definite problem
	ExitUsage = 2 // bad flags, arguments or input
	// ExitUnknown: nothing definite is wrong, but something could not be
	// decided or looked up.
	ExitUnknown = 3
)

// exitError carries an exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError reports bad input: exit 2 with a one-line message.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode ends the command with code and no message (the command has
// already printed its result).
func exitCode(code int) error { return &exitError{code: code} }

// Build information, set at link time by `make build` and the image builds
// (internal/imagebuild):
//
//	go build -ldflags "-X github.com/ecr-preflight/ecr-preflight/internal/cli.version=v0.1.0 \
//	  -X github.com/ecr-preflight/ecr-preflight/internal/cli.commit=$(git rev-parse HEAD)"
//
// A plain `go build` leaves version "dev" and commit empty.
var (
	version = "dev"
	commit  = ""
)

// versionString is what `ecr-preflight --version` prints after the command
// name, e.g. "v0.1.0 (commit 678d9864ce47, go1.26.8, linux/amd64)".
func versionString() string {
	c := commit
	if c == "" {
		c = "unknown"
	} else if len(c) > 12 {
		c = c[:12]
	}
	return fmt.Sprintf("%s (commit %s, %s, %s/%s)", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Streams are the command's standard input and outputs, passed in so tests
// can drive commands in-process.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// NewRootCommand builds the ecr-preflight command tree.
func NewRootCommand(s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "ecr-preflight",
		Short:         "Catch ECR images that nodes cannot pull before Kubernetes accepts the workload",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	// Declared here so cobra does not add its -v shorthand: serve's -v is
	// --verbosity.
	root.Flags().Bool("version", false, "print the version and exit")
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: err}
	})
	root.AddCommand(
		newPolicyCommand(s),
		newCheckCommand(s),
		newServeCommand(s),
		newPoolsCommand(s),
		newAuditCommand(s),
	)
	return root
}

// Execute runs the command tree with args and returns the process exit code.
func Execute(args []string, in io.Reader, out, errOut io.Writer) int {
	s := Streams{In: in, Out: out, Err: errOut}
	root := NewRootCommand(s)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			_, _ = fmt.Fprintf(errOut, "error: %v\n", ee.err)
		}
		return ee.code
	}
	// cobra's own errors (unknown command, bad args) are usage errors.
	_, _ = fmt.Fprintf(errOut, "error: %v\n", err)
	return ExitUsage
}

// joinLines folds a joined error (errors.Join puts each on its own line)
// into one line, so a usage error is always a single line on stderr.
func joinLines(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
