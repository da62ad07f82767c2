package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// defaultAWSRegion serves STS and IAM calls when neither --region nor the
// environment names one: IAM is global and its endpoint lives there. ECR
// calls always go to each image's own region.
const defaultAWSRegion = "us-east-1"

// buildEngine builds the preflight engine over real AWS clients from o:
// the SDK's default credential chain (so IRSA and EKS Pod Identity work) and
// its standard AWS_ENDPOINT_URL* overrides. The webhook passes its metrics
// observer and logger; check passes nil for both.
func buildEngine(ctx context.Context, o EngineOptions, observer awsclient.Observer, logger *slog.Logger) (*preflight.Engine, error) {
	retry := awsclient.DefaultRetryOptions()
	retry.MaxAttempts = o.MaxAttempts
	cfg, err := awsclient.LoadConfig(ctx, o.Region, retry)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = defaultAWSRegion
	}
	factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{AssumeRoles: o.AssumeRole})
	if err != nil {
		return nil, fmt.Errorf("building AWS clients: %w", err)
	}
	ttls, resultTTL := o.Cache.ttls()
	lookups := awsclient.NewLookups(factory, awsclient.Options{
		TTL: ttls, CallTimeout: o.CallTimeout, Observer: observer,
		FreshInterval: o.Cache.freshInterval(), MaxConcurrentCalls: o.MaxConcurrentCalls,
	})
	engine, err := preflight.New(preflight.Options{
		Lookups:   lookups,
		Context:   o.Context,
		ResultTTL: resultTTL,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("building the preflight engine: %w", err)
	}
	return engine, nil
}
