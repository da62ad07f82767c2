package metrics

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecr-preflight/ecr-preflight/internal/audit"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// The continuous audit's metrics. Like k8s-image-availability-exporter's,
// the per-container gauges have one series per state, valued 1, and
// alerts match on a label (verdict="not-pullable", code="ImageExpiring").
// The chart's PrometheusRule and dashboard use exactly these names and
// labels: never rename one.
//
//	ecr_preflight_workload_image_verdict{namespace,kind,name,container,image,verdict} 1
//	    one series per container of the last audit; verdict is pullable,
//	    not-pullable, partly-pullable, unknown or skipped.
//	ecr_preflight_workload_image_finding{namespace,kind,name,container,image,code,severity} 1
//	    one series per finding that is a warning or an error (code is the
//	    finding code, e.g. RepositoryPolicyDenies, ImageExpiring).
//	ecr_preflight_audit_last_completion_timestamp_seconds
//	    when the last audit finished (Unix seconds).
//	ecr_preflight_audit_duration_seconds
//	    how long the last audit took.
//	ecr_preflight_audit_workloads
//	    how many workloads the last audit checked.
//
// Each audit replaces the whole set, so the series of a workload that
// recovered or was deleted disappear. Until a replica has audited once (and
// so on every replica that is not the leader) none of these series exist:
// an alert on a stale audit must use max() across replicas, or absent().
const (
	AuditVerdictMetric        = "ecr_preflight_workload_image_verdict"
	AuditFindingMetric        = "ecr_preflight_workload_image_finding"
	AuditLastCompletionMetric = "ecr_preflight_audit_last_completion_timestamp_seconds"
	AuditDurationMetric       = "ecr_preflight_audit_duration_seconds"
	AuditWorkloadsMetric      = "ecr_preflight_audit_workloads"
)

// AuditRecorder exports the continuous audit's reports as the metrics
// above; it implements audit.AuditMetrics. Build one with
// NewAuditRecorder.
type AuditRecorder struct {
	s *auditSeries
}

var _ audit.AuditMetrics = (*AuditRecorder)(nil)

// NewAuditRecorder registers the audit metrics with reg (normally
// controller-runtime's metrics.Registry). Registering twice with the same
// registry shares the collector already there; a different collector
// under one of the names is an error.
func NewAuditRecorder(reg prometheus.Registerer) (*AuditRecorder, error) {
	workload := []string{"namespace", "kind", "name", "container", "image"}
	s := &auditSeries{
		verdicts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: AuditVerdictMetric,
			Help: "1 for each container of the last audit, labelled with its image's verdict (pullable, not-pullable, partly-pullable, unknown, skipped).",
		}, slices.Concat(workload, []string{"verdict"})),
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: AuditFindingMetric,
			Help: "1 for each warning or error finding of the last audit, by container, image, finding code and severity.",
		}, slices.Concat(workload, []string{"code", "severity"})),
		completion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: AuditLastCompletionMetric,
			Help: "When the last audit finished, in Unix seconds.",
		}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: AuditDurationMetric,
			Help: "How long the last audit took to list the workloads and check their images, in seconds.",
		}),
		workloads: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: AuditWorkloadsMetric,
			Help: "How many workloads the last audit checked.",
		}),
	}
	s, err := register(reg, s)
	if err != nil {
		return nil, fmt.Errorf("registering ecr-preflight audit metrics: %w", err)
	}
	return &AuditRecorder{s: s}, nil
}

// ObserveAudit replaces every series with those of r, which took took.
func (a *AuditRecorder) ObserveAudit(r audit.Report, took time.Duration) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verdicts.Reset()
	s.findings.Reset()
	for _, it := range r.Items {
		w := it.Workload
		s.verdicts.WithLabelValues(w.Namespace, w.Kind, w.Name, it.Container, it.Image, string(it.Verdict)).Set(1)
		for _, f := range it.Findings {
			if f.Severity == preflight.SeverityInfo {
				continue
			}
			s.findings.WithLabelValues(w.Namespace, w.Kind, w.Name, it.Container, it.Image, string(f.Code), string(f.Severity)).Set(1)
		}
	}
	s.completion.Set(float64(r.GeneratedAt.UnixNano()) / float64(time.Second))
	s.duration.Set(took.Seconds())
	s.workloads.Set(float64(r.Summary.Workloads))
	s.observed = true
}

// auditSeries is the audit metrics as one collector, so that a scrape
// never sees a set half replaced: with the vectors registered on their
// own, a scrape between Reset and the new values would miss series, and
// an alert waiting out its `for` would start again.
type auditSeries struct {
	mu                              sync.RWMutex // guards all below against Collect
	verdicts, findings              *prometheus.GaugeVec
	completion, duration, workloads prometheus.Gauge
	// observed: an audit has finished; until then only the (empty)
	// vectors are collected.
	observed bool
}

// Describe sends the descriptors of every audit metric.
func (s *auditSeries) Describe(ch chan<- *prometheus.Desc) {
	s.verdicts.Describe(ch)
	s.findings.Describe(ch)
	s.completion.Describe(ch)
	s.duration.Describe(ch)
	s.workloads.Describe(ch)
}

// Collect sends the last audit's series.
func (s *auditSeries) Collect(ch chan<- prometheus.Metric) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.verdicts.Collect(ch)
	s.findings.Collect(ch)
	if s.observed {
		s.completion.Collect(ch)
		s.duration.Collect(ch)
		s.workloads.Collect(ch)
	}
}
