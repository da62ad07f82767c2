package webhook

import (
	"slices"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// BenchmarkAdmission measures one admission through the real HTTPS server
// (keep-alive loopback, as the API server calls it): ecr-preflight with an
// instant Checker, against a controller-runtime validator that does
// nothing. The difference is the webhook's own cost; AWS lookups come on
// top and are the cache's business.
func BenchmarkAdmission(b *testing.B) {
	s := startServer(b, Options{Checker: &fakeChecker{results: seedResults}, Roles: StaticRoles{nodeRole}})
	body := review(b, admissionv1.Create, deployment("ui-private", uiImage, okImage, vpcImage), nil)
	for name, path := range map[string]string{"ecr-preflight": "/validate-apps-v1-deployment", "noop": noopPath} {
		b.Run(name, func(b *testing.B) {
			s.post(b, path, body) // warm the connection
			timings := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				s.post(b, path, body)
				timings = append(timings, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, timings)
		})
	}
}

func reportPercentiles(b *testing.B, timings []time.Duration) {
	if len(timings) == 0 {
		return
	}
	slices.Sort(timings)
	at := func(p float64) float64 {
		return float64(timings[int(p*float64(len(timings)-1))].Microseconds())
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
