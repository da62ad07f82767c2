package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// TestServeCertRotationFlags: --cert-rotation's flags, their defaults and
// what Validate rejects. Rotation itself runs in certs and e2e
// (TestServeCertRotation).
func TestServeCertRotationFlags(t *testing.T) {
	o := NewServeOptions()
	if o.CertRotation || o.CertSecretName != "ecr-preflight-tls" || o.CertSecretNamespace != "" || o.WebhookConfigurationName != "ecr-preflight" || o.CertDNSNames != nil {
		t.Errorf("defaults changed: %+v", o)
	}
	rotation := []string{"--node-role-arn", testRoleARN, "--cert-rotation"}
	tests := map[string]struct {
		podNamespace string
		args         []string
		wantErr      string // substring; "" means valid
	}{
		"the pod's namespace":   {podNamespace: "ecr-preflight", args: []string{"--cert-dns-name", "ecr-preflight.ecr-preflight.svc"}},
		"an explicit namespace": {args: []string{"--cert-secret-namespace", "ops", "--cert-dns-name", "ecr-preflight.ops.svc"}},
		"every flag": {podNamespace: "x", args: []string{"--cert-secret-name", "webhook-tls", "--cert-secret-namespace", "ops",
			"--cert-dns-name", "webhook.ops.svc", "--cert-dns-name", "webhook.ops.svc.cluster.local", "--webhook-configuration-name", "guard"}},
		"no namespace": {args: []string{"--cert-dns-name", "a.b.svc"},
			wantErr: "--cert-secret-namespace is required with --cert-rotation when $POD_NAMESPACE is unset"},
		"no DNS name":      {podNamespace: "ns", wantErr: "--cert-dns-name is required with --cert-rotation"},
		"an IP":            {podNamespace: "ns", args: []string{"--cert-dns-name", "10.0.0.1"}, wantErr: `--cert-dns-name: DNS name "10.0.0.1" is an IP address`},
		"a bad DNS name":   {podNamespace: "ns", args: []string{"--cert-dns-name", "Web_hook.svc"}, wantErr: `--cert-dns-name: DNS name "Web_hook.svc"`},
		"a bad namespace":  {args: []string{"--cert-secret-namespace", "Ops", "--cert-dns-name", "a.svc"}, wantErr: `--cert-secret-namespace "Ops" is not a namespace name`},
		"a bad secret":     {podNamespace: "ns", args: []string{"--cert-dns-name", "a.svc", "--cert-secret-name", "TLS"}, wantErr: `--cert-secret-name "TLS"`},
		"no configuration": {podNamespace: "ns", args: []string{"--cert-dns-name", "a.svc", "--webhook-configuration-name", ""}, wantErr: `--webhook-configuration-name ""`},
		"with standalone": {podNamespace: "ns", args: []string{"--cert-dns-name", "a.svc", "--standalone"},
			wantErr: "--cert-rotation needs the Kubernetes API (a Secret, a Lease, the webhook configuration): it has no use with --standalone"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv(podNamespaceEnv, tc.podNamespace)
			wantValidation(t, parseServeFlags(t, append(slices.Clone(rotation), tc.args...)...).Validate(), tc.wantErr)
		})
	}

	t.Run("options", func(t *testing.T) {
		t.Setenv(podNamespaceEnv, "from-env")
		o := parseServeFlags(t, append(slices.Clone(rotation), "--cert-dns-name", "a.svc", "--cert-dns-name", "b.svc")...)
		r := o.rotationOptions()
		if r.SecretNamespace != "from-env" || r.SecretName != "ecr-preflight-tls" || r.WebhookConfigurationName != "ecr-preflight" ||
			!slices.Equal(r.DNSNames, []string{"a.svc", "b.svc"}) || r.LeaseName() != "ecr-preflight-tls-rotation" {
			t.Errorf("rotation options %+v", r)
		}
		if err := r.Validate(); err != nil {
			t.Error(err)
		}
		o = parseServeFlags(t, append(slices.Clone(rotation), "--cert-secret-namespace", "flag", "--cert-dns-name", "a.svc")...)
		if got := o.rotationOptions().SecretNamespace; got != "flag" {
			t.Errorf("namespace %q: the flag must win over $%s", got, podNamespaceEnv)
		}
	})
}

// TestServeCertRotationUsageError: a rotation flag problem is a usage
// error (exit 2), before anything starts.
func TestServeCertRotationUsageError(t *testing.T) {
	t.Setenv(podNamespaceEnv, "ns")
	var out bytes.Buffer
	code := Execute([]string{"serve", "--node-role-arn", testRoleARN, "--standalone", "--cert-rotation", "--cert-dns-name", "a.svc"}, nil, &out, &out)
	if code != ExitUsage || !strings.Contains(out.String(), "--cert-rotation needs the Kubernetes API") {
		t.Errorf("exit %d: %s", code, out.String())
	}
}
