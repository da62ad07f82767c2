package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// defaultAWSRegion serves STS and IAM calls when neither --region nor the
// environment names one: IAM is global and its endpoint lives there. ECR
// calls always go to each image's own region.
const defaultAWSRegion = "us-east-1"

// awsEnv is the AWS side the flags describe: the SDK configuration (for
// discovery's EKS, EC2 and IAM clients) and the engine's cached lookups.
type awsEnv struct {
	cfg     aws.Config
	lookups *awsclient.Lookups
}

// buildAWS builds the AWS clients from o: the SDK's default credential
// chain (so IRSA and EKS Pod Identity work) and its standard
// AWS_ENDPOINT_URL* overrides. The webhook passes its metrics observer;
// the CLI commands nil.
func buildAWS(ctx context.Context, o EngineOptions, observer awsclient.Observer) (awsEnv, error) {
	retry := awsclient.DefaultRetryOptions()
	retry.MaxAttempts = o.MaxAttempts
	cfg, err := awsclient.LoadConfig(ctx, o.Region, retry)
	if err != nil {
		return awsEnv{}, err
	}
	if cfg.Region == "" {
		cfg.Region = defaultAWSRegion
	}
	factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{AssumeRoles: o.AssumeRole})
	if err != nil {
		return awsEnv{}, fmt.Errorf("building AWS clients: %w", err)
	}
	ttls, _ := o.Cache.ttls()
	lookups := awsclient.NewLookups(factory, awsclient.Options{
		TTL: ttls, CallTimeout: o.CallTimeout, Observer: observer,
		FreshInterval: o.Cache.freshInterval(), MaxConcurrentCalls: o.MaxConcurrentCalls,
		CallsPerSecond: o.CallsPerSecond,
	})
	return awsEnv{cfg: cfg, lookups: lookups}, nil
}

// buildEngine builds the preflight engine over env's lookups, checking
// images' platforms against node pools' as platforms says. The webhook
// passes its logger; check passes one for warnings on stderr.
//
// listWait bounds how long a check waits for a repository's image listing
// (lifecycle count rules): short for admission, where the prediction is
// advice, unbounded for the CLI commands.
func buildEngine(env awsEnv, o EngineOptions, platforms imageplatform.Mode, listWait time.Duration, logger *slog.Logger) (*preflight.Engine, error) {
	_, resultTTL := o.Cache.ttls()
	opts := preflight.Options{
		Lookups:   env.lookups,
		Context:   o.Context,
		ResultTTL: resultTTL,
		Logger:    logger,
	}
	if o.LifecycleWarnDays > 0 {
		opts.Lifecycle = preflight.LifecycleOptions{
			Lookups:    env.lookups,
			WarnWithin: time.Duration(o.LifecycleWarnDays) * 24 * time.Hour,
			WarnPushes: o.LifecycleWarnPushes,
			ListWait:   listWait,
		}
	}
	if platforms != imageplatform.ModeOff {
		opts.Platforms = imageplatform.NewResolver(env.lookups, platforms)
	}
	engine, err := preflight.New(opts)
	if err != nil {
		return nil, fmt.Errorf("building the preflight engine: %w", err)
	}
	return engine, nil
}
