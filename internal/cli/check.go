package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
)

// CheckOptions are the flags of `ecr-preflight check`.
type CheckOptions struct {
	Engine EngineOptions
	// NodeRoles are the IAM roles the kubelet may pull as. Without any,
	// only existence is checked.
	NodeRoles roleARNs
	// Output is text (for people) or json (for machines).
	Output outputFormat
	// Timeout bounds the whole check.
	Timeout time.Duration

	rejected rejectedValues
}

// Validate reports every flag problem at once.
func (o *CheckOptions) Validate() error {
	errs := append([]error{o.Engine.Validate()}, o.rejected...)
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s: must be positive", o.Timeout))
	}
	return errors.Join(errs...)
}

func newCheckCommand(s Streams) *cobra.Command {
	o := &CheckOptions{Output: outputText, Timeout: 30 * time.Second, Engine: NewEngineOptions()}
	cmd := &cobra.Command{
		Use:   "check [flags] IMAGE...",
		Short: "Check that images exist and that node roles may pull them",
		Long: `check answers, from real AWS APIs, whether a kubelet running as the given node
roles will pull each image, and if not, exactly why and how to fix it.

Exit status: 0 when every image is pullable or skipped (not in a private ECR
registry), 1 when any is not pullable, 3 when none is not pullable but some
could not be decided or looked up, 2 for usage errors.`,
		Example: `  ecr-preflight check --node-role-arn arn:aws:iam::111122223333:role/EksNodeRole \
    111122223333.dkr.ecr.us-west-2.amazonaws.com/app:1.2.1
  ecr-preflight check --output json --context aws:SourceVpce=vpce-0abc IMAGE...`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("check needs at least one IMAGE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, images []string) error {
			if err := o.Validate(); err != nil {
				return usageError("%v", joinLines(err))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.Timeout)
			defer cancel()
			// AWS's own error text is in no finding: a warning on stderr
			// gives it to the person running check.
			logger := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
			env, err := buildAWS(ctx, o.Engine, nil)
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			// check is about roles, not pools: it has no platforms to match.
			engine, err := buildEngine(env, o.Engine, imageplatform.ModeOff, 0, logger)
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			if len(o.NodeRoles) == 0 && o.Output == outputText {
				_, _ = fmt.Fprintln(s.Err, "note: no --node-role-arn given: only checking that the images exist")
			}
			results := engine.Check(ctx, images, o.NodeRoles)
			if err := writeResults(s.Out, o.Output, results); err != nil {
				return err
			}
			if code := checkExitCode(results); code != ExitOK {
				return exitCode(code)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	o.rejected.varP(fs, &o.NodeRoles, "node-role-arn", "", "IAM role ARN the kubelet pulls as (repeatable)")
	choiceVar(&o.rejected, fs, &o.Output, "output", "o", "output format: text or json", outputText, outputJSON)
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "give up on AWS lookups after this long (they become unknown)")
	o.Engine.AddFlags(fs)
	return cmd
}
