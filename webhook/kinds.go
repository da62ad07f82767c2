package webhook

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// One validator per kind: each only knows where its kind keeps the pod
// template and which objects of its kind were already checked elsewhere.
// Create and update both go through admitter.admit; delete is never
// checked.

const (
	opCreate = "CREATE"
	opUpdate = "UPDATE"
)

type deploymentValidator struct{ a *admitter }

var _ admission.Validator[*appsv1.Deployment] = deploymentValidator{}

func (v deploymentValidator) subject(op string, obj, old *appsv1.Deployment) subject {
	s := subject{kind: "Deployment", operation: op}
	if obj != nil {
		s.obj, s.spec = obj, &obj.Spec.Template.Spec
	}
	if old != nil {
		s.oldSpec = &old.Spec.Template.Spec
	}
	return s
}

func (v deploymentValidator) ValidateCreate(ctx context.Context, obj *appsv1.Deployment) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opCreate, obj, nil))
}

func (v deploymentValidator) ValidateUpdate(ctx context.Context, old, obj *appsv1.Deployment) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opUpdate, obj, old))
}

func (deploymentValidator) ValidateDelete(context.Context, *appsv1.Deployment) (admission.Warnings, error) {
	return nil, nil
}

type statefulSetValidator struct{ a *admitter }

var _ admission.Validator[*appsv1.StatefulSet] = statefulSetValidator{}

func (v statefulSetValidator) subject(op string, obj, old *appsv1.StatefulSet) subject {
	s := subject{kind: "StatefulSet", operation: op}
	if obj != nil {
		s.obj, s.spec = obj, &obj.Spec.Template.Spec
	}
	if old != nil {
		s.oldSpec = &old.Spec.Template.Spec
	}
	return s
}

func (v statefulSetValidator) ValidateCreate(ctx context.Context, obj *appsv1.StatefulSet) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opCreate, obj, nil))
}

func (v statefulSetValidator) ValidateUpdate(ctx context.Context, old, obj *appsv1.StatefulSet) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opUpdate, obj, old))
}

func (statefulSetValidator) ValidateDelete(context.Context, *appsv1.StatefulSet) (admission.Warnings, error) {
	return nil, nil
}

type daemonSetValidator struct{ a *admitter }

var _ admission.Validator[*appsv1.DaemonSet] = daemonSetValidator{}

func (v daemonSetValidator) subject(op string, obj, old *appsv1.DaemonSet) subject {
	s := subject{kind: "DaemonSet", operation: op}
	if obj != nil {
		s.obj, s.spec = obj, &obj.Spec.Template.Spec
	}
	if old != nil {
		s.oldSpec = &old.Spec.Template.Spec
	}
	return s
}

func (v daemonSetValidator) ValidateCreate(ctx context.Context, obj *appsv1.DaemonSet) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opCreate, obj, nil))
}

func (v daemonSetValidator) ValidateUpdate(ctx context.Context, old, obj *appsv1.DaemonSet) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opUpdate, obj, old))
}

func (daemonSetValidator) ValidateDelete(context.Context, *appsv1.DaemonSet) (admission.Warnings, error) {
	return nil, nil
}

type replicaSetValidator struct{ a *admitter }

var _ admission.Validator[*appsv1.ReplicaSet] = replicaSetValidator{}

func (v replicaSetValidator) subject(op string, obj, old *appsv1.ReplicaSet) subject {
	s := subject{kind: "ReplicaSet", operation: op}
	if obj != nil {
		s.obj, s.spec = obj, &obj.Spec.Template.Spec
		// A Deployment's ReplicaSets carry the template checked on the
		// Deployment; warnings to its controller would reach nobody.
		if ownedByCheckedKind(obj) {
			s.skipReason = "owned by a checked workload"
		}
	}
	if old != nil {
		s.oldSpec = &old.Spec.Template.Spec
	}
	return s
}

func (v replicaSetValidator) ValidateCreate(ctx context.Context, obj *appsv1.ReplicaSet) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opCreate, obj, nil))
}

func (v replicaSetValidator) ValidateUpdate(ctx context.Context, old, obj *appsv1.ReplicaSet) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opUpdate, obj, old))
}

func (replicaSetValidator) ValidateDelete(context.Context, *appsv1.ReplicaSet) (admission.Warnings, error) {
	return nil, nil
}

type jobValidator struct{ a *admitter }

var _ admission.Validator[*batchv1.Job] = jobValidator{}

func (v jobValidator) subject(op string, obj, old *batchv1.Job) subject {
	s := subject{kind: "Job", operation: op}
	if obj != nil {
		s.obj, s.spec = obj, &obj.Spec.Template.Spec
		// A CronJob's Jobs carry the template checked on the CronJob.
		if ownedByCheckedKind(obj) {
			s.skipReason = "owned by a checked workload"
		}
	}
	if old != nil {
		s.oldSpec = &old.Spec.Template.Spec
	}
	return s
}

func (v jobValidator) ValidateCreate(ctx context.Context, obj *batchv1.Job) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opCreate, obj, nil))
}

func (v jobValidator) ValidateUpdate(ctx context.Context, old, obj *batchv1.Job) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opUpdate, obj, old))
}

func (jobValidator) ValidateDelete(context.Context, *batchv1.Job) (admission.Warnings, error) {
	return nil, nil
}

type cronJobValidator struct{ a *admitter }

var _ admission.Validator[*batchv1.CronJob] = cronJobValidator{}

func (v cronJobValidator) subject(op string, obj, old *batchv1.CronJob) subject {
	s := subject{kind: "CronJob", operation: op}
	if obj != nil {
		s.obj, s.spec = obj, &obj.Spec.JobTemplate.Spec.Template.Spec
	}
	if old != nil {
		s.oldSpec = &old.Spec.JobTemplate.Spec.Template.Spec
	}
	return s
}

func (v cronJobValidator) ValidateCreate(ctx context.Context, obj *batchv1.CronJob) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opCreate, obj, nil))
}

func (v cronJobValidator) ValidateUpdate(ctx context.Context, old, obj *batchv1.CronJob) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opUpdate, obj, old))
}

func (cronJobValidator) ValidateDelete(context.Context, *batchv1.CronJob) (admission.Warnings, error) {
	return nil, nil
}

type podValidator struct{ a *admitter }

var _ admission.Validator[*corev1.Pod] = podValidator{}

// mirrorPodAnnotation marks the API copy of a kubelet's static pod.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

func (v podValidator) subject(op string, obj, old *corev1.Pod) subject {
	s := subject{kind: "Pod", operation: op}
	if obj != nil {
		s.obj, s.spec = obj, &obj.Spec
		switch {
		case obj.Annotations[mirrorPodAnnotation] != "":
			// The kubelet already runs it; rejecting the mirror changes nothing.
			s.skipReason = "mirror pod"
		case ownedByCheckedKind(obj):
			// The owner's template was checked; only kubectl debug's
			// ephemeral containers are new to this pod.
			s.ephemeralOnly = true
		}
	}
	if old != nil {
		s.oldSpec = &old.Spec
	}
	return s
}

func (v podValidator) ValidateCreate(ctx context.Context, obj *corev1.Pod) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opCreate, obj, nil))
}

func (v podValidator) ValidateUpdate(ctx context.Context, old, obj *corev1.Pod) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opUpdate, obj, old))
}

func (podValidator) ValidateDelete(context.Context, *corev1.Pod) (admission.Warnings, error) {
	return nil, nil
}

// checkedOwners are the controller kinds whose pod templates this webhook
// checks; objects they own were checked through them.
var checkedOwners = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "Deployment"}:  true,
	{Group: "apps", Kind: "ReplicaSet"}:  true,
	{Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}:   true,
	{Group: "batch", Kind: "Job"}:        true,
	{Group: "batch", Kind: "CronJob"}:    true,
}

// ownedByCheckedKind says whether obj's controller is a kind this webhook
// checks. Objects owned by other controllers (operators, Argo Rollouts)
// are checked themselves, since nothing else looked at their template.
func ownedByCheckedKind(obj metav1.Object) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return false
	}
	return checkedOwners[schema.GroupKind{Group: gv.Group, Kind: ref.Kind}]
}
