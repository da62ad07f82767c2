package webhook

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ecr-preflight/ecr-preflight/internal/workloads"
)

// One validator per kind: each only knows where its kind keeps the pod
// template and which objects of its kind were already checked elsewhere.
// Create and update both go through admitter.admit; delete is never
// checked.

const (
	opCreate = "CREATE"
	opUpdate = "UPDATE"
)

// templateValidator is the validator of one workload kind T.
type templateValidator[T client.Object] struct {
	a    *admitter
	kind string
	// template is where T keeps its pod template's spec.
	template func(T) *corev1.PodSpec
	// labels are its pod template's labels.
	labels func(T) map[string]string
	// exempt, if set, applies the kind's own rules for objects that were
	// already checked elsewhere.
	exempt func(*subject, T)
}

var (
	_ admission.Validator[*appsv1.Deployment]  = templateValidator[*appsv1.Deployment]{}
	_ admission.Validator[*appsv1.StatefulSet] = templateValidator[*appsv1.StatefulSet]{}
	_ admission.Validator[*appsv1.DaemonSet]   = templateValidator[*appsv1.DaemonSet]{}
	_ admission.Validator[*appsv1.ReplicaSet]  = templateValidator[*appsv1.ReplicaSet]{}
	_ admission.Validator[*batchv1.Job]        = templateValidator[*batchv1.Job]{}
	_ admission.Validator[*batchv1.CronJob]    = templateValidator[*batchv1.CronJob]{}
	_ admission.Validator[*corev1.Pod]         = templateValidator[*corev1.Pod]{}
)

func deploymentValidator(a *admitter) templateValidator[*appsv1.Deployment] {
	return templateValidator[*appsv1.Deployment]{a: a, kind: "Deployment",
		template: func(d *appsv1.Deployment) *corev1.PodSpec { return &d.Spec.Template.Spec },
		labels:   func(d *appsv1.Deployment) map[string]string { return d.Spec.Template.Labels }}
}

func statefulSetValidator(a *admitter) templateValidator[*appsv1.StatefulSet] {
	return templateValidator[*appsv1.StatefulSet]{a: a, kind: "StatefulSet",
		template: func(s *appsv1.StatefulSet) *corev1.PodSpec { return &s.Spec.Template.Spec },
		labels:   func(s *appsv1.StatefulSet) map[string]string { return s.Spec.Template.Labels }}
}

func daemonSetValidator(a *admitter) templateValidator[*appsv1.DaemonSet] {
	return templateValidator[*appsv1.DaemonSet]{a: a, kind: "DaemonSet",
		template: func(d *appsv1.DaemonSet) *corev1.PodSpec { return &d.Spec.Template.Spec },
		labels:   func(d *appsv1.DaemonSet) map[string]string { return d.Spec.Template.Labels }}
}

func replicaSetValidator(a *admitter) templateValidator[*appsv1.ReplicaSet] {
	return templateValidator[*appsv1.ReplicaSet]{a: a, kind: "ReplicaSet",
		template: func(r *appsv1.ReplicaSet) *corev1.PodSpec { return &r.Spec.Template.Spec },
		labels:   func(r *appsv1.ReplicaSet) map[string]string { return r.Spec.Template.Labels },
		// A Deployment's ReplicaSets carry the template checked on the
		// Deployment; warnings to its controller would reach nobody.
		exempt: skipOwned[*appsv1.ReplicaSet]}
}

func jobValidator(a *admitter) templateValidator[*batchv1.Job] {
	return templateValidator[*batchv1.Job]{a: a, kind: "Job",
		template: func(j *batchv1.Job) *corev1.PodSpec { return &j.Spec.Template.Spec },
		labels:   func(j *batchv1.Job) map[string]string { return j.Spec.Template.Labels },
		// A CronJob's Jobs carry the template checked on the CronJob.
		exempt: skipOwned[*batchv1.Job]}
}

func cronJobValidator(a *admitter) templateValidator[*batchv1.CronJob] {
	return templateValidator[*batchv1.CronJob]{a: a, kind: "CronJob",
		template: func(c *batchv1.CronJob) *corev1.PodSpec { return &c.Spec.JobTemplate.Spec.Template.Spec },
		labels:   func(c *batchv1.CronJob) map[string]string { return c.Spec.JobTemplate.Spec.Template.Labels }}
}

func podValidator(a *admitter) templateValidator[*corev1.Pod] {
	return templateValidator[*corev1.Pod]{a: a, kind: "Pod",
		template: func(p *corev1.Pod) *corev1.PodSpec { return &p.Spec },
		labels:   func(p *corev1.Pod) map[string]string { return p.Labels },
		exempt: func(s *subject, p *corev1.Pod) {
			switch {
			case workloads.IsMirrorPod(p):
				// The kubelet already runs it; rejecting the mirror changes nothing.
				s.skipReason = "mirror pod"
			case workloads.OwnedByCheckedKind(p):
				// The owner's template was checked; only kubectl debug's
				// ephemeral containers are new to this pod.
				s.ephemeralOnly = true
			}
		}}
}

// skipOwned exempts objects whose controller is a checked kind.
func skipOwned[T client.Object](s *subject, obj T) {
	if workloads.OwnedByCheckedKind(obj) {
		s.skipReason = "owned by a checked workload"
	}
}

// subject is what admit needs of obj. controller-runtime decodes the object
// (and on UPDATE the old object) before calling a validator, or answers 400
// itself, so neither is ever nil here.
func (v templateValidator[T]) subject(op string, obj T) subject {
	s := subject{kind: v.kind, operation: op, obj: obj, spec: v.template(obj), labels: v.labels(obj)}
	if v.exempt != nil {
		v.exempt(&s, obj)
	}
	return s
}

func (v templateValidator[T]) ValidateCreate(ctx context.Context, obj T) (admission.Warnings, error) {
	return v.a.admit(ctx, v.subject(opCreate, obj))
}

func (v templateValidator[T]) ValidateUpdate(ctx context.Context, old, obj T) (admission.Warnings, error) {
	s := v.subject(opUpdate, obj)
	s.oldSpec = v.template(old)
	return v.a.admit(ctx, s)
}

func (templateValidator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}
