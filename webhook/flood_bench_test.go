package webhook

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// silentEndpoint accepts connections on loopback and never answers: AWS
// that hangs. It holds the connections without a goroutine per connection,
// so the goroutine count measures only the code under test.
func silentEndpoint(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// rssBytes reads the process's resident set size from /proc (Linux).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkFloodOfNewImages is the adversarial tenant of issue 14: 64
// Deployments at once, each with 500 containers in repositories never seen
// before, against an AWS endpoint that never answers. Targets: every
// answer within the budget + 100ms, peak RSS under 250 MB, and goroutines
// back to the baseline within the AWS call timeout after the answers.
func BenchmarkFloodOfNewImages(b *testing.B) {
	const (
		objects     = 64
		containers  = 500
		budget      = 2 * time.Second
		callTimeout = 2 * time.Second
	)
	cfg := aws.Config{
		Region:           "us-west-2",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDFLOOD", "secret", ""),
		BaseEndpoint:     aws.String(silentEndpoint(b)),
		RetryMaxAttempts: 1,
	}
	factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	engine, err := preflight.New(preflight.Options{Lookups: awsclient.NewLookups(factory, awsclient.Options{CallTimeout: callTimeout})})
	if err != nil {
		b.Fatal(err)
	}
	a, err := newAdmitter(Options{Checker: engine, Pools: StaticRoles{nodeRole}, Mode: ModeDeny, Timeout: budget})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	baseline := runtime.NumGoroutine()
	for round := 0; b.Loop(); round++ {
		var peak int64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				peak = max(peak, rssBytes())
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		latencies := make([]time.Duration, objects)
		var wg sync.WaitGroup
		for o := range objects {
			images := make([]string, containers)
			for i := range images {
				images[i] = fmt.Sprintf("1234567890.dkr.ecr.us-west-2.amazonaws.com/flood-%d-%d-%d:1", round, o, i)
			}
			d := deployment(fmt.Sprintf("flood-%d", o), images...)
			wg.Go(func() {
				start := time.Now()
				_, _ = deploymentValidator(a).ValidateCreate(b.Context(), d)
				latencies[o] = time.Since(start)
			})
		}
		wg.Wait()
		slowest := slicesMax(latencies)
		// Work the answers left behind must end within the call timeout.
		// The SDK's HTTP transport keeps up to 10 idle connections per host
		// (two goroutines each) from dials that finished after their call
		// gave up: a fixed pool, not work.
		const idlePool = 2*10 + 1
		deadline := time.Now().Add(callTimeout + 500*time.Millisecond)
		for runtime.NumGoroutine() > baseline+idlePool && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		left := runtime.NumGoroutine() - baseline
		close(stop)
		<-sampled
		b.ReportMetric(slowest.Seconds(), "slowest-answer-s")
		b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MB")
		b.ReportMetric(float64(left), "goroutines-left")
		if slowest > budget+100*time.Millisecond {
			b.Errorf("slowest answer %s, want within the budget %s + 100ms", slowest, budget)
		}
		if peak > 250<<20 {
			b.Errorf("peak RSS %d MB, want under 250 MB", peak>>20)
		}
		if left > idlePool && os.Getenv("FLOOD_DEBUG") != "" {
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		}
		if left > idlePool {
			b.Errorf("%d goroutines above the baseline %s after the answers, want none", left, callTimeout+500*time.Millisecond)
		}
	}
}

func slicesMax(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
