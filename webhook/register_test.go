package webhook

import (
	"net/http"
	"net/url"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// TestRegisterWithManager checks that the builder puts every validator at
// the same paths RegisterWithServer uses. The manager is never started, so
// no API server is needed.
func TestRegisterWithManager(t *testing.T) {
	scheme, err := newScheme()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := manager.New(&rest.Config{Host: "https://127.0.0.1:1"}, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          crwebhook.NewServer(crwebhook.Options{Port: -1}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(mgr, Options{Checker: &fakeChecker{}, Pools: StaticRoles{nodeRole}}); err != nil {
		t.Fatal(err)
	}
	mux := mgr.GetWebhookServer().WebhookMux()
	for _, p := range Paths() {
		if _, pattern := mux.Handler(&http.Request{URL: &url.URL{Path: p}}); pattern != p {
			t.Errorf("%s: served by pattern %q", p, pattern)
		}
	}
	if err := Register(mgr, Options{}); err == nil {
		t.Error("Register without a Checker should fail")
	}
}
