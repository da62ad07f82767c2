// Package webhook is ecr-preflight's validating admission webhook: one typed
// controller-runtime validator per workload kind turns a pod template into
// its container images, asks a Checker whether the candidate node roles can
// pull them, and answers with warnings (mode warn), a denial (mode deny) or
// silence (mode dryrun).
//
// The package holds no AWS logic and evaluates no policy: everything it
// knows about pulls comes from preflight.Result values. What it owns is the
// admission contract: a bounded time budget, bounded concurrency, never
// blocking scale-ups or restarts of images that are already running, and
// warnings short and clean enough that the API server keeps them.
package webhook
