package awsclient

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/smithy-go/logging"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
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
func NewFactory(cfg aws.Config, o FactoryOptions) (*Factory, error) {
	for account, arn := range o.AssumeRoles {
		if !imageref.IsAccountID(account) {
			return nil, fmt.Errorf("assume-role for %q: not an account ID", account)
		}
		if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":role/") {
			return nil, fmt.Errorf("assume-role for %s: %q is not a role ARN", account, arn)
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

// ParseAssumeRoles parses --assume-role values of the form
// ACCOUNT=ROLE_ARN into FactoryOptions.AssumeRoles.
func ParseAssumeRoles(values []string) (map[string]string, error) {
	out := make(map[string]string, len(values))
	for _, v := range values {
		account, arn, ok := strings.Cut(v, "=")
		if !ok || account == "" || arn == "" {
			return nil, fmt.Errorf("assume-role %q: want ACCOUNT=ROLE_ARN", v)
		}
		if prev, dup := out[account]; dup && prev != arn {
			return nil, fmt.Errorf("assume-role: account %s given twice", account)
		}
		out[account] = arn
	}
	return out, nil
}
