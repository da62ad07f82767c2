package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// PoolsOptions are the flags of `ecr-preflight pools`.
type PoolsOptions struct {
	Pools      PoolOptions
	Region     string
	Kubeconfig string
	Output     outputFormat
	Timeout    time.Duration

	rejected rejectedValues
}

// Validate reports every flag problem at once.
func (o *PoolsOptions) Validate() error {
	errs := append(slices.Clone(o.rejected), o.Pools.Validate(o.Pools.DiscoverNodes)...)
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s: must be positive", o.Timeout))
	}
	if o.Region != "" && !regionPattern.MatchString(o.Region) {
		errs = append(errs, fmt.Errorf("--region %q is not an AWS region (e.g. us-west-2)", o.Region))
	}
	return errors.Join(errs...)
}

func newPoolsCommand(s Streams) *cobra.Command {
	o := &PoolsOptions{Pools: NewPoolOptions(), Output: outputText, Timeout: 30 * time.Second}
	cmd := &cobra.Command{
		Use:   "pools [flags]",
		Short: "Show the node pools the webhook would check pulls for",
		Long: `pools discovers node pools as serve does (Nodes and Karpenter NodePools through the
Kubernetes API, EKS managed node groups and Fargate profiles with --cluster-name,
static pools from --node-role-arn and --node-pools-config) and prints each one's
kind, the IAM role it pulls as, its platforms, its node count and what decides
scheduling onto it: what the webhook believes, to run first.

Exit status: 0, or 3 when a source could not be read (the list may be
incomplete; stderr says which), 1 when discovery cannot start (no
kubeconfig, no AWS configuration), 2 for usage errors.`,
		Example: `  ecr-preflight pools --cluster-name prod
  ecr-preflight pools --discover-nodes=false --node-pools-config pools.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return usageError("%v", joinLines(err))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.Timeout)
			defer cancel()
			snap, err := o.discover(ctx)
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			if err := writePools(s.Out, o.Output, snap); err != nil {
				return err
			}
			for _, src := range snap.Incomplete {
				_, _ = fmt.Fprintf(s.Err, "warning: %s\n", src)
			}
			if len(snap.Incomplete) > 0 {
				return exitCode(ExitUnknown)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	o.Pools.AddFlags(fs, &o.rejected)
	// A one-shot listing neither refreshes nor checks platforms.
	for _, f := range []string{"node-pools-refresh", "platform-check"} {
		_ = fs.MarkHidden(f)
	}
	fs.StringVar(&o.Region, "region", o.Region, "AWS region of the cluster (default: from the environment)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file (default: in-cluster, then $KUBECONFIG and ~/.kube/config)")
	choiceVar(&o.rejected, fs, &o.Output, "output", "o", "output format: text (a table) or json", outputText, outputJSON)
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "give up on discovery after this long")
	return cmd
}

// discover builds discovery from the flags and reads the pools once.
func (o *PoolsOptions) discover(ctx context.Context) (nodepools.Snapshot, error) {
	cfg, err := awsclient.LoadConfig(ctx, o.Region, awsclient.DefaultRetryOptions())
	if err != nil {
		return nodepools.Snapshot{}, err
	}
	var reader client.Reader
	if o.Pools.DiscoverNodes {
		rc, err := loadRESTConfig(o.Kubeconfig)
		if err != nil {
			return nodepools.Snapshot{}, fmt.Errorf("loading kubeconfig (pass --discover-nodes=false to list only static and EKS pools): %w", err)
		}
		c, err := newKubeClient(rc)
		if err != nil {
			return nodepools.Snapshot{}, err
		}
		reader = c
	}
	p, err := buildPools(o.Pools, cfg, reader, logr.Discard())
	if err != nil {
		return nodepools.Snapshot{}, err
	}
	return p.Refresh(ctx), nil
}

// writePools prints snap as a table or JSON.
func writePools(w io.Writer, format outputFormat, snap nodepools.Snapshot) error {
	if format == outputJSON {
		out := struct {
			Pools      []nodepools.Pool `json:"pools"`
			Incomplete []string         `json:"incomplete,omitempty"`
		}{Pools: snap.Pools, Incomplete: snap.Incomplete}
		if out.Pools == nil {
			out.Pools = []nodepools.Pool{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "NAME\tKIND\tROLE\tPLATFORMS\tNODES\tSCHEDULING")
	for _, p := range snap.Pools {
		role := p.RoleARN
		if role == "" {
			role = "<unknown>"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", p.Name, p.Kind, role, p.PlatformList(), p.Nodes, scheduling(p))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(snap.Pools) == 0 {
		_, err := fmt.Fprintln(w, "no node pools found")
		return err
	}
	return nil
}

// scheduling is what decides scheduling onto p, in one column: its
// labels, requirements and taints, or a Fargate profile's selectors.
func scheduling(p nodepools.Pool) string {
	var parts []string
	if len(p.Fargate) > 0 {
		var sel []string
		for _, s := range p.Fargate {
			sel = append(sel, "namespace="+s.Namespace+labelList(s.Labels, "{", "}"))
		}
		return "fargate " + strings.Join(sel, " | ")
	}
	if l := labelList(p.Labels, "", ""); l != "" {
		parts = append(parts, "labels "+l)
	}
	for _, r := range p.Requirements {
		parts = append(parts, fmt.Sprintf("%s %s %s", r.Key, r.Operator, strings.Join(r.Values, ",")))
	}
	for _, t := range p.Taints {
		parts = append(parts, "taint "+t.ToString())
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// labelList is "a=1,b=2" in key order, wrapped in open and close when not
// empty.
func labelList(labels map[string]string, open, close string) string {
	if len(labels) == 0 {
		return ""
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		kv = append(kv, k+"="+labels[k])
	}
	return open + strings.Join(kv, ",") + close
}
