// Package envtestutil starts a real kube-apiserver and etcd for end-to-end
// tests, through controller-runtime's envtest, from binaries that
// `make envtest-assets` builds into bin/k8s (this project cannot download
// envtest's release tarballs, so it builds them from the Go module proxy; see
// e2e/tools/build-assets.sh).
//
// Typical use:
//
//	env, cfg := envtestutil.Start(t)           // stopped by t.Cleanup
//	c, err := client.New(cfg, client.Options{}) // admin (system:masters)
//	kubeconfig := envtestutil.WriteKubeconfig(t, env)
//	out := envtestutil.Kubectl(t, env, kubeconfig, "get", "ns")
//
// To register an admission webhook served by the test itself, pass a
// configure function that fills Environment.WebhookInstallOptions
// (ValidatingWebhooks with ClientConfig.Service set; envtest rewrites it to a
// URL on LocalServingHost:LocalServingPort and fills CABundle). After Start,
// serve HTTPS on that host and port with the certificate in
// WebhookInstallOptions.LocalServingCertDir (tls.crt / tls.key).
//
// Missing binaries make Start fail the test, never skip it: a silently
// skipped end-to-end suite looks green while testing nothing.
package envtestutil
