package cli

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools/discover"
)

// PoolOptions say where node pools come from: serve, pools (and the
// audit) share them, so `ecr-preflight pools` shows what the webhook
// believes.
type PoolOptions struct {
	// NodeRoles are bare pools: one per role, accepting every pod.
	NodeRoles roleARNs
	// ConfigFile holds named static pools (--node-pools-config).
	ConfigFile string
	// ClusterName enables EKS managed node groups and Fargate profiles.
	ClusterName string
	// DiscoverNodes reads Nodes and Karpenter NodePools from the API server.
	DiscoverNodes bool
	// Refresh is how old a discovered snapshot may be.
	Refresh time.Duration
	// PlatformCheck is how images' platforms are checked against pools'.
	PlatformCheck platformCheck
}

// NewPoolOptions returns the defaults.
func NewPoolOptions() PoolOptions {
	return PoolOptions{DiscoverNodes: true, Refresh: discover.DefaultRefresh, PlatformCheck: platformCheck(imageplatform.ModeIndex)}
}

// AddFlags adds the node pool flags to fs; rejected keeps bad values.
func (o *PoolOptions) AddFlags(fs *pflag.FlagSet, rejected *rejectedValues) {
	rejected.varP(fs, &o.NodeRoles, "node-role-arn", "",
		"IAM role ARN of nodes that pull images, as a pool every pod may run on (repeatable)")
	fs.StringVar(&o.ConfigFile, "node-pools-config", o.ConfigFile,
		"YAML file of named static node pools (role, platforms, labels, taints, Fargate selectors); see docs/node-pools.md")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName,
		"EKS cluster whose managed node groups and Fargate profiles are pools (eks:ListNodegroups, eks:DescribeNodegroup, eks:ListFargateProfiles, eks:DescribeFargateProfile)")
	fs.BoolVar(&o.DiscoverNodes, "discover-nodes", o.DiscoverNodes,
		"discover pools from Nodes (their instance profile's role: ec2:DescribeInstances, iam:GetInstanceProfile) and Karpenter NodePools, through the Kubernetes API")
	fs.DurationVar(&o.Refresh, "node-pools-refresh", o.Refresh,
		"rebuild the discovered node pools when they are older than this")
	rejected.varP(fs, &o.PlatformCheck, "platform-check", "",
		"match images' platforms against node pools': off, index (read image indexes; ecr:BatchGetImage) or full (also single-platform images' config; ecr:GetDownloadUrlForLayer)")
}

// Validate checks the node pool flags. api says whether the Kubernetes
// API is there to discover from.
func (o *PoolOptions) Validate(api bool) []error {
	var errs []error
	if o.Refresh <= 0 {
		errs = append(errs, fmt.Errorf("--node-pools-refresh %s: must be positive", o.Refresh))
	}
	if o.ClusterName != "" {
		// EKS cluster names: 1-100 of letters, digits, - and _, starting
		// with a letter or digit (CreateCluster's name constraint).
		if len(o.ClusterName) > 100 || !clusterNamePattern.MatchString(o.ClusterName) {
			errs = append(errs, fmt.Errorf("--cluster-name %q is not an EKS cluster name", o.ClusterName))
		}
	}
	if o.ConfigFile != "" {
		if _, err := discover.LoadStaticPools(o.ConfigFile); err != nil {
			errs = append(errs, fmt.Errorf("--node-pools-config: %w", err))
		}
	}
	if !api && len(o.NodeRoles) == 0 && o.ConfigFile == "" && o.ClusterName == "" {
		errs = append(errs, errors.New("node pools are needed: --node-role-arn, --node-pools-config or --cluster-name (without the Kubernetes API, Nodes cannot be discovered)"))
	}
	return errs
}

// clusterNamePattern is an EKS cluster name (CreateCluster's name).
var clusterNamePattern = regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9\-_]*$`)

// nodeDiscovery says whether Nodes and Karpenter NodePools are read.
func (o *PoolOptions) nodeDiscovery(api bool) bool { return api && o.DiscoverNodes }

// static are the static pools: --node-role-arn and --node-pools-config.
func (o *PoolOptions) static() ([]nodepools.Pool, error) {
	pools := nodepools.RolePools(o.NodeRoles)
	if o.ConfigFile == "" {
		return pools, nil
	}
	more, err := discover.LoadStaticPools(o.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("--node-pools-config: %w", err)
	}
	return append(pools, more...), nil
}

// buildPools builds node pool discovery from o: static pools, EKS with
// --cluster-name, Nodes and Karpenter through reader when it is not nil.
func buildPools(o PoolOptions, cfg aws.Config, reader client.Reader, log logr.Logger) (*discover.Provider, error) {
	static, err := o.static()
	if err != nil {
		return nil, err
	}
	opts := discover.Options{Static: static, Refresh: o.Refresh, Logger: log}
	if reader != nil || o.ClusterName != "" {
		iamClient := iam.NewFromConfig(cfg)
		opts.Roles = discover.NewInstances(func(region string) (discover.EC2API, error) {
			return ec2.NewFromConfig(cfg, func(eo *ec2.Options) { eo.Region = region }), nil
		}, iamClient, 0)
	}
	if reader != nil {
		opts.Nodes = reader
	}
	if o.ClusterName != "" {
		opts.Cluster = discover.NewCluster(eks.NewFromConfig(cfg), o.ClusterName)
	}
	p, err := discover.NewProvider(opts)
	if err != nil {
		return nil, fmt.Errorf("building node pool discovery: %w", err)
	}
	return p, nil
}

// platformCheck is --platform-check.
type platformCheck imageplatform.Mode

func (p *platformCheck) String() string { return string(*p) }

func (p *platformCheck) Set(s string) error {
	m, err := imageplatform.ParseMode(s)
	if err != nil {
		return fmt.Errorf("--platform-check: %w", err)
	}
	*p = platformCheck(m)
	return nil
}

func (*platformCheck) Type() string { return "string" }
