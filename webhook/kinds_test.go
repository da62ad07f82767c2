package webhook

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func TestEveryKind(t *testing.T) {
	type kind struct {
		create func(ctx context.Context, a *admitter) (admission.Warnings, error)
		update func(ctx context.Context, a *admitter) (admission.Warnings, error)
		remove func(ctx context.Context, a *admitter) (admission.Warnings, error)
	}
	kinds := map[string]kind{
		"Deployment": {
			create: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return deploymentValidator(a).ValidateCreate(ctx, deployment("w", uiImage))
			},
			update: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return deploymentValidator(a).ValidateUpdate(ctx, deployment("w", okImage), deployment("w", uiImage))
			},
			remove: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return deploymentValidator(a).ValidateDelete(ctx, deployment("w", uiImage))
			},
		},
		"StatefulSet": {
			create: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return statefulSetValidator(a).ValidateCreate(ctx, statefulSet("w", uiImage))
			},
			update: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return statefulSetValidator(a).ValidateUpdate(ctx, statefulSet("w", okImage), statefulSet("w", uiImage))
			},
			remove: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return statefulSetValidator(a).ValidateDelete(ctx, statefulSet("w", uiImage))
			},
		},
		"DaemonSet": {
			create: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return daemonSetValidator(a).ValidateCreate(ctx, daemonSet("w", uiImage))
			},
			update: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return daemonSetValidator(a).ValidateUpdate(ctx, daemonSet("w", okImage), daemonSet("w", uiImage))
			},
			remove: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return daemonSetValidator(a).ValidateDelete(ctx, daemonSet("w", uiImage))
			},
		},
		"ReplicaSet": {
			create: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return replicaSetValidator(a).ValidateCreate(ctx, replicaSet("w", uiImage))
			},
			update: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return replicaSetValidator(a).ValidateUpdate(ctx, replicaSet("w", okImage), replicaSet("w", uiImage))
			},
			remove: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return replicaSetValidator(a).ValidateDelete(ctx, replicaSet("w", uiImage))
			},
		},
		"Job": {
			create: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return jobValidator(a).ValidateCreate(ctx, job("w", uiImage))
			},
			update: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return jobValidator(a).ValidateUpdate(ctx, job("w", okImage), job("w", uiImage))
			},
			remove: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return jobValidator(a).ValidateDelete(ctx, job("w", uiImage))
			},
		},
		"CronJob": {
			create: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return cronJobValidator(a).ValidateCreate(ctx, cronJob("w", uiImage))
			},
			update: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return cronJobValidator(a).ValidateUpdate(ctx, cronJob("w", okImage), cronJob("w", uiImage))
			},
			remove: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return cronJobValidator(a).ValidateDelete(ctx, cronJob("w", uiImage))
			},
		},
		"Pod": {
			create: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return podValidator(a).ValidateCreate(ctx, pod("w", uiImage))
			},
			update: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return podValidator(a).ValidateUpdate(ctx, pod("w", okImage), pod("w", uiImage))
			},
			remove: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return podValidator(a).ValidateDelete(ctx, pod("w", uiImage))
			},
		},
	}
	for name, k := range kinds {
		t.Run(name, func(t *testing.T) {
			checker := &fakeChecker{results: seedResults}
			a, err := newAdmitter(Options{Checker: checker, Pools: StaticRoles{nodeRole}, Mode: ModeDeny})
			if err != nil {
				t.Fatal(err)
			}
			wantPrefix := "ecr-preflight: " + name + " retail/w uses images the node role cannot pull:\n- container \"ui\": " + uiImage
			for op, call := range map[string]func(context.Context, *admitter) (admission.Warnings, error){"create": k.create, "update": k.update} {
				if _, err := call(context.Background(), a); err == nil || !strings.HasPrefix(err.Error(), wantPrefix) {
					t.Errorf("%s: error %v, want a denial starting %q", op, err, wantPrefix)
				}
			}
			if w, err := k.remove(context.Background(), a); w != nil || err != nil {
				t.Errorf("delete: got %v, %v; want nothing", w, err)
			}
			if got := len(checker.Calls()); got != 2 {
				t.Errorf("checker called %d times, want 2 (create and update, not delete)", got)
			}
		})
	}
}

// TestEmptyObjects feeds objects without a pod template or images to the
// validators: they are allowed silently. (Nil objects never arrive:
// controller-runtime decodes both objects or answers 400 itself.)
func TestEmptyObjects(t *testing.T) {
	a, err := newAdmitter(Options{Checker: &fakeChecker{results: seedResults}, Pools: StaticRoles{nodeRole}, Mode: ModeDeny})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]func() (admission.Warnings, error){
		"empty Deployment": func() (admission.Warnings, error) {
			return deploymentValidator(a).ValidateCreate(ctx, &appsv1.Deployment{})
		},
		"empty StatefulSet": func() (admission.Warnings, error) {
			return statefulSetValidator(a).ValidateUpdate(ctx, &appsv1.StatefulSet{}, &appsv1.StatefulSet{})
		},
		"empty CronJob":            func() (admission.Warnings, error) { return cronJobValidator(a).ValidateCreate(ctx, &batchv1.CronJob{}) },
		"empty Pod":                func() (admission.Warnings, error) { return podValidator(a).ValidateCreate(ctx, &corev1.Pod{}) },
		"containers without image": func() (admission.Warnings, error) { return podValidator(a).ValidateCreate(ctx, pod("p", "", "")) },
		"owner reference with a bad apiVersion": func() (admission.Warnings, error) {
			return podValidator(a).ValidateCreate(ctx, controlledBy(pod("p", okImage), "a/b/c", "ReplicaSet"))
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			w, err := call()
			if w != nil || err != nil {
				t.Errorf("got %v, %v; want a silent allow", w, err)
			}
		})
	}
}
