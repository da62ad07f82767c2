package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Recorder records ecr-preflight's metrics. The zero value is not usable;
// build one with NewRecorder.
type Recorder struct {
	admissions        *prometheus.CounterVec
	admissionDuration *prometheus.HistogramVec
	findings          *prometheus.CounterVec
	unverified        *prometheus.CounterVec
	awsCalls          *prometheus.CounterVec
	awsCallDuration   *prometheus.HistogramVec
	cacheRequests     *prometheus.CounterVec
}

// admissionBuckets spans the admission budget: sub-millisecond cached
// answers up to the 2s default timeout and a little beyond.
var admissionBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5}

// awsBuckets spans one AWS API call, including a throttled retry.
var awsBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewRecorder registers the metrics with reg (normally controller-runtime's
// metrics.Registry, which the manager serves on /metrics). Registering
// twice with the same registry reuses the collectors already there, so
// several servers in one process (tests) share them.
func NewRecorder(reg prometheus.Registerer) (*Recorder, error) {
	r := &Recorder{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecr_preflight_admissions_total",
			Help: "Admission requests answered, by kind, operation, effective mode and decision (allow, warn, deny, skip, would-warn, would-deny).",
		}, []string{"kind", "operation", "mode", "decision"}),
		admissionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ecr_preflight_admission_duration_seconds",
			Help:    "Time to answer one admission request, lookups included.",
			Buckets: admissionBuckets,
		}, []string{"kind"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecr_preflight_findings_total",
			Help: "Findings reported by the preflight engine during admission, by finding code.",
		}, []string{"code"}),
		unverified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecr_preflight_admissions_unverified_total",
			Help: "Admissions allowed without a verdict for some image, by reason: overload (no concurrency slot), timeout (the budget ran out), error (a failure of our own), too_many_images (beyond --max-images-per-object).",
		}, []string{"reason"}),
		awsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecr_preflight_aws_calls_total",
			Help: "AWS API calls made, by operation and outcome.",
		}, []string{"operation", "outcome"}),
		awsCallDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ecr_preflight_aws_call_duration_seconds",
			Help:    "Duration of AWS API calls, retries included, by operation.",
			Buckets: awsBuckets,
		}, []string{"operation"}),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecr_preflight_cache_requests_total",
			Help: "Lookups in the AWS response cache, by kind of entry and result (hit or miss).",
		}, []string{"kind", "result"}),
	}
	var err error
	r.admissions, err = register(reg, r.admissions)
	if err == nil {
		r.admissionDuration, err = register(reg, r.admissionDuration)
	}
	if err == nil {
		r.findings, err = register(reg, r.findings)
	}
	if err == nil {
		r.unverified, err = register(reg, r.unverified)
	}
	if err == nil {
		r.awsCalls, err = register(reg, r.awsCalls)
	}
	if err == nil {
		r.awsCallDuration, err = register(reg, r.awsCallDuration)
	}
	if err == nil {
		r.cacheRequests, err = register(reg, r.cacheRequests)
	}
	if err != nil {
		return nil, fmt.Errorf("registering ecr-preflight metrics: %w", err)
	}
	return r, nil
}

// register registers c, or returns the equal collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// ObserveAdmission records one answered admission request.
func (r *Recorder) ObserveAdmission(kind, operation, mode, decision string, d time.Duration) {
	r.admissions.WithLabelValues(kind, operation, mode, decision).Inc()
	r.admissionDuration.WithLabelValues(kind).Observe(d.Seconds())
}

// ObserveFinding records one finding of the engine.
func (r *Recorder) ObserveFinding(code string) {
	r.findings.WithLabelValues(code).Inc()
}

// ObserveUnverified records an admission that let images through without
// a verdict, and why.
func (r *Recorder) ObserveUnverified(reason string) {
	r.unverified.WithLabelValues(reason).Inc()
}

// ObserveCall records one AWS API call: outcome is a small fixed set
// chosen by the AWS layer (e.g. success, throttled, denied, error).
func (r *Recorder) ObserveCall(operation, outcome string, d time.Duration) {
	r.awsCalls.WithLabelValues(operation, outcome).Inc()
	r.awsCallDuration.WithLabelValues(operation).Observe(d.Seconds())
}

// CacheHit records a lookup answered from the cache.
func (r *Recorder) CacheHit(kind string) {
	r.cacheRequests.WithLabelValues(kind, "hit").Inc()
}

// CacheMiss records a lookup that had to go to AWS.
func (r *Recorder) CacheMiss(kind string) {
	r.cacheRequests.WithLabelValues(kind, "miss").Inc()
}
