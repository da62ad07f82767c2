package metrics_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecr-preflight/ecr-preflight/internal/audit"
	"github.com/ecr-preflight/ecr-preflight/internal/metrics"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

const image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.0"

var auditNames = []string{
	metrics.AuditVerdictMetric, metrics.AuditFindingMetric,
	metrics.AuditLastCompletionMetric, metrics.AuditDurationMetric, metrics.AuditWorkloadsMetric,
}

func item(ns, name, container string, v preflight.Verdict, findings ...preflight.Finding) audit.Item {
	return audit.Item{
		Workload:  audit.Workload{Kind: "Deployment", APIVersion: "apps/v1", Namespace: ns, Name: name},
		Container: container, Image: image, Verdict: v, Findings: findings,
	}
}

// auditSeries flattens the audit metrics of reg into
// "name{label=value,...}" → value, labels sorted by name.
func auditSeries(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if !slices.Contains(auditNames, f.GetName()) {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

// countSeries is how many series of name reg has.
func countSeries(t *testing.T, reg prometheus.Gatherer, name string) int {
	t.Helper()
	n := 0
	for k := range auditSeries(t, reg) {
		if strings.HasPrefix(k, name+"{") {
			n++
		}
	}
	return n
}

func assertSeries(t *testing.T, reg prometheus.Gatherer, want map[string]float64) {
	t.Helper()
	got := auditSeries(t, reg)
	if !maps.Equal(got, want) {
		t.Errorf("series:\n%s\nwant\n%s", dump(got), dump(want))
	}
}

func dump(series map[string]float64) string {
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(series)) {
		lines = append(lines, fmt.Sprintf("  %s %g", k, series[k]))
	}
	return strings.Join(lines, "\n")
}

func TestAuditRecorderReplacesTheSeriesOfEachAudit(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := metrics.NewAuditRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	// A replica that never audits (not the leader) exports nothing, so an
	// alert on a stale audit does not fire for it.
	assertSeries(t, reg, map[string]float64{})

	denied := preflight.Finding{Code: preflight.CodeRepositoryPolicyDenies, Severity: preflight.SeverityError, Pool: &preflight.PoolRef{Name: "arm"}}
	deniedElsewhere := preflight.Finding{Code: preflight.CodeRepositoryPolicyDenies, Severity: preflight.SeverityError, Pool: &preflight.PoolRef{Name: "x86"}}
	expiring := preflight.Finding{Code: preflight.CodeImageExpiring, Severity: preflight.SeverityWarning}
	aside := preflight.Finding{Code: "PoolNote", Severity: preflight.SeverityInfo}
	finished := time.Date(2026, 7, 1, 12, 0, 0, 500_000_000, time.UTC)
	rec.ObserveAudit(audit.Build(finished, []audit.Item{
		item("a", "web", "app", preflight.VerdictNotPullable, denied, deniedElsewhere, aside),
		item("a", "web", "sidecar", preflight.VerdictPullable, expiring),
		item("b", "api", "app", preflight.VerdictPullable),
	}), 1500*time.Millisecond)
	const (
		webApp     = "container=app,image=" + image + ",kind=Deployment,name=web,namespace=a"
		webSidecar = "container=sidecar,image=" + image + ",kind=Deployment,name=web,namespace=a"
		apiApp     = "container=app,image=" + image + ",kind=Deployment,name=api,namespace=b"
		jobApp     = "container=app,image=" + image + ",kind=Deployment,name=job,namespace=c"
	)
	assertSeries(t, reg, map[string]float64{
		"ecr_preflight_workload_image_verdict{" + webApp + ",verdict=not-pullable}":                       1,
		"ecr_preflight_workload_image_verdict{" + webSidecar + ",verdict=pullable}":                       1,
		"ecr_preflight_workload_image_verdict{" + apiApp + ",verdict=pullable}":                           1,
		"ecr_preflight_workload_image_finding{code=RepositoryPolicyDenies," + webApp + ",severity=error}": 1,
		"ecr_preflight_workload_image_finding{code=ImageExpiring," + webSidecar + ",severity=warning}":    1,
		"ecr_preflight_audit_last_completion_timestamp_seconds{}":                                         float64(finished.Unix()) + 0.5,
		"ecr_preflight_audit_duration_seconds{}":                                                          1.5,
		"ecr_preflight_audit_workloads{}":                                                                 2,
	})

	// a/web recovered and its lifecycle rule no longer selects the image;
	// b/api was deleted; c/job appeared and could not be checked.
	rec.ObserveAudit(audit.Build(finished.Add(time.Minute), []audit.Item{
		item("a", "web", "app", preflight.VerdictPullable),
		item("a", "web", "sidecar", preflight.VerdictPullable),
		item("c", "job", "app", preflight.VerdictUnknown, preflight.Finding{Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning}),
	}), 2*time.Second)
	assertSeries(t, reg, map[string]float64{
		"ecr_preflight_workload_image_verdict{" + webApp + ",verdict=pullable}":                   1,
		"ecr_preflight_workload_image_verdict{" + webSidecar + ",verdict=pullable}":               1,
		"ecr_preflight_workload_image_verdict{" + jobApp + ",verdict=unknown}":                    1,
		"ecr_preflight_workload_image_finding{code=LookupFailed," + jobApp + ",severity=warning}": 1,
		"ecr_preflight_audit_last_completion_timestamp_seconds{}":                                 float64(finished.Unix()) + 60.5,
		"ecr_preflight_audit_duration_seconds{}":                                                  2,
		"ecr_preflight_audit_workloads{}":                                                         2,
	})
}

func TestAuditRecorderRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := metrics.NewAuditRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Both recorders of one registry share the collector: the second's
	// audit replaces the first's.
	again, err := metrics.NewAuditRecorder(reg)
	if err != nil {
		t.Fatalf("registering twice: %v", err)
	}
	first.ObserveAudit(audit.Build(time.Now(), []audit.Item{item("a", "web", "app", preflight.VerdictPullable)}), time.Second)
	again.ObserveAudit(audit.Build(time.Now(), []audit.Item{item("a", "api", "app", preflight.VerdictPullable)}), time.Second)
	if n := countSeries(t, reg, metrics.AuditVerdictMetric); n != 1 {
		t.Errorf("verdict series = %d, want 1", n)
	}

	conflict := prometheus.NewRegistry()
	conflict.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.AuditWorkloadsMetric, Help: "x"}))
	if _, err := metrics.NewAuditRecorder(conflict); err == nil {
		t.Error("want an error for a conflicting collector")
	}
}

// TestAuditRecorderScrapesSeeWholeAudits scrapes while audits replace the
// series: every scrape must see one whole audit, never a set half reset,
// or an alert waiting out its `for` would start over.
func TestAuditRecorderScrapesSeeWholeAudits(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := metrics.NewAuditRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	reports := make([]audit.Report, 2)
	for i := range reports {
		var items []audit.Item
		for c := range 50 {
			items = append(items, item("a", fmt.Sprintf("web-%d-%d", i, c), "app", preflight.VerdictNotPullable))
		}
		reports[i] = audit.Build(time.Now(), items)
	}
	rec.ObserveAudit(reports[0], time.Second)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				rec.ObserveAudit(reports[i%2], time.Second)
			}
		}
	})
	for range 200 {
		if n := countSeries(t, reg, metrics.AuditVerdictMetric); n != 50 {
			t.Errorf("a scrape saw %d verdict series, want 50", n)
			break
		}
	}
	close(stop)
	wg.Wait()
}
