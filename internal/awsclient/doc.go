// Package awsclient is the preflight engine's only way to AWS.
//
// It has three layers, each replaceable on its own:
//
//   - ECRAPI, IAMAPI and STSAPI: narrow interfaces whose methods have the
//     exact aws-sdk-go-v2 signatures, so the real *ecr.Client, *iam.Client
//     and *sts.Client satisfy them without adapters and tests use the fakes
//     in package fake.
//   - Clients (implemented by Factory): which client to use for a region and
//     a registry or role account, including credentials from an assumed role
//     for cross-account registries. All clients share one aws.Config, with a
//     bounded, fast-failing retryer (NewRetryer) fit for the admission path.
//   - Lookups: the answers the engine needs (does this image exist, what are
//     this repository's and registry's policies, what policies does this role
//     have), cached with separate TTLs for positive and negative answers,
//     deduplicated so concurrent identical lookups make one AWS call, each
//     call under its own deadline, and reported to an Observer for metrics.
//
// Errors are never cached: a throttled or denied lookup is retried by the
// next admission request rather than remembered. Every error Lookups returns
// is wrapped with the operation and resource it concerns; ErrRepositoryNotFound
// and ErrRoleNotFound mark definite absences, and ClassOf tells the rest apart
// (access denied, throttled, timeout, unavailable) so that "could not check"
// is never reported as "cannot pull".
package awsclient
