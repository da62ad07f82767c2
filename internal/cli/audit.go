package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/internal/audit"
	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// defaultAuditCallsPerSecond paces an audit's AWS calls: a cluster's worth
// of cold lookups at once would be throttled, and would throttle whatever
// else shares the account's API rate.
const defaultAuditCallsPerSecond = 20

// AuditOptions are the flags of `ecr-preflight audit`.
type AuditOptions struct {
	Engine EngineOptions
	Pools  PoolOptions
	// Namespace limits the audit to one namespace; "" is all.
	Namespace string
	// Selector limits it to workloads with these labels.
	Selector string
	Output   audit.Format
	// PolicyReport writes the results as PolicyReports too.
	PolicyReport bool
	Kubeconfig   string
	Timeout      time.Duration
	// Progress shows a progress bar on stderr when it is a terminal.
	Progress bool

	rejected rejectedValues
}

// Validate reports every flag problem at once.
func (o *AuditOptions) Validate() error {
	errs := append(slices.Clone(o.rejected), o.Engine.Validate())
	errs = append(errs, o.Pools.Validate(true)...)
	if _, err := labels.Parse(o.Selector); err != nil {
		errs = append(errs, fmt.Errorf("--selector %q: %w", o.Selector, err))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s: must be positive", o.Timeout))
	}
	if o.PolicyReport && (o.Namespace != "" || o.Selector != "") {
		// The reports stand for whole namespaces: a partial audit would
		// shrink or delete correct ones.
		errs = append(errs, errors.New("--policy-report audits the whole cluster: it cannot be combined with --namespace or --selector"))
	}
	return errors.Join(errs...)
}

func newAuditCommand(s Streams) *cobra.Command {
	o := &AuditOptions{Engine: NewEngineOptions(), Pools: NewPoolOptions(), Output: audit.FormatTable, Timeout: 10 * time.Minute, Progress: true}
	o.Engine.CallsPerSecond = defaultAuditCallsPerSecond
	cmd := &cobra.Command{
		Use:   "audit [flags]",
		Short: "Report every running workload whose images would not pull",
		Long: `audit lists every workload the webhook checks (Deployments, StatefulSets,
DaemonSets, ReplicaSets, Jobs, CronJobs and Pods; those owned by another of these
kinds are audited through their owner), checks each distinct image once for the
node pools its pods can run on, as the webhook would on a new rollout, and prints
a report grouped by problem: images deleted or archived since, repository
policies changed, roles that lost a policy, and images a lifecycle rule is about
to expire.

Exit status: 0 when every image is pullable or skipped, 1 when any is not
pullable (by some or all of its pools) or the audit could not run (no API
server, no kind listed), 3 when none is but some could not be decided or
checked in time, or a kind or a node pool source could not be read, 2 for
usage errors.`,
		Example: `  ecr-preflight audit
  ecr-preflight audit -n shop -l app=ui --output markdown > audit.md
  ecr-preflight audit --output junit > audit.xml          # CI
  ecr-preflight audit --output sarif --policy-report`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return usageError("%v", joinLines(err))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.Timeout)
			defer cancel()
			return o.run(ctx, s)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "audit only this namespace (default: all)")
	fs.StringVarP(&o.Selector, "selector", "l", o.Selector, "audit only workloads with these labels (a label selector)")
	o.rejected.varP(fs, (*formatFlag)(&o.Output), "output", "o", "report format: table, json, markdown, junit or sarif")
	fs.BoolVar(&o.PolicyReport, "policy-report", o.PolicyReport,
		"also write the results as wgpolicyk8s.io/v1alpha2 PolicyReports (one per namespace, named ecr-preflight)")
	fs.BoolVar(&o.Progress, "progress", o.Progress, "show a progress bar on stderr when it is a terminal")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file (default: in-cluster, then $KUBECONFIG and ~/.kube/config)")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "give up after this long (what is not checked by then is unknown)")
	o.Pools.AddFlags(fs, &o.rejected)
	// A one-shot audit discovers once.
	_ = fs.MarkHidden("node-pools-refresh")
	o.Engine.AddFlags(fs)
	return cmd
}

// run audits the cluster and writes the report.
func (o *AuditOptions) run(ctx context.Context, s Streams) error {
	failed := func(err error) error { return &exitError{code: ExitFail, err: err} }
	rc, err := loadRESTConfig(o.Kubeconfig)
	if err != nil {
		return &exitError{code: ExitUsage, err: fmt.Errorf("loading kubeconfig: %w", err)}
	}
	c, err := newKubeClient(rc)
	if err != nil {
		return failed(err)
	}
	env, err := buildAWS(ctx, o.Engine, nil)
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	logger := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	engine, err := buildEngine(env, o.Engine, imageplatform.Mode(o.Pools.PlatformCheck), 0, logger)
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	var nodes client.Reader
	if o.Pools.DiscoverNodes {
		nodes = c
	}
	pools, err := buildPools(o.Pools, env.cfg, nodes, logr.Discard())
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	snap := pools.Refresh(ctx)
	for _, src := range snap.Incomplete {
		_, _ = fmt.Fprintf(s.Err, "warning: node pools: %s\n", src)
	}

	selector, _ := labels.Parse(o.Selector) // validated
	targets, listErr := audit.List(ctx, c, audit.ListOptions{Namespace: o.Namespace, Selector: selector})
	if listErr != nil {
		if len(targets) == 0 {
			// Nothing listed (no API server, no right to list anything):
			// an empty report would read as a clean cluster.
			return failed(fmt.Errorf("listing workloads: %w", listErr))
		}
		_, _ = fmt.Fprintf(s.Err, "warning: %v\n", listErr)
	}
	ro := audit.Options{Checker: engine, Placer: webhook.Pools{Snapshot: func(context.Context) nodepools.Snapshot { return snap }}}
	if bar := o.progressBar(s.Err); bar != nil {
		ro.Progress = func(done, total int) {
			bar.ChangeMax(total)
			_ = bar.Set(done)
		}
		defer func() { _ = bar.Finish() }()
	}
	report, err := audit.Run(ctx, targets, ro)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return failed(err)
	}
	// What was not checked in time is in the report, as unknown; what
	// could not be listed or discovered is said in it.
	if listErr != nil {
		report.Incomplete = append(report.Incomplete, listErr.Error())
	}
	for _, src := range snap.Incomplete {
		report.Incomplete = append(report.Incomplete, "node pools: "+src)
	}
	if err != nil {
		report.Incomplete = append(report.Incomplete, "ran out of time: containers not checked are unknown")
	}
	if err := audit.Write(s.Out, o.Output, report); err != nil {
		return err
	}
	switch {
	case !o.PolicyReport:
	case listErr != nil:
		// A report stands for its whole namespace: one missing a kind
		// would drop that kind's results, or the whole report.
		_, _ = fmt.Fprintln(s.Err, "note: not every kind could be listed: no PolicyReports written")
	default:
		installed, err := audit.WritePolicyReports(ctx, c, report)
		switch {
		case err != nil:
			return failed(fmt.Errorf("writing PolicyReports: %w", err))
		case !installed:
			_, _ = fmt.Fprintln(s.Err, "note: the PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed: no PolicyReports written")
		}
	}
	code := auditExitCode(report)
	if code == ExitOK && (listErr != nil || len(snap.Incomplete) > 0) {
		code = ExitUnknown
	}
	if code != ExitOK {
		return exitCode(code)
	}
	return nil
}

// progressBar is a bar on w when it is a terminal and progress is wanted.
func (o *AuditOptions) progressBar(w io.Writer) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	if !o.Progress || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("checking images"),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(false))
}

// auditExitCode is check's exit code over the audit's containers:
// partly-pullable counts as not pullable, since some pods fail.
func auditExitCode(r audit.Report) int {
	code := ExitOK
	for _, it := range r.Items {
		switch it.Verdict {
		case preflight.VerdictNotPullable, preflight.VerdictPartlyPullable:
			return ExitFail
		case preflight.VerdictUnknown:
			code = ExitUnknown
		}
	}
	return code
}

// formatFlag is audit's --output.
type formatFlag audit.Format

func (f *formatFlag) String() string { return string(*f) }

func (f *formatFlag) Set(s string) error {
	v, err := audit.ParseFormat(s)
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	*f = formatFlag(v)
	return nil
}

func (*formatFlag) Type() string { return "string" }
