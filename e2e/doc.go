// Package e2e holds the end-to-end tests that run against a real
// kube-apiserver and etcd (controller-runtime's envtest). The binaries are
// built from the Go module proxy by `make envtest-assets` into bin/k8s; the
// tests fail, and never skip, when they are missing. Shared start-up lives in
// e2e/envtestutil.
package e2e
