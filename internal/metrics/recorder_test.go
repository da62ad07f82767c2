package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/metrics"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// The Recorder serves both layers; these fail to compile if either
// interface drifts from its method names.
var (
	_ awsclient.Observer = (*metrics.Recorder)(nil)
	_ webhook.Metrics    = (*metrics.Recorder)(nil)
)

func TestRecorder(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := metrics.NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	r.ObserveAdmission("Deployment", "CREATE", "deny", "deny", 3*time.Millisecond)
	r.ObserveAdmission("Deployment", "CREATE", "deny", "deny", time.Millisecond)
	r.ObserveFinding("RepositoryPolicyDenies")
	r.ObserveCall("DescribeImages", "ok", 40*time.Millisecond)
	r.CacheHit("image")
	r.CacheMiss("image")
	r.CacheMiss("image")

	// A second recorder on the same registry shares the collectors.
	again, err := metrics.NewRecorder(reg)
	if err != nil {
		t.Fatalf("registering twice: %v", err)
	}
	again.CacheHit("image")

	got := gather(t, reg)
	want := map[string]float64{
		`ecr_preflight_admissions_total{decision=deny,kind=Deployment,mode=deny,operation=CREATE}`: 2,
		`ecr_preflight_admission_duration_seconds{kind=Deployment}`:                                2, // sample count
		`ecr_preflight_findings_total{code=RepositoryPolicyDenies}`:                                1,
		`ecr_preflight_aws_calls_total{operation=DescribeImages,outcome=ok}`:                       1,
		`ecr_preflight_aws_call_duration_seconds{operation=DescribeImages}`:                        1,
		`ecr_preflight_cache_requests_total{kind=image,result=hit}`:                                2,
		`ecr_preflight_cache_requests_total{kind=image,result=miss}`:                               2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series: %v", got)
	}
}

// gather flattens reg into "name{label=value,...}" → value (histograms:
// their sample count).
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName() + "{"
			for i, l := range m.GetLabel() {
				if i > 0 {
					key += ","
				}
				key += l.GetName() + "=" + l.GetValue()
			}
			key += "}"
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

func TestRecorderConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	// A different collector under one of our names must be an error, not
	// a silent share.
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "ecr_preflight_findings_total", Help: "x"}))
	if _, err := metrics.NewRecorder(reg); err == nil {
		t.Error("want an error for a conflicting collector")
	}
}
