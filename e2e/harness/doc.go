// Package harness runs ecr-preflight end to end on one machine, for the e2e
// tests and `make demo`: a real kube-apiserver and etcd (envtest, from
// bin/k8s), moto acting as the seed's AWS account with the seed scenario
// planted, and `ecr-preflight serve` as a real subprocess, registered with
// the API server through a ValidatingWebhookConfiguration.
//
// Typical use:
//
//	env := harness.Start(t, harness.Options{})        // envtest + moto + seed + binary
//	wh := env.Serve(t, harness.ServeOptions{})         // ecr-preflight serve, ready
//	env.Register(t, harness.Hook{Name: "main", Webhook: wh})
//	res := env.Kubectl(ctx, "apply", "-f", harness.ManifestFile, "-n", ns)
//
// Everything listens on 127.0.0.1 only, every wait is bounded, and every
// process is stopped with its process group when the test (or program, see
// RunProgram) ends. Missing binaries or a missing moto_server fail loudly,
// naming the command that provides them; nothing is skipped.
package harness
