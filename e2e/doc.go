// Package e2e holds the end-to-end tests that run against a real
// kube-apiserver and etcd (controller-runtime's envtest). The binaries are
// built from the Go module proxy by `make envtest-assets` into bin/k8s; the
// tests fail, and never skip, when they are missing. Start-up of the API
// server lives in e2e/envtestutil; the whole stack (API server, moto with the
// seed planted, `ecr-preflight serve` as a subprocess, webhook
// configurations, kubectl) in e2e/harness, which `make demo` (e2e/demo)
// shares.
package e2e
