package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// defaultAWSRegion serves STS and IAM calls when neither --region nor the
// environment names one: IAM is global and its endpoint lives there. ECR
// calls always go to each image's own region.
const defaultAWSRegion = "us-east-1"

// buildChecker builds the preflight engine over real AWS clients from o:
// the SDK's default credential chain (so IRSA and EKS Pod Identity work) and
// its standard AWS_ENDPOINT_URL* overrides.
func buildChecker(ctx context.Context, o EngineOptions) (webhook.Checker, error) {
	return buildEngine(ctx, o, awsclient.NopObserver{}, nil)
}

// buildEngine is buildChecker with the metrics observer and logger the
// webhook passes in.
func buildEngine(ctx context.Context, o EngineOptions, observer awsclient.Observer, logger *slog.Logger) (*preflight.Engine, error) {
	retry := awsclient.DefaultRetryOptions()
	retry.MaxAttempts = o.MaxAttempts
	cfg, err := awsclient.LoadConfig(ctx, o.Region, retry)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultAWSRegion
	}
	factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{AssumeRoles: o.AssumeRoles()})
	if err != nil {
		return nil, fmt.Errorf("building AWS clients: %w", err)
	}
	lookups := awsclient.NewLookups(factory, awsclient.Options{TTL: o.Cache.ttls(), CallTimeout: o.CallTimeout, Observer: observer})
	resultTTL := o.Cache.Result
	if resultTTL == 0 {
		resultTTL = -1 // preflight spells "off" as negative
	}
	engine, err := preflight.New(preflight.Options{
		Lookups:   lookups,
		Context:   o.ConditionContext(),
		ResultTTL: resultTTL,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("building the preflight engine: %w", err)
	}
	return engine, nil
}
