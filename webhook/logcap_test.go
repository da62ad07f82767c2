package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/go-logr/logr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/loopback"
)

// logBuffer collects JSON log lines from any goroutine.
type logBuffer struct{ loopback.Buffer }

// slog is a debug-level logger writing to l; logr is the same for the
// webhook, at V(1).
func (l *logBuffer) slog() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logBuffer) context(ctx context.Context) context.Context {
	return logf.IntoContext(ctx, logr.FromSlogHandler(l.slog().Handler()))
}

// fakeAWSEngine is the real engine over fake AWS: the seed's repository
// with image 1.2.1 and no policy, the node role with the read-only policy.
// It logs to log.
func fakeAWSEngine(tb testing.TB, log *slog.Logger) (*preflight.Engine, *fake.ECR) {
	tb.Helper()
	ecrFake := &fake.ECR{Repositories: map[string]*fake.Repository{
		"retail-sample-app-ui": {Images: []types.ImageDetail{fake.Image("sha256:"+strings.Repeat("1", 64), "1.2.1")}},
	}}
	iamFake := &fake.IAM{
		Roles: map[string]*fake.Role{"EksNodeGroupRole": {ARN: nodeRole, Attached: []string{"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"}}},
		Policies: map[string]*fake.ManagedPolicy{"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly": {
			Name: "AmazonEC2ContainerRegistryReadOnly", DefaultVersion: "v1", Versions: map[string]string{"v1": benchReadOnly}}},
	}
	clients := &fake.Clients{ECRClient: ecrFake, IAMClient: iamFake, STSClient: &fake.STS{Account: "1234567890"}}
	e, err := preflight.New(preflight.Options{Lookups: awsclient.NewLookups(clients, awsclient.Options{}), Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	return e, ecrFake
}

// maxLogLine bounds one log line in the test below: 33 findings of four
// capped fields each, JSON-escaped, with room to spare.
const maxLogLine = 256 << 10

// TestLogsStayBounded admits objects built to blow up the logs: a 1 MiB
// image string, hundreds of containers, findings with megabyte messages.
// Whatever the path (a timed-out check, warnings, a dry run, a denial),
// no log line grows with them, and each says what it left out.
func TestLogsStayBounded(t *testing.T) {
	huge := "1234567890.dkr.ecr.us-west-2.amazonaws.com/" + strings.Repeat("a", 1<<20)
	many := []string{huge}
	for i := range 300 {
		many = append(many, fmt.Sprintf("1234567890.dkr.ecr.us-west-2.amazonaws.com/app-%d:%s", i, strings.Repeat("t", 100)))
	}
	hugeFinding := map[string]preflight.Result{huge: {Image: huge, Verdict: preflight.VerdictUnknown, Findings: []preflight.Finding{{
		Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning, Statement: strings.Repeat("s", 1<<20),
		Message: strings.Repeat("m", 1<<20), Fix: strings.Repeat("f", 1<<20),
	}}}}
	for _, img := range many[1:] {
		hugeFinding[img] = preflight.Result{Image: img, Verdict: preflight.VerdictUnknown, Findings: []preflight.Finding{{
			Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning, Message: "could not verify in time"}}}
	}
	tests := map[string]struct {
		opts func(o *Options, logs *logBuffer, release chan struct{})
		// want is a log message that must appear, with a capped value.
		want string
	}{
		"a check that times out logs its images": {
			opts: func(o *Options, _ *logBuffer, release chan struct{}) {
				o.Checker = &fakeChecker{block: release}
				o.Timeout = 50 * time.Millisecond
				o.MaxImages = len(many)
			},
			want: `"msg":"checking images"`,
		},
		"warnings log every finding, capped": {
			opts: func(o *Options, _ *logBuffer, _ chan struct{}) {
				o.Checker = &fakeChecker{results: hugeFinding}
				o.MaxImages = len(many)
			},
			want: `"msg":"allowed with warnings"`,
		},
		"a dry run logs what it would have done, capped": {
			opts: func(o *Options, _ *logBuffer, _ chan struct{}) {
				o.Checker = &fakeChecker{results: hugeFinding}
				o.Mode = ModeDryRun
				o.MaxImages = len(many)
			},
			want: `"msg":"dry run: would have acted"`,
		},
		"a denial of the real engine logs its reason, capped": {
			opts: func(o *Options, logs *logBuffer, _ chan struct{}) {
				o.Checker, _ = fakeAWSEngine(t, logs.slog())
				o.Mode = ModeDeny
				o.MaxImages = len(many)
			},
			want: `"msg":"denied"`,
		},
		"an allowed object logs its images, capped": {
			opts: func(o *Options, _ *logBuffer, _ chan struct{}) {
				o.Checker = &fakeChecker{}
				o.MaxImages = len(many)
			},
			want: `"msg":"allowed"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			logs := &logBuffer{}
			release := make(chan struct{})
			defer close(release)
			o := Options{Pools: StaticRoles{nodeRole}}
			tc.opts(&o, logs, release)
			a, err := newAdmitter(o)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = deploymentValidator(a).ValidateCreate(logs.context(context.Background()), deployment("ui-private", many...))
			// A timed-out check may log just after the admission answered.
			out := logs.String()
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out, tc.want) && time.Now().Before(deadline); out = logs.String() {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("no log line has %s:\n%.2000s", tc.want, out)
			}
			for line := range strings.Lines(out) {
				if len(line) > maxLogLine {
					t.Errorf("a log line of %d bytes: %.300s", len(line), line)
				}
				if strings.Contains(line, tc.want) && !strings.Contains(line, "…[+") {
					t.Errorf("the %s line does not say what it cut: %.300s", tc.want, line)
				}
			}
		})
	}
}

func TestFindingsForLog(t *testing.T) {
	long := strings.Repeat("x", 5000)
	var results []preflight.Result
	for i := range 40 {
		results = append(results, preflight.Result{Image: fmt.Sprintf("img-%d", i), Findings: []preflight.Finding{
			{Code: preflight.CodeSkipped, Severity: preflight.SeverityInfo, Message: "not logged"},
			{Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning, Message: "could not verify\nin time", Statement: long, Fix: "retry"},
		}})
	}
	got := findingsForLog(results)
	if len(got) != 33 || got[32] != "…[+8 more findings]" {
		t.Fatalf("%d lines, last %q; want 32 findings and a count of the rest", len(got), got[len(got)-1])
	}
	if want := `img-0: LookupFailed: could not verify in time (statement "` + strings.Repeat("x", 1024) + `…[+3976 bytes]"). Fix: retry`; got[0] != want {
		t.Errorf("first line %.200q, want %.200q", got[0], want)
	}
	if got := findingsForLog(results[:1]); len(got) != 1 || strings.Contains(got[0], "not logged") {
		t.Errorf("info findings are not logged: %q", got)
	}
}
