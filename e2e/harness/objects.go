package harness

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// Deployment is a one-container Deployment of image.
func Deployment(namespace, name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// CreateNamespace creates namespace name with labels (mode "" leaves the
// mode label unset) and deletes it when t ends.
func (e *Env) CreateNamespace(t testing.TB, name, mode string, labels map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	for k, v := range labels {
		ns.Labels[k] = v
	}
	if mode != "" {
		ns.Labels[webhook.ModeLabel] = mode
	}
	c := e.Client(t, nil)
	if err := c.Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	// envtest runs no namespace controller, so deletion only marks it
	// Terminating; that still keeps one test's objects out of the next.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Delete(ctx, ns); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
}

// SetNamespaceMode sets the ecr-preflight.io/mode label of namespace.
func (e *Env) SetNamespaceMode(ctx context.Context, namespace, mode string) error {
	c, err := e.newClient(nil)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, webhook.ModeLabel, mode)
	if err := c.Patch(ctx, ns, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		return fmt.Errorf("labelling namespace %s %s=%s: %w", namespace, webhook.ModeLabel, mode, err)
	}
	return nil
}
