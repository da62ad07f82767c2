package certs

import (
	"net/http"
	"strings"
	"testing"
)

func TestRotationOptionsValidate(t *testing.T) {
	good := RotationOptions{
		SecretName: "ecr-preflight-tls", SecretNamespace: "ecr-preflight",
		DNSNames:                 []string{"ecr-preflight.ecr-preflight.svc", "ecr-preflight.ecr-preflight.svc.cluster.local"},
		WebhookConfigurationName: "ecr-preflight",
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	if got := good.LeaseName(); got != "ecr-preflight-tls-rotation" {
		t.Errorf("lease name %q", got)
	}
	tests := map[string]struct {
		change  func(*RotationOptions)
		wantErr string
	}{
		"no DNS name":           {func(o *RotationOptions) { o.DNSNames = nil }, "no DNS name"},
		"an IP as DNS name":     {func(o *RotationOptions) { o.DNSNames = []string{"127.0.0.1"} }, `DNS name "127.0.0.1" is an IP address`},
		"an upper-case name":    {func(o *RotationOptions) { o.DNSNames = []string{"Webhook.svc"} }, `DNS name "Webhook.svc"`},
		"a wildcard":            {func(o *RotationOptions) { o.DNSNames = []string{"*.svc"} }, `DNS name "*.svc"`},
		"no namespace":          {func(o *RotationOptions) { o.SecretNamespace = "" }, "no secret namespace"},
		"a bad namespace":       {func(o *RotationOptions) { o.SecretNamespace = "a.b" }, `secret namespace "a.b"`},
		"a bad secret name":     {func(o *RotationOptions) { o.SecretName = "TLS" }, `secret name "TLS"`},
		"no configuration":      {func(o *RotationOptions) { o.WebhookConfigurationName = "" }, `webhook configuration name ""`},
		"every problem at once": {func(o *RotationOptions) { *o = RotationOptions{} }, "no secret namespace"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := good
			o.DNSNames = append([]string(nil), good.DNSNames...)
			tc.change(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestNameScope: list and watch requests of the two collections are
// limited to one name; anything else passes untouched.
func TestNameScope(t *testing.T) {
	o := RotationOptions{SecretName: "tls", SecretNamespace: "ns", WebhookConfigurationName: "hooks"}
	var got *http.Request
	rt := scopedRoundTripper(o, roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	}))
	tests := []struct {
		method, url string
		want        string // fieldSelector sent
	}{
		{"GET", "https://api/api/v1/namespaces/ns/secrets?limit=500", "metadata.name=tls"},
		{"GET", "https://api/api/v1/namespaces/ns/secrets?watch=true&resourceVersion=5", "metadata.name=tls"},
		{"GET", "https://api/prefix/api/v1/namespaces/ns/secrets", "metadata.name=tls"},
		{"GET", "https://api/api/v1/namespaces/ns/secrets?fieldSelector=type%3DOpaque", "type=Opaque,metadata.name=tls"},
		{"GET", "https://api/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations?watch=1", "metadata.name=hooks"},
		{"GET", "https://api/api/v1/namespaces/ns/secrets/tls", ""},
		{"GET", "https://api/api/v1/namespaces/other/secrets", ""},
		{"GET", "https://api/api/v1/secrets", ""},
		{"GET", "https://api/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", ""},
		{"PUT", "https://api/api/v1/namespaces/ns/secrets", ""},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(tc.method, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		want := tc.want
		if want == "" {
			want = req.URL.Query().Get("fieldSelector")
		}
		if sel := got.URL.Query().Get("fieldSelector"); sel != want {
			t.Errorf("%s %s: fieldSelector %q, want %q", tc.method, tc.url, sel, want)
		}
		if req.URL.String() != tc.url {
			t.Errorf("%s %s: the caller's request was changed to %s", tc.method, tc.url, req.URL)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
