package audit

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/workloads"
)

const testImage = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.0"

func podSpec(images ...string) corev1.PodSpec {
	var s corev1.PodSpec
	for i, img := range images {
		s.Containers = append(s.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return s
}

func template(images ...string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"tier": "pod"}}, Spec: podSpec(images...)}
}

func meta_(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Labels: map[string]string{"app": name}}
}

func deployment(ns, name string, images ...string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: meta_(ns, name), Spec: appsv1.DeploymentSpec{Template: template(images...)}}
}

func statefulSet(ns, name string, images ...string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: meta_(ns, name), Spec: appsv1.StatefulSetSpec{Template: template(images...)}}
}

func daemonSet(ns, name string, images ...string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: meta_(ns, name), Spec: appsv1.DaemonSetSpec{Template: template(images...)}}
}

func replicaSet(ns, name string, images ...string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: meta_(ns, name), Spec: appsv1.ReplicaSetSpec{Template: template(images...)}}
}

func job(ns, name string, images ...string) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: meta_(ns, name), Spec: batchv1.JobSpec{Template: template(images...)}}
}

func cronJob(ns, name string, images ...string) *batchv1.CronJob {
	return &batchv1.CronJob{ObjectMeta: meta_(ns, name), Spec: batchv1.CronJobSpec{
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(images...)}}}}
}

func pod(ns, name string, images ...string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: meta_(ns, name), Spec: podSpec(images...)}
}

// ownedBy makes obj's controller a kind of apiVersion.
func ownedBy[T client.Object](obj T, apiVersion, kind string) T {
	obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "owner", UID: "owner", Controller: new(true)}})
	return obj
}

func reader(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) client.Reader {
	t.Helper()
	b := fake.NewClientBuilder().WithObjects(objs...)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

// workloadNames are the targets' workloads as "Kind ns/name".
func workloadNames(targets []Target) []string {
	out := make([]string, len(targets))
	for i, t := range targets {
		out[i] = fmt.Sprintf("%s %s/%s", t.Workload.Kind, t.Workload.Namespace, t.Workload.Name)
	}
	return out
}

func TestListEveryKind(t *testing.T) {
	r := reader(t, nil,
		deployment("a", "web", testImage), statefulSet("a", "db", testImage), daemonSet("a", "agent", testImage),
		replicaSet("a", "bare-rs", testImage), job("a", "migrate", testImage), cronJob("a", "nightly", testImage),
		pod("a", "debug", testImage))
	targets, err := List(context.Background(), r, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Deployment a/web", "StatefulSet a/db", "DaemonSet a/agent", "ReplicaSet a/bare-rs", "Job a/migrate", "CronJob a/nightly", "Pod a/debug"}
	if got := workloadNames(targets); !slices.Equal(got, want) {
		t.Errorf("workloads = %q, want %q", got, want)
	}
	wantVersions := map[string]string{"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
		"ReplicaSet": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1", "Pod": "v1"}
	for _, tg := range targets {
		w := tg.Workload
		if w.APIVersion != wantVersions[w.Kind] || w.UID != "uid-a-"+w.Name {
			t.Errorf("%s %s: apiVersion %q, uid %q; want %q, uid-a-%s", w.Kind, w.Name, w.APIVersion, w.UID, wantVersions[w.Kind], w.Name)
		}
		if want := []workloads.Container{{Name: "c0", Image: testImage}}; !slices.Equal(tg.Containers, want) {
			t.Errorf("%s %s: containers %+v, want %+v", w.Kind, w.Name, tg.Containers, want)
		}
	}
}

func TestListTarget(t *testing.T) {
	tests := map[string]struct {
		obj  client.Object
		want Target
	}{
		"a CronJob's template is its job template's pod template, labels included": {
			obj: cronJob("a", "nightly", testImage),
			want: Target{
				Workload:   Workload{Kind: "CronJob", APIVersion: "batch/v1", Namespace: "a", Name: "nightly", UID: "uid-a-nightly"},
				Template:   nodepools.Template{Namespace: "a", Labels: map[string]string{"tier": "pod"}, Spec: new(podSpec(testImage))},
				Containers: []workloads.Container{{Name: "c0", Image: testImage}},
			},
		},
		"a Pod's template is its own labels and spec; init, regular then ephemeral containers count, empty images do not": {
			obj: func() client.Object {
				p := pod("a", "debug", "app:1")
				p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "init:1"}}
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "empty"})
				p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox"}}}
				return p
			}(),
			want: Target{
				Workload: Workload{Kind: "Pod", APIVersion: "v1", Namespace: "a", Name: "debug", UID: "uid-a-debug"},
				Template: nodepools.Template{Namespace: "a", Labels: map[string]string{"app": "debug"}, Spec: &corev1.PodSpec{
					InitContainers:      []corev1.Container{{Name: "init", Image: "init:1"}},
					Containers:          []corev1.Container{{Name: "c0", Image: "app:1"}, {Name: "empty"}},
					EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox"}}},
				}},
				Containers: []workloads.Container{{Name: "init", Image: "init:1"}, {Name: "c0", Image: "app:1"}, {Name: "debugger", Image: "busybox"}},
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			targets, err := List(context.Background(), reader(t, nil, tt.obj), ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(targets) != 1 {
				t.Fatalf("targets = %q, want one", workloadNames(targets))
			}
			if !reflect.DeepEqual(targets[0], tt.want) {
				t.Errorf("target =\n%+v\nwant\n%+v", targets[0], tt.want)
			}
		})
	}
}

func TestListSkips(t *testing.T) {
	deleting := func(obj client.Object) client.Object {
		obj.SetDeletionTimestamp(new(metav1.Now()))
		obj.SetFinalizers([]string{"example.com/hold"})
		return obj
	}
	tests := map[string]struct {
		obj    client.Object
		listed bool
	}{
		"a Deployment's ReplicaSet is skipped: its template was checked on the Deployment": {
			obj: ownedBy(replicaSet("a", "web-5d8f", testImage), "apps/v1", "Deployment"),
		},
		"a CronJob's Job is skipped":     {obj: ownedBy(job("a", "nightly-1", testImage), "batch/v1", "CronJob")},
		"a ReplicaSet's Pod is skipped":  {obj: ownedBy(pod("a", "web-5d8f-x", testImage), "apps/v1", "ReplicaSet")},
		"a StatefulSet's Pod is skipped": {obj: ownedBy(pod("a", "db-0", testImage), "apps/v1", "StatefulSet")},
		"a DaemonSet's Pod is skipped":   {obj: ownedBy(pod("a", "agent-x", testImage), "apps/v1", "DaemonSet")},
		"a Job's Pod is skipped":         {obj: ownedBy(pod("a", "migrate-x", testImage), "batch/v1", "Job")},
		"a ReplicaSet of an Argo Rollout is listed: nothing else carries its template": {
			obj: ownedBy(replicaSet("a", "canary-7c", testImage), "argoproj.io/v1alpha1", "Rollout"), listed: true,
		},
		"a Pod of an operator's custom resource is listed": {
			obj: ownedBy(pod("a", "cluster-0", testImage), "example.com/v1", "Cluster"), listed: true,
		},
		"a Deployment being deleted is skipped": {obj: deleting(deployment("a", "old", testImage))},
		"a Pod being deleted is skipped":        {obj: deleting(pod("a", "old", testImage))},
		"a mirror pod is skipped: the kubelet runs it from a file": {
			obj: func() client.Object {
				p := pod("kube-system", "kube-proxy-node1", testImage)
				p.Annotations = map[string]string{"kubernetes.io/config.mirror": "abc"}
				return p
			}(),
		},
		"a succeeded Pod is skipped: its containers never start again": {
			obj: func() client.Object { p := pod("a", "done", testImage); p.Status.Phase = corev1.PodSucceeded; return p }(),
		},
		"a failed Pod is skipped": {
			obj: func() client.Object { p := pod("a", "crashed", testImage); p.Status.Phase = corev1.PodFailed; return p }(),
		},
		"a running Pod is listed": {
			obj:    func() client.Object { p := pod("a", "up", testImage); p.Status.Phase = corev1.PodRunning; return p }(),
			listed: true,
		},
		"a complete Job is skipped: it creates no more pods": {
			obj: func() client.Object {
				j := job("a", "migrate", testImage)
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
				return j
			}(),
		},
		"a failed Job is skipped": {
			obj: func() client.Object {
				j := job("a", "migrate", testImage)
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
				return j
			}(),
		},
		"a suspended Job is listed: it may resume": {
			obj: func() client.Object {
				j := job("a", "migrate", testImage)
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue}}
				return j
			}(),
			listed: true,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			targets, err := List(context.Background(), reader(t, nil, tt.obj), ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if listed := len(targets) == 1; listed != tt.listed || len(targets) > 1 {
				t.Errorf("targets = %q, want listed %v", workloadNames(targets), tt.listed)
			}
		})
	}
}

func TestListSelection(t *testing.T) {
	objs := []client.Object{
		deployment("a", "web", testImage), deployment("b", "web", testImage),
		pod("a", "api", testImage), cronJob("b", "api", testImage),
	}
	tests := map[string]struct {
		opts ListOptions
		want []string
	}{
		"everything":    {want: []string{"Deployment a/web", "Deployment b/web", "CronJob b/api", "Pod a/api"}},
		"one namespace": {opts: ListOptions{Namespace: "b"}, want: []string{"Deployment b/web", "CronJob b/api"}},
		"a label selector matches the objects' own labels": {
			opts: ListOptions{Selector: labels.SelectorFromSet(labels.Set{"app": "api"})},
			want: []string{"CronJob b/api", "Pod a/api"},
		},
		"a namespace and a selector together": {
			opts: ListOptions{Namespace: "a", Selector: labels.SelectorFromSet(labels.Set{"app": "api"})},
			want: []string{"Pod a/api"},
		},
		"a selector that matches no object's labels, only its template's": {
			opts: ListOptions{Selector: labels.SelectorFromSet(labels.Set{"tier": "pod"})},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			targets, err := List(context.Background(), reader(t, nil, objs...), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := workloadNames(targets); !slices.Equal(got, tt.want) {
				t.Errorf("workloads = %q, want %q", got, tt.want)
			}
		})
	}
}

// failList fails the List of the given list kinds with err(resource).
func failList(err func(resource string) error, listKinds ...string) *interceptor.Funcs {
	return &interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		gvk, gerr := c.GroupVersionKindFor(list)
		if gerr != nil {
			return gerr
		}
		if slices.Contains(listKinds, gvk.Kind) {
			kind := strings.TrimSuffix(gvk.Kind, "List")
			return err(strings.ToLower(kind) + "s")
		}
		return c.List(ctx, list, opts...)
	}}
}

func TestListForbiddenKindsAreReported(t *testing.T) {
	forbidden := func(resource string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", errors.New(`User "auditor" cannot list resource`))
	}
	r := reader(t, failList(forbidden, "CronJobList", "PodList"),
		deployment("a", "web", testImage), cronJob("a", "nightly", testImage), pod("a", "debug", testImage))
	targets, err := List(context.Background(), r, ListOptions{})
	if got, want := workloadNames(targets), []string{"Deployment a/web"}; !slices.Equal(got, want) {
		t.Errorf("workloads = %q, want %q: the kinds that could be listed are kept", got, want)
	}
	if !apierrors.IsForbidden(err) {
		t.Fatalf("err = %v, want Forbidden", err)
	}
	for _, want := range []string{"listing cronjobs: ", "listing pods: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to name %q", err, want)
		}
	}
}

func TestListOtherFailuresStop(t *testing.T) {
	unavailable := func(string) error { return apierrors.NewServiceUnavailable("etcd is down") }
	r := reader(t, failList(unavailable, "JobList"), deployment("a", "web", testImage))
	targets, err := List(context.Background(), r, ListOptions{})
	if targets != nil || !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "listing jobs: ") {
		t.Errorf("List = %q, %v; want nothing and the jobs error", workloadNames(targets), err)
	}
}

// paging serves Lists in pages, honouring Limit and Continue as the API
// server does (the fake client ignores both), and records every call.
type paging struct {
	calls []string // "PodList limit=500 continue=..."
}

func (p *paging) funcs() *interceptor.Funcs {
	return &interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		lo := (&client.ListOptions{}).ApplyOptions(opts)
		gvk, err := c.GroupVersionKindFor(list)
		if err != nil {
			return err
		}
		p.calls = append(p.calls, fmt.Sprintf("%s limit=%d continue=%q", gvk.Kind, lo.Limit, lo.Continue))
		if err := c.List(ctx, list, &client.ListOptions{Namespace: lo.Namespace, LabelSelector: lo.LabelSelector}); err != nil {
			return err
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		start := 0
		if lo.Continue != "" {
			if start, err = strconv.Atoi(lo.Continue); err != nil {
				return apierrors.NewBadRequest("bad continue token")
			}
		}
		end := len(items)
		if lo.Limit > 0 {
			end = min(start+int(lo.Limit), len(items))
		}
		if end < len(items) {
			list.SetContinue(strconv.Itoa(end))
		}
		return meta.SetList(list, slices.Clone(items[start:end]))
	}}
}

func TestListPaginates(t *testing.T) {
	var objs []client.Object
	for i := range 1234 {
		objs = append(objs, pod("a", fmt.Sprintf("p%04d", i), testImage))
	}
	objs = append(objs, deployment("a", "web", testImage))
	p := &paging{}
	targets, err := List(context.Background(), reader(t, p.funcs(), objs...), ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 1235 {
		t.Fatalf("%d targets, want 1235", len(targets))
	}
	for i, tg := range targets[1:] {
		if want := fmt.Sprintf("p%04d", i); tg.Workload.Name != want {
			t.Fatalf("target %d is %s, want %s: a page was lost or repeated", i+1, tg.Workload.Name, want)
		}
	}
	want := []string{
		`DeploymentList limit=500 continue=""`, `StatefulSetList limit=500 continue=""`, `DaemonSetList limit=500 continue=""`,
		`ReplicaSetList limit=500 continue=""`, `JobList limit=500 continue=""`, `CronJobList limit=500 continue=""`,
		`PodList limit=500 continue=""`, `PodList limit=500 continue="500"`, `PodList limit=500 continue="1000"`,
	}
	if !slices.Equal(p.calls, want) {
		t.Errorf("List calls =\n%s\nwant\n%s", strings.Join(p.calls, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckedKindsMatchTheirLists keeps each kind's name and apiVersion,
// which Workloads carry, equal to those of the list it is read from.
func TestCheckedKindsMatchTheirLists(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	for _, k := range checkedKinds {
		gvk, err := c.GroupVersionKindFor(k.newList())
		if err != nil {
			t.Fatal(err)
		}
		if got := gvk.GroupVersion().String(); got != k.apiVersion || gvk.Kind != k.kind+"List" {
			t.Errorf("%s: list is %s %s, want %s %sList", k.kind, got, gvk.Kind, k.apiVersion, k.kind)
		}
	}
}
