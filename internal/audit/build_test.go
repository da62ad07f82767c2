package audit

import (
	"reflect"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// problemShape is what TestBuild compares of a problem: its code,
// severity, counts and the containers it lists ("ns/Kind/name:container").
type problemShape struct {
	Code      preflight.Code
	Severity  preflight.Severity
	Workloads int
	Images    int
	Items     []string
}

func shapes(ps []Problem) []problemShape {
	out := []problemShape{}
	for _, p := range ps {
		s := problemShape{Code: p.Code, Severity: p.Severity, Workloads: p.Workloads, Images: p.Images}
		for _, it := range p.Items {
			s.Items = append(s.Items, qualifiedName(it.Workload)+":"+it.Container)
		}
		out = append(out, s)
	}
	return out
}

func item(ns, kind, name, container, image string, v preflight.Verdict, findings ...preflight.Finding) Item {
	return Item{Workload: workload(ns, kind, name), Container: container, Image: image, Verdict: v, Findings: findings}
}

func finding(code preflight.Code, sev preflight.Severity) preflight.Finding {
	return preflight.Finding{Code: code, Severity: sev, Message: string(code) + " " + string(sev)}
}

func TestBuild(t *testing.T) {
	const (
		notFound = preflight.CodeImageNotFound
		denied   = preflight.CodeRepositoryPolicyDenies
		lookup   = preflight.CodeLookupFailed
		platform = preflight.CodePlatformNotAvailable
	)
	errorF := func(c preflight.Code) preflight.Finding { return finding(c, preflight.SeverityError) }
	warnF := func(c preflight.Code) preflight.Finding { return finding(c, preflight.SeverityWarning) }
	tests := map[string]struct {
		items     []Item
		summary   Summary
		problems  []problemShape
		itemOrder []string
	}{
		"no items: zero counts and empty lists": {
			summary:  Summary{Verdicts: map[preflight.Verdict]int{}},
			problems: []problemShape{},
		},
		"info findings are not problems": {
			items: []Item{item("a", "Pod", "p", "c", "docker.io/x", preflight.VerdictSkipped, finding(preflight.CodeSkipped, preflight.SeverityInfo))},
			summary: Summary{Workloads: 1, Containers: 1, Images: 1,
				Verdicts: map[preflight.Verdict]int{preflight.VerdictSkipped: 1}},
			problems:  []problemShape{},
			itemOrder: []string{"a/Pod/p:c"},
		},
		"errors come before warnings that touch more workloads": {
			items: []Item{
				item("a", "Deployment", "one", "c", "i1", preflight.VerdictUnknown, warnF(lookup)),
				item("a", "Deployment", "two", "c", "i2", preflight.VerdictUnknown, warnF(lookup)),
				item("a", "Deployment", "three", "c", "i3", preflight.VerdictNotPullable, errorF(notFound)),
			},
			summary: Summary{Workloads: 3, Containers: 3, Images: 3,
				Verdicts: map[preflight.Verdict]int{preflight.VerdictUnknown: 2, preflight.VerdictNotPullable: 1}},
			problems: []problemShape{
				{notFound, preflight.SeverityError, 1, 1, []string{"a/Deployment/three:c"}},
				{lookup, preflight.SeverityWarning, 2, 2, []string{"a/Deployment/one:c", "a/Deployment/two:c"}},
			},
			itemOrder: []string{"a/Deployment/one:c", "a/Deployment/three:c", "a/Deployment/two:c"},
		},
		"among errors, more workloads first, then by code": {
			items: []Item{
				item("a", "Pod", "p1", "c", "i1", preflight.VerdictNotPullable, errorF(notFound)),
				item("a", "Pod", "p2", "c", "i2", preflight.VerdictNotPullable, errorF(platform)),
				item("a", "Pod", "p3", "c", "i3", preflight.VerdictNotPullable, errorF(denied)),
				item("a", "Pod", "p4", "c", "i3", preflight.VerdictNotPullable, errorF(denied)),
			},
			summary: Summary{Workloads: 4, Containers: 4, Images: 3,
				Verdicts: map[preflight.Verdict]int{preflight.VerdictNotPullable: 4}},
			problems: []problemShape{
				{denied, preflight.SeverityError, 2, 1, []string{"a/Pod/p3:c", "a/Pod/p4:c"}},
				{notFound, preflight.SeverityError, 1, 1, []string{"a/Pod/p1:c"}},
				{platform, preflight.SeverityError, 1, 1, []string{"a/Pod/p2:c"}},
			},
			itemOrder: []string{"a/Pod/p1:c", "a/Pod/p2:c", "a/Pod/p3:c", "a/Pod/p4:c"},
		},
		"a problem counts distinct workloads and images, and every container": {
			items: []Item{
				item("a", "Deployment", "web", "main", "shared", preflight.VerdictNotPullable, errorF(denied)),
				item("a", "Deployment", "web", "sidecar", "shared", preflight.VerdictNotPullable, errorF(denied)),
				item("a", "Deployment", "web", "init", "other", preflight.VerdictNotPullable, errorF(denied)),
			},
			summary: Summary{Workloads: 1, Containers: 3, Images: 2,
				Verdicts: map[preflight.Verdict]int{preflight.VerdictNotPullable: 3}},
			problems: []problemShape{
				{denied, preflight.SeverityError, 1, 2, []string{"a/Deployment/web:init", "a/Deployment/web:main", "a/Deployment/web:sidecar"}},
			},
			itemOrder: []string{"a/Deployment/web:init", "a/Deployment/web:main", "a/Deployment/web:sidecar"},
		},
		"a problem's severity is its most severe finding, and a container is listed once": {
			items: []Item{
				item("a", "Pod", "p", "c", "i", preflight.VerdictPartlyPullable, warnF(platform), errorF(platform)),
			},
			summary: Summary{Workloads: 1, Containers: 1, Images: 1,
				Verdicts: map[preflight.Verdict]int{preflight.VerdictPartlyPullable: 1}},
			problems:  []problemShape{{platform, preflight.SeverityError, 1, 1, []string{"a/Pod/p:c"}}},
			itemOrder: []string{"a/Pod/p:c"},
		},
		"one container with two codes is in two problems": {
			items: []Item{
				item("a", "Pod", "p", "c", "i", preflight.VerdictNotPullable, errorF(denied), warnF(lookup)),
			},
			summary: Summary{Workloads: 1, Containers: 1, Images: 1,
				Verdicts: map[preflight.Verdict]int{preflight.VerdictNotPullable: 1}},
			problems: []problemShape{
				{denied, preflight.SeverityError, 1, 1, []string{"a/Pod/p:c"}},
				{lookup, preflight.SeverityWarning, 1, 1, []string{"a/Pod/p:c"}},
			},
			itemOrder: []string{"a/Pod/p:c"},
		},
		"items sort by namespace, kind, name, then container": {
			items: []Item{
				item("b", "Deployment", "a", "c", "i", preflight.VerdictPullable),
				item("a", "StatefulSet", "a", "c", "i", preflight.VerdictPullable),
				item("a", "Deployment", "z", "c", "i", preflight.VerdictPullable),
				item("a", "Deployment", "b", "y", "i", preflight.VerdictPullable),
				item("a", "Deployment", "b", "x", "i", preflight.VerdictPullable),
			},
			summary: Summary{Workloads: 4, Containers: 5, Images: 1,
				Verdicts: map[preflight.Verdict]int{preflight.VerdictPullable: 5}},
			problems: []problemShape{},
			itemOrder: []string{"a/Deployment/b:x", "a/Deployment/b:y", "a/Deployment/z:c",
				"a/StatefulSet/a:c", "b/Deployment/a:c"},
		},
		"workloads of one name but different kinds are different workloads": {
			items: []Item{
				item("a", "Deployment", "web", "c", "i", preflight.VerdictPullable),
				item("a", "StatefulSet", "web", "c", "i", preflight.VerdictPullable),
			},
			summary: Summary{Workloads: 2, Containers: 2, Images: 1,
				Verdicts: map[preflight.Verdict]int{preflight.VerdictPullable: 2}},
			problems:  []problemShape{},
			itemOrder: []string{"a/Deployment/web:c", "a/StatefulSet/web:c"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := Build(generatedAt, tc.items)
			if !reflect.DeepEqual(r.Summary, tc.summary) {
				t.Errorf("summary %+v, want %+v", r.Summary, tc.summary)
			}
			if got := shapes(r.Problems); !reflect.DeepEqual(got, tc.problems) {
				t.Errorf("problems\n got %+v\nwant %+v", got, tc.problems)
			}
			var order []string
			for _, it := range r.Items {
				order = append(order, qualifiedName(it.Workload)+":"+it.Container)
			}
			if !reflect.DeepEqual(order, tc.itemOrder) {
				t.Errorf("items %v, want %v", order, tc.itemOrder)
			}
			if r.Problems == nil || r.Items == nil {
				t.Error("Problems and Items must not be nil (JSON shows [])")
			}
		})
	}
}

func TestBuildStoresGeneratedAtInUTC(t *testing.T) {
	r := Build(generatedAt, nil)
	if r.GeneratedAt.Location() != time.UTC || !r.GeneratedAt.Equal(generatedAt) {
		t.Errorf("GeneratedAt = %v, want %v in UTC", r.GeneratedAt, generatedAt.UTC())
	}
}

func TestBuildKeepsOnlyAProblemsFindingsInItsItems(t *testing.T) {
	r := fixtureReport()
	for _, p := range r.Problems {
		for _, it := range p.Items {
			if len(it.Findings) == 0 {
				t.Errorf("%s: %s:%s has no finding", p.Code, qualifiedName(it.Workload), it.Container)
			}
			for _, f := range it.Findings {
				if f.Code != p.Code || f.Severity == preflight.SeverityInfo {
					t.Errorf("%s lists a %s %s finding", p.Code, f.Severity, f.Code)
				}
			}
		}
	}
	for _, it := range r.Items {
		if it.Workload.Name == "node-agent" && len(it.Findings) != 2 {
			t.Errorf("Report.Items must keep every finding; node-agent has %d, want 2", len(it.Findings))
		}
		if it.Findings == nil {
			t.Errorf("%s:%s has nil findings, want empty", qualifiedName(it.Workload), it.Container)
		}
	}
}

func TestBuildDoesNotModifyItsInput(t *testing.T) {
	items := fixtureItems()
	before := fixtureItems()
	Build(generatedAt, items)
	if !reflect.DeepEqual(items, before) {
		t.Error("Build reordered or changed the caller's items")
	}
}
