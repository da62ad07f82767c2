package awsclient

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/smithy-go/logging"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// LoadConfig loads the default AWS configuration (environment, shared
// config, IRSA web identity, EKS Pod Identity, instance role; including
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> overrides) with the bounded
// retryer. region may be empty to take it from the environment.
func LoadConfig(ctx context.Context, region string, retry RetryOptions) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(NewRetryer(retry)),
		// The SDK's own warnings (IMDS fallbacks) would land on the CLI's
		// stderr; every failure reaches the user as a LookupFailed finding.
		config.WithLogger(logging.Nop{}),
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return cfg, nil
}

// Factory builds and keeps one SDK client per region and account, all from
// one aws.Config. It implements Clients.
type Factory struct {
	cfg aws.Config
	// assumeRoles maps an account ID to the role ARN to assume for its
	// resources (--assume-role ACCOUNT=ROLE_ARN).
	assumeRoles map[string]string
	sessionName string

	mu    sync.Mutex
	creds map[string]aws.CredentialsProvider // by account, assumed roles only
	ecr   map[[2]string]ECRAPI               // by region, credentials account
	iam   map[string]IAMAPI
	sts   map[string]STSAPI
}

// FactoryOptions configure a Factory.
type FactoryOptions struct {
	// AssumeRoles maps an account ID to the ARN of a role in that
	// account that our credentials may assume, for registries and roles in
	// accounts our own credentials cannot read.
	AssumeRoles map[string]string
	// SessionName is the role session name in CloudTrail; default
	// "ecr-preflight".
	SessionName string
}

// NewFactory returns a Factory over cfg, which should come from LoadConfig.
// Each of o.AssumeRoles must pass CheckAssumeRole.
func NewFactory(cfg aws.Config, o FactoryOptions) (*Factory, error) {
	for account, arn := range o.AssumeRoles {
		if err := CheckAssumeRole(account, arn); err != nil {
			return nil, fmt.Errorf("assume-role for %s: %w", account, err)
		}
	}
	if o.SessionName == "" {
		o.SessionName = "ecr-preflight"
	}
	return &Factory{
		cfg:         cfg,
		assumeRoles: o.AssumeRoles,
		sessionName: o.SessionName,
		creds:       map[string]aws.CredentialsProvider{},
		ecr:         map[[2]string]ECRAPI{},
		iam:         map[string]IAMAPI{},
		sts:         map[string]STSAPI{},
	}, nil
}

// CheckAssumeRole checks the role to assume for account's resources
// (--assume-role ACCOUNT=ROLE_ARN): an IAM role in that very account, since
// a registry's own policy and settings are readable only from inside it.
func CheckAssumeRole(account, roleARN string) error {
	r, err := ParseIAMRoleARN(roleARN)
	if err != nil {
		return err
	}
	if r.Account != account {
		return fmt.Errorf("role %s is in account %s, want a role in the registry's account", roleARN, r.Account)
	}
	return nil
}

// configFor returns the config to use for an account's resources and the key
// under which its clients are shared: the account when an assumed role is
// configured for it, "" (the default credentials) otherwise. Callers hold mu.
func (f *Factory) configFor(account string) (aws.Config, string) {
	arn, ok := f.assumeRoles[account]
	if !ok {
		return f.cfg, ""
	}
	provider, ok := f.creds[account]
	if !ok {
		// The STS client uses the default credentials; the cache refreshes
		// the assumed credentials before they expire and shares them.
		stsClient := sts.NewFromConfig(f.cfg)
		provider = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, arn, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = f.sessionName
		}))
		f.creds[account] = provider
	}
	cfg := f.cfg.Copy()
	cfg.Credentials = provider
	return cfg, account
}

// ECR implements Clients.
func (f *Factory) ECR(region, account string) (ECRAPI, error) {
	if region == "" {
		return nil, fmt.Errorf("ECR client: empty region")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg, credKey := f.configFor(account)
	key := [2]string{region, credKey}
	if c, ok := f.ecr[key]; ok {
		return c, nil
	}
	c := ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.Region = region })
	f.ecr[key] = c
	return c, nil
}

// IAM implements Clients. IAM is global within a partition; the client uses
// the configuration's region to find the partition's endpoint.
func (f *Factory) IAM(account string) (IAMAPI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg, credKey := f.configFor(account)
	if c, ok := f.iam[credKey]; ok {
		return c, nil
	}
	c := iam.NewFromConfig(cfg)
	f.iam[credKey] = c
	return c, nil
}

// STS implements Clients.
func (f *Factory) STS(account string) (STSAPI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg, credKey := f.configFor(account)
	if c, ok := f.sts[credKey]; ok {
		return c, nil
	}
	c := sts.NewFromConfig(cfg)
	f.sts[credKey] = c
	return c, nil
}

var _ Clients = (*Factory)(nil)
