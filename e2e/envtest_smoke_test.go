package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
)

// TestEnvtestSmoke proves the locally built kube-apiserver and etcd work with
// envtest: objects written through a Go client are stored and read back, and
// kubectl can reach the API server through the generated kubeconfig. Every
// other e2e test builds on this, so when it fails, look here first. One
// environment serves both subtests: start-up is the slow part.
func TestEnvtestSmoke(t *testing.T) {
	env, cfg := envtestutil.Start(t)
	t.Run("client round trip", func(t *testing.T) { testClientRoundTrip(t, cfg) })
	t.Run("kubectl", func(t *testing.T) { testKubectl(t, env) })
}

func testClientRoundTrip(t *testing.T, cfg *rest.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "smoke"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}

	labels := map[string]string{"app": "smoke"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns.Name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "web",
					Image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.0",
				}}},
			},
		},
	}
	if err := c.Create(ctx, dep); err != nil {
		t.Fatalf("create deployment: %v", err)
	}

	var gotNS corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: ns.Name}, &gotNS); err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	if gotNS.UID == "" {
		t.Errorf("namespace %q read back without a UID", gotNS.Name)
	}

	var got appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKeyFromObject(dep), &got); err != nil {
		t.Fatalf("get deployment: %v", err)
	}
	if img := got.Spec.Template.Spec.Containers[0].Image; img != dep.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("deployment image = %q, want %q", img, dep.Spec.Template.Spec.Containers[0].Image)
	}
	if got.Spec.Replicas == nil || *got.Spec.Replicas != 2 {
		t.Errorf("deployment replicas = %v, want 2", got.Spec.Replicas)
	}
	// Defaulting ran, so this went through the real API server's storage
	// path rather than a fake client.
	if got.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("deployment strategy = %q, want defaulted %q", got.Spec.Strategy.Type, appsv1.RollingUpdateDeploymentStrategyType)
	}
}

// testKubectl checks the kubeconfig helper that e2e suites use to drive
// kubectl against the envtest API server.
func testKubectl(t *testing.T, env *envtest.Environment) {
	kubeconfig := envtestutil.WriteKubeconfig(t, env)

	out := envtestutil.Kubectl(t, env, kubeconfig, "get", "namespace", "default", "-o", "name")
	if strings.TrimSpace(out) != "namespace/default" {
		t.Errorf("kubectl get namespace default = %q, want namespace/default", out)
	}
}
