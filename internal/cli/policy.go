package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

// maxRequestBytes bounds what `policy eval` reads: a request holds at most a
// few policies of at most a few KB each (IAM caps managed policies at 6 KB,
// repository policies at 10 KB).
const maxRequestBytes = 16 << 20

// newPolicyCommand groups the commands that work on IAM policy documents.
func newPolicyCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with IAM policy documents",
	}
	cmd.AddCommand(newPolicyEvalCommand(s))
	return cmd
}

func newPolicyEvalCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "eval [FILE|-]",
		Short: "Evaluate an authorization request against IAM policies",
		Long: `Reads one JSON request (principal, action, resource, context and the policies
that apply) from FILE, or from standard input when FILE is "-" or absent, and
prints the decision as JSON: allow, explicit-deny, implicit-deny or
undetermined, with the deciding statements. See docs/policy-evaluation.md.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			data, err := readInput(name, s.In)
			if err != nil {
				return usageError("%v", err)
			}
			req, set, err := iampolicy.ParseEvalRequest(data)
			if err != nil {
				return usageError("%v", err)
			}
			if req.Now.IsZero() {
				req.Now = time.Now()
			}
			out, err := json.MarshalIndent(iampolicy.Evaluate(req, set), "", "  ")
			if err != nil {
				return fmt.Errorf("encoding the decision: %w", err)
			}
			_, err = fmt.Fprintf(s.Out, "%s\n", out)
			return err
		},
	}
}

// readInput reads the named file, or in for "-".
func readInput(name string, in io.Reader) ([]byte, error) {
	r := in
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("reading request: %w", err)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	if r == nil {
		return nil, fmt.Errorf("reading request: no standard input")
	}
	data, err := io.ReadAll(io.LimitReader(r, maxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading request from %s: %w", name, err)
	}
	if len(data) > maxRequestBytes {
		return nil, fmt.Errorf("reading request from %s: larger than %d bytes", name, maxRequestBytes)
	}
	return data, nil
}
