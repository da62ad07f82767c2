package harness

import (
	"context"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// HookTimeoutSeconds is the webhook configurations' timeoutSeconds: above
// AdmissionTimeout, so the webhook always answers before the API server
// gives up on it.
const HookTimeoutSeconds = 10

// Hook describes a ValidatingWebhookConfiguration for Deployments.
type Hook struct {
	// Name of the configuration.
	Name string
	// Webhook is where the API server sends admissions, with the CA it
	// must trust.
	Webhook *Webhook
	// URL overrides Webhook.ValidateURL, e.g. to point at a closed port.
	URL string
	// FailurePolicy is Fail when empty: a test whose webhook is
	// unreachable must fail, not pass by being let through.
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// NamespaceSelector limits the namespaces the hook sees; nil is all.
	NamespaceSelector *metav1.LabelSelector
}

// Register creates the configuration (CREATE and UPDATE of apps/v1
// deployments) and deletes it when t ends. The API server applies it a
// moment later; AwaitMode is the barrier.
func (e *Env) Register(t testing.TB, h Hook) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(e.Config, client.Options{})
	if err != nil {
		t.Fatalf("client for the webhook configuration: %v", err)
	}
	vwc := h.configuration()
	if err := c.Create(ctx, vwc); err != nil {
		t.Fatalf("creating ValidatingWebhookConfiguration %s: %v", h.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Delete(ctx, vwc); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting ValidatingWebhookConfiguration %s: %v", h.Name, err)
		}
	})
	return vwc
}

// configuration is the object Register creates.
func (h Hook) configuration() *admissionregistrationv1.ValidatingWebhookConfiguration {
	url := h.URL
	if url == "" {
		url = h.Webhook.ValidateURL()
	}
	policy := h.FailurePolicy
	if policy == "" {
		policy = admissionregistrationv1.Fail
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: h.Name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "deployments.ecr-preflight.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL:      &url,
				CABundle: h.Webhook.CABundle,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{"apps"},
					APIVersions: []string{"v1"},
					// Not deployments/scale: that subresource carries an
					// autoscaling/v1 Scale, not a Deployment. Scaling through
					// it never reaches the webhook, which is what we want.
					Resources: []string{"deployments"},
					Scope:     ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			FailurePolicy:           &policy,
			NamespaceSelector:       h.NamespaceSelector,
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](HookTimeoutSeconds),
		}},
	}
}
