package audit

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ecr-preflight/ecr-preflight/e2e/envtestutil"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// TestAuditAgainstAPIServer lists workloads from a real kube-apiserver,
// as an admin and as a user who may list only some kinds, then audits
// them with a fake checker and writes PolicyReports: first without the
// PolicyReport CRD, then with it installed, twice, the second time after
// one namespace lost its workloads. It needs bin/k8s (make envtest-assets).
func TestAuditAgainstAPIServer(t *testing.T) {
	_, cfg := envtestutil.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	web := deployment("a", "web", testImage, "sidecar:1")
	web.Spec.Selector = &metav1.LabelSelector{MatchLabels: web.Spec.Template.Labels}
	rs := ownedBy(replicaSet("a", "web-5d8f", testImage, "sidecar:1"), "apps/v1", "Deployment")
	rs.Spec.Selector = web.Spec.Selector
	debug := pod("b", "debug", "gone:1")
	nightly := cronJob("b", "nightly", "gone:1")
	nightly.Spec.Schedule = "0 3 * * *"
	nightly.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
		// No controller-manager runs: the pod's service account is ours to make.
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "default"}},
		web, rs, nightly, debug,
	}
	for _, o := range objs {
		o.SetUID("") // the API server sets UIDs
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}

	t.Run("an admin lists every kind; the ReplicaSet of a Deployment is skipped", func(t *testing.T) {
		targets, err := List(ctx, c, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := workloadNames(targets), []string{"Deployment a/web", "CronJob b/nightly", "Pod b/debug"}; !slices.Equal(got, want) {
			t.Errorf("workloads = %q, want %q", got, want)
		}
		for _, tg := range targets {
			if tg.Workload.UID == "" {
				t.Errorf("%s %s: no UID", tg.Workload.Kind, tg.Workload.Name)
			}
		}
	})

	t.Run("a user who may list only apps kinds gets them, and an error naming the rest", func(t *testing.T) {
		grantAppsReader(ctx, t, c, "auditor")
		as := rest.CopyConfig(cfg)
		as.Impersonate = rest.ImpersonationConfig{UserName: "auditor"}
		ac, err := client.New(as, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		targets, err := List(ctx, ac, ListOptions{})
		if got, want := workloadNames(targets), []string{"Deployment a/web"}; !slices.Equal(got, want) {
			t.Errorf("workloads = %q, want %q", got, want)
		}
		if !apierrors.IsForbidden(err) {
			t.Fatalf("err = %v, want Forbidden", err)
		}
		for _, want := range []string{"listing jobs: ", "listing cronjobs: ", "listing pods: "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to name %q", err, want)
			}
		}
	})

	checker := &fakeChecker{verdicts: map[string]preflight.Verdict{"gone:1": preflight.VerdictNotPullable}}
	audit := func(t *testing.T) Report {
		t.Helper()
		targets, err := List(ctx, c, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := run(t, ctx, targets, Options{Checker: checker})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("without the PolicyReport CRD nothing is written and it is not an error", func(t *testing.T) {
		installed, err := WritePolicyReports(ctx, c, audit(t))
		if installed || err != nil {
			t.Errorf("WritePolicyReports = %v, %v; want false, nil", installed, err)
		}
	})

	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("testdata", "crds")}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatalf("installing the PolicyReport CRD: %v", err)
	}
	// Another tool's report in b: never ecr-preflight's to delete.
	foreign := &unstructured.Unstructured{}
	foreign.SetGroupVersionKind(policyReportGVK)
	foreign.SetNamespace("b")
	foreign.SetName("kyverno-polr")
	if err := c.Create(ctx, foreign); err != nil {
		t.Fatalf("creating a foreign PolicyReport: %v", err)
	}

	t.Run("with the CRD, each namespace gets its report, every field kept by the API server", func(t *testing.T) {
		r := audit(t)
		write(ctx, t, c, r)
		for _, want := range PolicyReports(r) {
			assertStored(ctx, t, c, want)
		}
	})

	t.Run("a second run updates a namespace's report and deletes the report of one without workloads", func(t *testing.T) {
		if err := c.Delete(ctx, debug); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, nightly); err != nil {
			t.Fatal(err)
		}
		checker.verdicts = map[string]preflight.Verdict{"sidecar:1": preflight.VerdictUnknown}
		r := audit(t)
		write(ctx, t, c, r)
		reports := PolicyReports(r)
		if len(reports) != 1 || reports[0].GetNamespace() != "a" {
			t.Fatalf("reports for %d namespaces, want a only", len(reports))
		}
		got := assertStored(ctx, t, c, reports[0])
		if warn, _, _ := unstructured.NestedInt64(got.Object, "summary", "warn"); warn != 1 {
			t.Errorf("a's summary = %v, want the new warning counted", got.Object["summary"])
		}
		err := c.Get(ctx, client.ObjectKey{Namespace: "b", Name: "ecr-preflight"}, newPolicyReport())
		if !apierrors.IsNotFound(err) {
			t.Errorf("b's report: err = %v, want NotFound", err)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(foreign), newPolicyReport()); err != nil {
			t.Errorf("the foreign report in b: %v, want it kept", err)
		}
	})
}

func write(ctx context.Context, t *testing.T, c client.Client, r Report) {
	t.Helper()
	installed, err := WritePolicyReports(ctx, c, r)
	if !installed || err != nil {
		t.Fatalf("WritePolicyReports = %v, %v; want true, nil", installed, err)
	}
}

func newPolicyReport() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(policyReportGVK)
	return u
}

// assertStored reads want's report back and compares what ecr-preflight
// wrote: a field the CRD does not declare would have been pruned.
func assertStored(ctx context.Context, t *testing.T, c client.Client, want *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	got := newPolicyReport()
	if err := c.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
		t.Fatalf("reading PolicyReport %s/%s: %v", want.GetNamespace(), want.GetName(), err)
	}
	for _, field := range []string{"summary", "results"} {
		if !reflect.DeepEqual(got.Object[field], want.Object[field]) {
			t.Errorf("%s's %s =\n%v\nwant\n%v", want.GetNamespace(), field, got.Object[field], want.Object[field])
		}
	}
	if !reflect.DeepEqual(got.GetLabels(), want.GetLabels()) {
		t.Errorf("%s's labels = %v, want %v", want.GetNamespace(), got.GetLabels(), want.GetLabels())
	}
	return got
}

// grantAppsReader lets user list the apps kinds only, cluster-wide.
func grantAppsReader(ctx context.Context, t *testing.T, c client.Client, user string) {
	t.Helper()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "apps-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{appsv1.GroupName}, Verbs: []string{"list"},
			Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "apps-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}
