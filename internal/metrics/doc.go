// Package metrics is ecr-preflight's Prometheus instrumentation: one
// Recorder that counts admissions and findings for the webhook and AWS
// calls and cache lookups for the AWS client layer. Both layers declare
// the small interface they need; Recorder satisfies them by method name,
// so neither imports Prometheus.
package metrics
