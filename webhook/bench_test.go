package webhook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ecr-preflight/ecr-preflight/certs/certstest"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
	"github.com/ecr-preflight/ecr-preflight/internal/metrics"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

const benchReadOnly = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage"],"Resource":"*"}]}`

// warmEngine is the real preflight engine over fake AWS that has the three
// images and a node role with the read-only policy, with every answer
// already cached. It returns the engine and a count of AWS calls.
func warmEngine(tb testing.TB) (*preflight.Engine, func() int) {
	tb.Helper()
	img := func(d string) []types.ImageDetail { return []types.ImageDetail{fake.Image(d, "1.2.1")} }
	ecrFake := &fake.ECR{Repositories: map[string]*fake.Repository{
		"retail-sample-app-ui":      {Images: img("sha256:" + strings.Repeat("1", 64))},
		"retail-sample-app-catalog": {Images: img("sha256:" + strings.Repeat("2", 64))},
		"retail-sample-app-cart":    {Images: img("sha256:" + strings.Repeat("3", 64))},
	}}
	iamFake := &fake.IAM{
		Roles: map[string]*fake.Role{"EksNodeGroupRole": {ARN: nodeRole, Attached: []string{"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"}}},
		Policies: map[string]*fake.ManagedPolicy{"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly": {
			Name: "AmazonEC2ContainerRegistryReadOnly", DefaultVersion: "v1", Versions: map[string]string{"v1": benchReadOnly}}},
	}
	stsFake := &fake.STS{Account: "1234567890"}
	clients := &fake.Clients{ECRClient: ecrFake, IAMClient: iamFake, STSClient: stsFake}
	e, err := preflight.New(preflight.Options{Lookups: awsclient.NewLookups(clients, awsclient.Options{})})
	if err != nil {
		tb.Fatal(err)
	}
	images := []string{uiImage, okImage, vpcImage}
	for _, r := range e.Check(context.Background(), images, []string{nodeRole}) {
		if r.Verdict != preflight.VerdictPullable {
			tb.Fatalf("%s: %s %+v", r.Image, r.Verdict, r.Findings)
		}
	}
	return e, func() int { return ecrFake.TotalCalls() + iamFake.TotalCalls() + stsFake.TotalCalls() }
}

// The warm-admission benchmark compares four servers answering the same
// review of a three-image Deployment over keep-alive loopback TLS, four
// requests at a time (the API server calls a webhook concurrently):
//
//   - floor: the least a Go admission webhook does when it decodes as the
//     API machinery does. A bare net/http TLS server (same kind of
//     certificate, same TLS and HTTP server settings as controller-runtime's)
//     reads the body, decodes the AdmissionReview and its Deployment with
//     apimachinery's universal deserializer (the decoder controller-runtime
//     uses, which reads objects by the API's JSON rules: case-sensitive
//     field names, apiVersion and kind recognized) and writes an allowed
//     answer. The target is measured against this floor.
//   - floor-json: the same server decoding with encoding/json, the
//     cheapest decoding in Go. The universal deserializer scans each
//     document twice (once for its kind, once into the object), so this
//     floor is lower; it is shown, not targeted: coming near it would mean
//     replacing controller-runtime's admission handling, whose decoding
//     every typed validator goes through.
//   - noop: a controller-runtime typed validator that allows everything,
//     on the same server as ecr-preflight.
//   - ecr-preflight: the real validators and engine, every answer cached.
//
// The servers run in a child process (this test binary again, running
// TestBenchServer), so the CPU a request costs the server is measured apart
// from the client's; latency is what the client sees. The child installs
// the logger the serve command does (JSON through slog, info level, here
// into io.Discard) and the Prometheus recorder it uses, so what is
// measured is what a deployed replica pays.
const (
	benchConcurrency = 4
	// floorRatio is the target: warm ecr-preflight's p50 within this
	// factor of the floor's (median of paired, alternating rounds).
	floorRatio = 1.3
	// benchServerEnv makes TestBenchServer serve instead of skipping.
	benchServerEnv = "ECR_PREFLIGHT_BENCH_SERVER"
	// benchProfileEnv names the file the server process writes its CPU
	// profile to: with -cpuprofile FILE, the benchmark asks for
	// FILE.server, since FILE itself only shows the client.
	benchProfileEnv = "ECR_PREFLIGHT_BENCH_SERVER_CPUPROFILE"
	// benchReady prefixes the line on which the child names its URLs.
	benchReady = "bench-server-ready "
)

// benchURLs is what the child serves where.
type benchURLs struct {
	Floor, Noop, ECRPreflight string
	// Stats answers benchStats as JSON, over plain HTTP.
	Stats string
}

// benchStats is the child's own account of itself.
type benchStats struct {
	// CPU is the process's user+system CPU time so far, in nanoseconds.
	CPU int64
	// Mallocs counts heap allocations so far.
	Mallocs uint64
	// AWSCalls counts calls to the fake AWS since the engine was warmed.
	AWSCalls int
}

// TestBenchServer is BenchmarkAdmission's server process; run on its own
// it skips.
func TestBenchServer(t *testing.T) {
	if os.Getenv(benchServerEnv) == "" {
		t.Skip("the server process of BenchmarkAdmission")
	}
	h := slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})
	logf.SetLogger(logr.FromSlogHandler(h))
	engine, awsCalls := warmEngine(t)
	warmed := awsCalls()
	rec, err := metrics.NewRecorder(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, Options{Checker: engine, Pools: StaticRoles{nodeRole}, Metrics: rec})
	stats := serveLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		_ = json.NewEncoder(w).Encode(benchStats{CPU: cpuTime().Nanoseconds(), Mallocs: ms.Mallocs, AWSCalls: awsCalls() - warmed})
	}))
	urls := benchURLs{
		Floor:        startFloor(t),
		Noop:         s.url + noopPath,
		ECRPreflight: s.url + "/validate-apps-v1-deployment",
		Stats:        stats,
	}
	line, err := json.Marshal(urls)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", benchReady, line)
	if path := os.Getenv(benchProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	// Serve until the benchmark closes stdin.
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// serveLoopback serves h over plain HTTP on loopback and returns its URL.
func serveLoopback(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// floorHandler is the floor's whole admission logic.
type floorHandler struct {
	decode func(data []byte, into k8sruntime.Object) error
}

// apiFloor decodes with the API machinery's universal deserializer.
func apiFloor(tb testing.TB) floorHandler {
	scheme := k8sruntime.NewScheme()
	if err := admissionv1.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	if err := appsv1.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	return floorHandler{decode: func(data []byte, into k8sruntime.Object) error {
		_, _, err := decoder.Decode(data, nil, into)
		return err
	}}
}

// jsonFloor decodes with encoding/json.
func jsonFloor() floorHandler {
	return floorHandler{decode: func(data []byte, into k8sruntime.Object) error { return json.Unmarshal(data, into) }}
}

func (h floorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) { http.Error(w, err.Error(), http.StatusBadRequest) }
	body, err := io.ReadAll(io.LimitReader(r.Body, 7<<20))
	if err != nil {
		fail(err)
		return
	}
	var ar admissionv1.AdmissionReview
	if err := h.decode(body, &ar); err != nil {
		fail(err)
		return
	}
	if ar.Request == nil {
		fail(errors.New("no request"))
		return
	}
	var d appsv1.Deployment
	if err := h.decode(ar.Request.Object.Raw, &d); err != nil {
		fail(err)
		return
	}
	out := admissionv1.AdmissionReview{TypeMeta: ar.TypeMeta, Response: &admissionv1.AdmissionResponse{UID: ar.Request.UID, Allowed: true}}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// startFloor serves the floor on loopback TLS with a certificate written
// as startServer writes its own, with the TLS and HTTP settings of
// controller-runtime's server. It returns the floor's URL.
func startFloor(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := certstest.Write(dir, "ecr-preflight-floor"); err != nil {
		tb.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{NextProtos: []string{"h2"}, Certificates: []tls.Certificate{cert}})
	if err != nil {
		tb.Fatal(err)
	}
	// The settings controller-runtime's webhook server uses.
	mux := http.NewServeMux()
	mux.Handle("/", apiFloor(tb))
	mux.Handle("/encoding-json", jsonFloor())
	srv := &http.Server{Handler: mux, MaxHeaderBytes: 1 << 20, IdleTimeout: 90 * time.Second, ReadHeaderTimeout: 32 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String() + "/"
}

// benchServer is the child process, seen from the benchmark.
type benchServer struct {
	urls   benchURLs
	client *http.Client
}

// startBenchServer runs TestBenchServer in a child process and waits until
// it serves.
func startBenchServer(b *testing.B) *benchServer {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestBenchServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchServerEnv+"=1")
	if f := flag.Lookup("test.cpuprofile"); f != nil && f.Value.String() != "" {
		path := f.Value.String()
		if dir := flag.Lookup("test.outputdir"); dir != nil && dir.Value.String() != "" && !filepath.IsAbs(path) {
			path = filepath.Join(dir.Value.String(), path)
		}
		cmd.Env = append(cmd.Env, benchProfileEnv+"="+path+".server")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	var urls benchURLs
	var said []string
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), benchReady); ok {
			if err := json.Unmarshal([]byte(rest), &urls); err != nil {
				b.Fatal(err)
			}
			break
		}
		said = append(said, lines.Text())
	}
	if urls.Stats == "" {
		b.Fatalf("the server process never said it was ready (%v):\n%s", lines.Err(), strings.Join(said, "\n"))
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	// Self-signed for the test: trust is not what is under test here.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchServer{urls: urls, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (s *benchServer) stats(tb testing.TB) benchStats {
	tb.Helper()
	resp, err := http.Get(s.urls.Stats)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var st benchStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		tb.Fatal(err)
	}
	return st
}

// variant is one server the benchmark drives.
type variant struct {
	name string
	url  string
}

// sample is what one run of n requests measured.
type sample struct {
	p50, p99 time.Duration
	// cpu is the server process's user+system CPU per request.
	cpu time.Duration
	// clientCPU is the same for this process, the client.
	clientCPU time.Duration
	// allocs is the server process's heap allocations per request.
	allocs float64
}

// drive sends n requests to v, c at a time, and measures them.
func (s *benchServer) drive(tb testing.TB, v variant, body []byte, n, c int) sample {
	tb.Helper()
	timings := make([]time.Duration, n)
	jobs := make(chan int, n)
	for i := range n {
		jobs <- i
	}
	close(jobs)
	var errOnce sync.Once
	var firstErr error
	var workers sync.WaitGroup
	before, clientBefore := s.stats(tb), cpuTime()
	for range c {
		workers.Go(func() {
			for i := range jobs {
				start := time.Now()
				if err := s.hit(v, body); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				timings[i] = time.Since(start)
			}
		})
	}
	workers.Wait()
	clientCPU := cpuTime() - clientBefore
	after := s.stats(tb)
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
	slices.Sort(timings)
	return sample{
		p50:       percentile(timings, 0.50),
		p99:       percentile(timings, 0.99),
		cpu:       time.Duration((after.CPU - before.CPU) / int64(n)),
		clientCPU: clientCPU / time.Duration(n),
		allocs:    float64(after.Mallocs-before.Mallocs) / float64(n),
	}
}

// hit posts body to v and checks for an allowed answer. It reads the
// answer but does not decode it: the client's work is the same for every
// variant and only dilutes the comparison.
func (s *benchServer) hit(v variant, body []byte) error {
	resp, err := s.client.Post(v.url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"allowed":true`)) {
		return fmt.Errorf("%s: HTTP %d: %s", v.name, resp.StatusCode, b)
	}
	return nil
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// BenchmarkAdmission measures one warm admission of a three-image
// Deployment through a real HTTPS server (keep-alive loopback, four at a
// time) for the floors, the no-op controller-runtime validator and
// ecr-preflight (see benchConcurrency), each on its own, then all of them
// alternating (vs-floor), which is where the target is checked:
// ecr-preflight's p50 within floorRatio of the floor's. server-cpu and
// server-allocs are the server process's, per request; -benchmem's B/op
// and allocs/op are the client's. The benchmark also fails if any warm
// admission reaches AWS.
func BenchmarkAdmission(b *testing.B) {
	s := startBenchServer(b)
	body := review(b, admissionv1.Create, deployment("ui-private", uiImage, okImage, vpcImage), nil)
	variants := []variant{
		{name: "floor", url: s.urls.Floor},
		{name: "floor-json", url: s.urls.Floor + "encoding-json"},
		{name: "noop", url: s.urls.Noop},
		{name: "ecr-preflight", url: s.urls.ECRPreflight},
	}
	for _, v := range variants {
		// Open the keep-alive connections and warm both processes up
		// before anything is timed.
		s.drive(b, v, body, 200, benchConcurrency)
	}
	defer func() {
		if n := s.stats(b).AWSCalls; n != 0 {
			b.Errorf("warm admissions made %d AWS calls, want 0", n)
		}
	}()
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			got := s.drive(b, v, body, b.N, benchConcurrency)
			b.ReportMetric(micros(got.p50), "p50-µs")
			b.ReportMetric(micros(got.p99), "p99-µs")
			b.ReportMetric(micros(got.cpu), "server-cpu-µs/req")
			b.ReportMetric(micros(got.clientCPU), "client-cpu-µs/req")
			b.ReportMetric(got.allocs, "server-allocs/req")
		})
	}
	b.Run("vs-floor", func(b *testing.B) { s.compareToFloor(b, variants, body) })
}

// compareToFloor runs the variants in alternating blocks, the order
// rotating every round, so that whatever else the machine is doing falls
// on all of them alike; each ratio to the floor is taken within a round,
// and the median over the rounds is reported and checked.
func (s *benchServer) compareToFloor(b *testing.B, variants []variant, body []byte) {
	const rounds = 15
	block := max(b.N/rounds, 400)
	samples := make([][]sample, len(variants))
	for r := range rounds {
		for k := range variants {
			i := (r + k) % len(variants)
			samples[i] = append(samples[i], s.drive(b, variants[i], body, block, benchConcurrency))
		}
	}
	// medians are the median over rounds of the variant's figure, and of
	// its ratio to the floor's in the same round.
	medians := func(i int, f func(sample) float64) (value, ratio float64) {
		vs, rs := make([]float64, rounds), make([]float64, rounds)
		for r := range rounds {
			vs[r] = f(samples[i][r])
			rs[r] = vs[r] / f(samples[0][r])
		}
		return median(vs), median(rs)
	}
	p50 := func(s sample) float64 { return micros(s.p50) }
	p99 := func(s sample) float64 { return micros(s.p99) }
	cpu := func(s sample) float64 { return micros(s.cpu) }
	clientCPU := func(s sample) float64 { return micros(s.clientCPU) }
	var ecrP50 float64
	for i, v := range variants {
		p50v, p50x := medians(i, p50)
		p99v, p99x := medians(i, p99)
		cpuv, cpux := medians(i, cpu)
		client, _ := medians(i, clientCPU)
		b.Logf("%-13s p50 %5.0f µs (%.2fx)  p99 %6.0f µs (%.2fx)  server CPU %4.0f µs/req (%.2fx)  client CPU %4.0f µs/req",
			v.name, p50v, p50x, p99v, p99x, cpuv, cpux, client)
		b.ReportMetric(p50v, v.name+"-p50-µs")
		b.ReportMetric(p99v, v.name+"-p99-µs")
		b.ReportMetric(cpuv, v.name+"-cpu-µs/req")
		if i > 0 {
			b.ReportMetric(p50x, v.name+"-p50-x")
			b.ReportMetric(p99x, v.name+"-p99-x")
			b.ReportMetric(cpux, v.name+"-cpu-x")
		}
		if v.name == "ecr-preflight" {
			ecrP50 = p50x
		}
	}
	if ecrP50 > floorRatio {
		b.Errorf("warm ecr-preflight p50 is %.2fx the floor's (median of %d alternating rounds of %d requests), want at most %.1fx",
			ecrP50, rounds, block, floorRatio)
	}
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
