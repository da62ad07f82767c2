package audit

import (
	"context"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

var reportTime = time.Date(2026, 7, 1, 12, 0, 0, 500, time.UTC)

func reportItem(ns, name, container, image string, v preflight.Verdict, findings ...preflight.Finding) Item {
	return Item{
		Workload:  Workload{Kind: "Deployment", APIVersion: "apps/v1", Namespace: ns, Name: name, UID: "uid-" + name},
		Container: container, Image: image, Verdict: v, Findings: findings,
	}
}

// wantResult is the PolicyReportResult the tests expect, around the fields a
// case varies.
func wantResult(name, container, image, verdict, outcome, rule, severity, message string, props map[string]any) map[string]any {
	p := map[string]any{"image": image, "container": container, "verdict": verdict}
	for k, v := range props {
		p[k] = v
	}
	r := map[string]any{
		"source": "ecr-preflight", "policy": "ecr-preflight", "rule": rule, "result": outcome, "scored": true, "message": message,
		"resources":  []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "a", "name": name, "uid": "uid-" + name}},
		"properties": p,
		"timestamp":  map[string]any{"seconds": reportTime.Unix(), "nanos": int64(500)},
	}
	if severity != "" {
		r["severity"] = severity
	}
	return r
}

func TestPolicyReportResults(t *testing.T) {
	notFound := preflight.Finding{Code: preflight.CodeImageNotFound, Severity: preflight.SeverityError,
		Message: "tag 1.0 is not in repository web", Fix: "push the tag or fix the reference"}
	denied := preflight.Finding{Code: preflight.CodeRepositoryPolicyDenies, Severity: preflight.SeverityError,
		Message: `statement "deny-arm" denies ecr:BatchGetImage to role arm-nodes`, Pool: &preflight.PoolRef{Name: "arm", Kind: "managed-node-group"}}
	lookup := preflight.Finding{Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning,
		Message: "describing images: could not verify in time", Fix: "retry"}
	// Literal codes: findings this package does not interpret.
	expiring := preflight.Finding{Code: "ImageExpiring", Severity: preflight.SeverityWarning, Message: "lifecycle rule 1 expires the image on 2026-07-05"}
	aside := preflight.Finding{Code: "PoolNote", Severity: preflight.SeverityInfo, Message: "an aside"}
	skipped := preflight.Finding{Code: preflight.CodeSkipped, Severity: preflight.SeverityInfo, Message: "not a private ECR image"}

	tests := map[string]struct {
		item Item
		want map[string]any
	}{
		"a pullable image passes, with no severity": {
			item: reportItem("a", "web", "app", testImage, preflight.VerdictPullable),
			want: wantResult("web", "app", testImage, "pullable", "pass", "Pullable", "", "the image will pull", nil),
		},
		"a pullable image a lifecycle rule is about to expire warns, with info findings left out": {
			item: reportItem("a", "web", "app", testImage, preflight.VerdictPullable, aside, expiring),
			want: wantResult("web", "app", testImage, "pullable", "warn", "ImageExpiring", "medium",
				"lifecycle rule 1 expires the image on 2026-07-05", nil),
		},
		"a missing image fails with high severity, its finding code as the rule and its fix as a property": {
			item: reportItem("a", "web", "app", testImage, preflight.VerdictNotPullable, notFound),
			want: wantResult("web", "app", testImage, "not-pullable", "fail", "ImageNotFound", "high", "tag 1.0 is not in repository web",
				map[string]any{"fix": "push the tag or fix the reference"}),
		},
		"an image some node pools cannot pull fails; the rule is the first error's code, the message every error's": {
			item: reportItem("a", "web", "app", testImage, preflight.VerdictPartlyPullable, lookup, denied, notFound, denied),
			want: wantResult("web", "app", testImage, "partly-pullable", "fail", "RepositoryPolicyDenies", "high",
				`statement "deny-arm" denies ecr:BatchGetImage to role arm-nodes; tag 1.0 is not in repository web`, nil),
		},
		"an image that could not be checked warns with medium severity": {
			item: reportItem("a", "web", "app", testImage, preflight.VerdictUnknown, lookup),
			want: wantResult("web", "app", testImage, "unknown", "warn", "LookupFailed", "medium", "describing images: could not verify in time",
				map[string]any{"fix": "retry"}),
		},
		"an image outside private ECR is skipped, with no severity": {
			item: reportItem("a", "web", "proxy", "nginx:1.27", preflight.VerdictSkipped, skipped),
			want: wantResult("web", "proxy", "nginx:1.27", "skipped", "skip", "Skipped", "", "not a private ECR image", nil),
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reports := PolicyReports(Report{GeneratedAt: reportTime, Items: []Item{tt.item}})
			if len(reports) != 1 {
				t.Fatalf("%d reports, want 1", len(reports))
			}
			results := reports[0].Object["results"].([]any)
			if len(results) != 1 || !reflect.DeepEqual(results[0], tt.want) {
				t.Errorf("results =\n%#v\nwant\n%#v", results, tt.want)
			}
		})
	}
}

func TestPolicyReportsPerNamespace(t *testing.T) {
	notFound := preflight.Finding{Code: preflight.CodeImageNotFound, Severity: preflight.SeverityError, Message: "gone"}
	lookup := preflight.Finding{Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning, Message: "timeout"}
	r := Report{GeneratedAt: reportTime, Items: []Item{
		reportItem("a", "web", "app", testImage, preflight.VerdictPullable),
		reportItem("a", "web", "sidecar", "nginx:1.27", preflight.VerdictSkipped),
		reportItem("b", "api", "app", testImage, preflight.VerdictNotPullable, notFound),
		reportItem("b", "api", "cache", testImage, preflight.VerdictUnknown, lookup),
		reportItem("b", "cron", "app", testImage, preflight.VerdictNotPullable, notFound),
	}}
	reports := PolicyReports(r)
	if len(reports) != 2 {
		t.Fatalf("%d reports, want one per namespace: 2", len(reports))
	}
	wantSummaries := map[string]map[string]any{
		"a": {"pass": int64(1), "fail": int64(0), "warn": int64(0), "error": int64(0), "skip": int64(1)},
		"b": {"pass": int64(0), "fail": int64(2), "warn": int64(1), "error": int64(0), "skip": int64(0)},
	}
	wantRules := map[string][]string{"a": {"Pullable", "Skipped"}, "b": {"ImageNotFound", "LookupFailed", "ImageNotFound"}}
	for i, ns := range []string{"a", "b"} {
		u := reports[i]
		if u.GetAPIVersion() != "wgpolicyk8s.io/v1alpha2" || u.GetKind() != "PolicyReport" ||
			u.GetNamespace() != ns || u.GetName() != "ecr-preflight" ||
			!reflect.DeepEqual(u.GetLabels(), map[string]string{"app.kubernetes.io/managed-by": "ecr-preflight"}) {
			t.Errorf("report %d = %s %s %s/%s labels %v; want wgpolicyk8s.io/v1alpha2 PolicyReport %s/ecr-preflight managed by ecr-preflight",
				i, u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName(), u.GetLabels(), ns)
		}
		if got := u.Object["summary"]; !reflect.DeepEqual(got, wantSummaries[ns]) {
			t.Errorf("%s: summary = %v, want %v", ns, got, wantSummaries[ns])
		}
		var rules []string
		for _, res := range u.Object["results"].([]any) {
			rules = append(rules, res.(map[string]any)["rule"].(string))
		}
		if !reflect.DeepEqual(rules, wantRules[ns]) {
			t.Errorf("%s: rules = %q, want %q (one result per item, in order)", ns, rules, wantRules[ns])
		}
		// Unstructured objects must deep-copy (JSON values only): the
		// client copies them before sending.
		_ = u.DeepCopy()
	}
	if got := PolicyReports(Report{}); len(got) != 0 {
		t.Errorf("a report without items gives %d PolicyReports, want none", len(got))
	}
}

// TestWritePolicyReportsSkipsTerminatingNamespaces: a namespace being
// deleted refuses new objects; its report is skipped, not a failure, and
// the other namespaces' reports are written.
func TestWritePolicyReportsSkipsTerminatingNamespaces(t *testing.T) {
	terminating := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Reason: metav1.StatusReasonForbidden, Code: 403,
		Message: `unable to create new content in namespace gone because it is being terminated`,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}},
	}}
	var applied []string
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error { return nil },
		Apply: func(_ context.Context, _ client.WithWatch, obj runtime.ApplyConfiguration, _ ...client.ApplyOption) error {
			u, ok := obj.(interface{ GetNamespace() string })
			if !ok {
				t.Fatalf("applied a %T", obj)
			}
			ns := u.GetNamespace()
			if ns == "gone" {
				return terminating
			}
			applied = append(applied, ns)
			return nil
		},
	}).Build()
	item := func(ns string) Item {
		return Item{Workload: Workload{Kind: "Deployment", APIVersion: "apps/v1", Namespace: ns, Name: "web"},
			Container: "app", Image: "x", Verdict: preflight.VerdictPullable}
	}
	installed, err := WritePolicyReports(context.Background(), c, Build(time.Now(), []Item{item("gone"), item("shop")}))
	if !installed || err != nil {
		t.Fatalf("installed %v, err %v; want the terminating namespace skipped", installed, err)
	}
	if len(applied) != 1 || applied[0] != "shop" {
		t.Errorf("applied %v, want shop", applied)
	}
}
