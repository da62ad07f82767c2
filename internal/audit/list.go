package audit

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/workloads"
)

// pageSize is how many objects one List call asks for: a cluster with tens
// of thousands of pods is read in pages, never in one answer the API
// server must build in memory.
const pageSize = 500

// ListOptions selects the workloads to audit.
type ListOptions struct {
	// Namespace restricts the audit to one namespace; "" lists all.
	Namespace string
	// Selector restricts it to objects whose own labels match (kubectl's
	// -l); nil selects everything.
	Selector labels.Selector
}

// Target is one workload to audit: where its pods may be scheduled
// (Template) and the containers whose images the kubelet pulls.
type Target struct {
	Workload Workload
	// Template is the pod template: its namespace, its labels and its
	// spec (a copy: it does not keep the listed page alive).
	Template nodepools.Template
	// Containers are the init containers, containers, then ephemeral
	// containers that name an image, as the webhook counts them
	// (workloads.Containers).
	Containers []workloads.Container
}

// checkedKind is one kind the webhook checks and how to list it.
type checkedKind struct {
	kind       string // Deployment
	apiVersion string // apps/v1
	resource   string // deployments, for errors
	newList    func() client.ObjectList
}

// checkedKinds are the kinds the webhook validates (webhook/kinds.go), in
// the order they are listed.
var checkedKinds = []checkedKind{
	{"Deployment", "apps/v1", "deployments", func() client.ObjectList { return &appsv1.DeploymentList{} }},
	{"StatefulSet", "apps/v1", "statefulsets", func() client.ObjectList { return &appsv1.StatefulSetList{} }},
	{"DaemonSet", "apps/v1", "daemonsets", func() client.ObjectList { return &appsv1.DaemonSetList{} }},
	{"ReplicaSet", "apps/v1", "replicasets", func() client.ObjectList { return &appsv1.ReplicaSetList{} }},
	{"Job", "batch/v1", "jobs", func() client.ObjectList { return &batchv1.JobList{} }},
	{"CronJob", "batch/v1", "cronjobs", func() client.ObjectList { return &batchv1.CronJobList{} }},
	{"Pod", "v1", "pods", func() client.ObjectList { return &corev1.PodList{} }},
}

// List lists the workloads of every kind the webhook checks (Deployments,
// StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and Pods) that o
// selects, in pages of 500, and returns one Target per workload that
// admission would check on its own. Skipped, as the webhook skips them:
// objects whose controller is one of those kinds (their template is the
// owner's), objects being deleted and mirror pods. Also skipped: Pods in a
// terminal phase and finished Jobs, whose containers never start again.
//
// A kind r may not list (403 Forbidden) does not stop the others: List
// returns the targets it could list and an error joining one
// "listing <resource>: ..." per forbidden kind (apierrors.IsForbidden
// holds for it). Any other failure returns no targets and the error.
func List(ctx context.Context, r client.Reader, o ListOptions) ([]Target, error) {
	var opts []client.ListOption
	if o.Namespace != "" {
		opts = append(opts, client.InNamespace(o.Namespace))
	}
	if o.Selector != nil {
		opts = append(opts, client.MatchingLabelsSelector{Selector: o.Selector})
	}
	var targets []Target
	var forbidden []error
	for _, k := range checkedKinds {
		err := listPages(ctx, r, k.newList, opts, func(obj client.Object) {
			if t, ok := targetOf(k, obj); ok {
				targets = append(targets, t)
			}
		})
		switch {
		case apierrors.IsForbidden(err):
			forbidden = append(forbidden, fmt.Errorf("listing %s: %w", k.resource, err))
		case err != nil:
			return nil, fmt.Errorf("listing %s: %w", k.resource, err)
		}
	}
	return targets, errors.Join(forbidden...)
}

// listPages calls each for every object of the list newList makes, one
// page at a time. A fresh list per page: decoding into a used one could
// reuse memory that earlier targets still point into.
func listPages(ctx context.Context, r client.Reader, newList func() client.ObjectList, opts []client.ListOption, each func(client.Object)) error {
	cont := ""
	for {
		list := newList()
		pageOpts := append(append([]client.ListOption{}, opts...), client.Limit(pageSize), client.Continue(cont))
		if err := r.List(ctx, list, pageOpts...); err != nil {
			return err
		}
		if err := meta.EachListItem(list, func(o runtime.Object) error {
			each(o.(client.Object))
			return nil
		}); err != nil {
			return err
		}
		if cont = list.GetContinue(); cont == "" {
			return nil
		}
	}
}

// targetOf is obj as a Target of kind k, or ok false when admission would
// not check it on its own or its containers will not start again.
func targetOf(k checkedKind, obj client.Object) (t Target, ok bool) {
	if obj.GetDeletionTimestamp() != nil || workloads.OwnedByCheckedKind(obj) {
		return Target{}, false
	}
	var tmpl *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *appsv1.Deployment:
		tmpl = &o.Spec.Template
	case *appsv1.StatefulSet:
		tmpl = &o.Spec.Template
	case *appsv1.DaemonSet:
		tmpl = &o.Spec.Template
	case *appsv1.ReplicaSet:
		tmpl = &o.Spec.Template
	case *batchv1.Job:
		if jobFinished(o) {
			return Target{}, false
		}
		tmpl = &o.Spec.Template
	case *batchv1.CronJob:
		tmpl = &o.Spec.JobTemplate.Spec.Template
	case *corev1.Pod:
		if workloads.IsMirrorPod(o) || o.Status.Phase == corev1.PodSucceeded || o.Status.Phase == corev1.PodFailed {
			return Target{}, false
		}
		// A pod's own labels are its template's.
		tmpl = &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: o.Labels}, Spec: o.Spec}
	default:
		return Target{}, false
	}
	spec := tmpl.Spec.DeepCopy()
	return Target{
		Workload: Workload{
			Kind: k.kind, APIVersion: k.apiVersion,
			Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: string(obj.GetUID()),
		},
		Template:   nodepools.Template{Namespace: obj.GetNamespace(), Labels: tmpl.Labels, Spec: spec},
		Containers: workloads.Containers(spec, false),
	}, true
}

// jobFinished says whether a Job has its Complete or Failed condition: it
// creates no more pods (Kubernetes' job controller).
func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
