package webhook

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// The seed scenario: a repository policy statement "new policy" denies the
// node role, so the UI image cannot be pulled.
const (
	uiImage   = "1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1"
	okImage   = "1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-catalog:1.2.1"
	vpcImage  = "1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-cart:1.2.1"
	hubImage  = "docker.io/library/busybox:1.36"
	nodeRole  = "arn:aws:iam::1234567890:role/EksNodeGroupRole"
	otherRole = "arn:aws:iam::1234567890:role/GpuNodeRole"
	namespace = "retail"
	deniedFix = `change the Effect of statement "new policy" to Allow, or remove EksNodeGroupRole from its Principal`
	// deniedText names the statement and the action, as preflight.Finding's
	// contract says every message with those fields does.
	deniedText = `statement "new policy" of the repository policy of retail-sample-app-ui denies ecr:BatchGetImage to role EksNodeGroupRole`
)

// seedResults answers for the images above as the engine would.
var seedResults = map[string]preflight.Result{
	uiImage: {Image: uiImage, Verdict: preflight.VerdictNotPullable, Findings: []preflight.Finding{{
		Code: preflight.CodeRepositoryPolicyDenies, Severity: preflight.SeverityError, Role: nodeRole,
		Action: "ecr:BatchGetImage", Statement: "new policy", Message: deniedText, Fix: deniedFix,
	}}},
	okImage: {Image: okImage, Verdict: preflight.VerdictPullable},
	vpcImage: {Image: vpcImage, Verdict: preflight.VerdictUnknown, Findings: []preflight.Finding{{
		Code: preflight.CodeUndetermined, Severity: preflight.SeverityWarning, Role: nodeRole,
		Action: "ecr:BatchGetImage", Statement: "vpce only", UnknownKeys: []string{"aws:SourceVpce"},
		Message: "the decision depends on aws:SourceVpce",
	}}},
	hubImage: {Image: hubImage, Verdict: preflight.VerdictSkipped, Findings: []preflight.Finding{{
		Code: preflight.CodeSkipped, Severity: preflight.SeverityInfo, Message: "not a private ECR image",
	}}},
}

// fakeChecker answers from canned results (pullable for anything else) and
// records what it was asked. block makes it ignore its context and hang
// until release is closed; panics makes it panic.
type fakeChecker struct {
	results map[string]preflight.Result
	block   chan struct{}
	panics  bool

	mu    sync.Mutex
	calls [][]string
	roles [][]string
}

func (f *fakeChecker) CheckPools(_ context.Context, images []string, pl nodepools.Placement) []preflight.Result {
	roles := rolesOf(pl)
	f.mu.Lock()
	f.calls = append(f.calls, slices.Clone(images))
	f.roles = append(f.roles, slices.Clone(roles))
	f.mu.Unlock()
	if f.panics {
		panic("checker exploded")
	}
	if f.block != nil {
		<-f.block
	}
	out := make([]preflight.Result, len(images))
	for i, img := range images {
		r, ok := f.results[img]
		if !ok {
			r = preflight.Result{Image: img, Verdict: preflight.VerdictPullable}
		}
		out[i] = r
	}
	return out
}

func (f *fakeChecker) Calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// fakeModes answers namespace labels from a map, or fails with err.
type fakeModes struct {
	labels map[string]string
	err    error
}

func (f fakeModes) NamespaceMode(_ context.Context, ns string) (string, bool, error) {
	if f.err != nil {
		return "", false, f.err
	}
	v, ok := f.labels[ns]
	return v, ok, nil
}

// rolesOf lists the roles of pl's candidates, as the fakes record them.
func rolesOf(pl nodepools.Placement) []string {
	roles := make([]string, 0, len(pl.Candidates))
	for _, p := range pl.Candidates {
		roles = append(roles, p.RoleARN)
	}
	return roles
}

type failingRoles struct{}

func (failingRoles) Placement(context.Context, nodepools.Template) (nodepools.Placement, error) {
	return nodepools.Placement{}, errors.New("no node groups found")
}

// recorder is a Metrics that remembers its observations.
type recorder struct {
	mu         sync.Mutex
	admissions []string // "kind operation mode decision"
	findings   []string
	unverified []string
}

func (r *recorder) ObserveUnverified(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unverified = append(r.unverified, reason)
}

func (r *recorder) ObserveAdmission(kind, operation, mode, decision string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.admissions = append(r.admissions, kind+" "+operation+" "+mode+" "+decision)
}

func (r *recorder) ObserveFinding(code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.findings = append(r.findings, code)
}

// podSpec builds a pod spec with containers named after the images' order.
func podSpec(images ...string) corev1.PodSpec {
	var s corev1.PodSpec
	for i, img := range images {
		s.Containers = append(s.Containers, corev1.Container{Name: containerName(i), Image: img})
	}
	return s
}

func containerName(i int) string {
	return []string{"ui", "sidecar", "third", "fourth", "fifth", "sixth"}[i%6]
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}

func deployment(name string, images ...string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: meta(name), Spec: appsv1.DeploymentSpec{
		Template: corev1.PodTemplateSpec{Spec: podSpec(images...)},
	}}
}

func statefulSet(name string, images ...string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: meta(name), Spec: appsv1.StatefulSetSpec{
		Template: corev1.PodTemplateSpec{Spec: podSpec(images...)},
	}}
}

func daemonSet(name string, images ...string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: meta(name), Spec: appsv1.DaemonSetSpec{
		Template: corev1.PodTemplateSpec{Spec: podSpec(images...)},
	}}
}

func replicaSet(name string, images ...string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: meta(name), Spec: appsv1.ReplicaSetSpec{
		Template: corev1.PodTemplateSpec{Spec: podSpec(images...)},
	}}
}

func job(name string, images ...string) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: meta(name), Spec: batchv1.JobSpec{
		Template: corev1.PodTemplateSpec{Spec: podSpec(images...)},
	}}
}

func cronJob(name string, images ...string) *batchv1.CronJob {
	return &batchv1.CronJob{ObjectMeta: meta(name), Spec: batchv1.CronJobSpec{
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: podSpec(images...)},
		}},
	}}
}

func pod(name string, images ...string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: meta(name), Spec: podSpec(images...)}
}

// controlledBy makes obj controlled by an owner of apiVersion/kind.
func controlledBy[T metav1.Object](obj T, apiVersion, kind string) T {
	yes := true
	obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "owner", UID: "u", Controller: &yes}})
	return obj
}

func annotated[T metav1.Object](obj T, k, v string) T {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	obj.SetAnnotations(a)
	return obj
}
