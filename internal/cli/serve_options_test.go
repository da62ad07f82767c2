package cli

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/webhook"
)

func TestServeOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string // substring; "" means valid
	}{
		"defaults with one node role are valid":       {args: []string{"--node-role-arn", "arn:aws:iam::123456789012:role/EksNodeGroupRole"}},
		"a role ARN with a path in another partition": {args: []string{"--node-role-arn", "arn:aws-cn:iam::123456789012:role/eks/nodes/NodeRole"}},
		"standalone with every flag": {args: []string{"--standalone", "--mode", "deny", "--node-role-arn", "arn:aws:iam::123456789012:role/A",
			"--node-role-arn", "arn:aws:iam::123456789012:role/B", "--admission-timeout", "1500ms", "--allow-skip-annotation=false",
			"--metrics-bind-address", "0", "--health-probe-bind-address", "127.0.0.1:9000", "--shutdown-delay", "0s",
			"--max-concurrent-admissions", "8", "--context", "aws:SourceVpce=vpce-0abc", "--context", "aws:SourceVpc=vpc-1",
			"--assume-role", "210987654321=arn:aws:iam::210987654321:role/Reader", "--region", "us-gov-west-1"}},
		"no node role: pools are discovered":          {},
		"standalone without node pools":               {args: []string{"--standalone"}, wantErr: "node pools are needed: --node-role-arn, --node-pools-config or --cluster-name"},
		"a cluster name EKS would refuse":             {args: []string{"--cluster-name", "-prod"}, wantErr: `--cluster-name "-prod" is not an EKS cluster name`},
		"a missing node pools file":                   {args: []string{"--node-pools-config", "/no/such/file.yaml"}, wantErr: "--node-pools-config:"},
		"an unknown platform check":                   {args: []string{"--platform-check", "deep"}, wantErr: "--platform-check:"},
		"a refresh of zero":                           {args: []string{"--node-pools-refresh", "0s"}, wantErr: "--node-pools-refresh 0s: must be positive"},
		"an audit every 5 minutes":                    {args: []string{"--audit-interval", "5m", "--cert-secret-namespace", "ecr-preflight"}},
		"an audit too often":                          {args: []string{"--audit-interval", "1s"}, wantErr: "--audit-interval 1s: at least 10s"},
		"an audit without the Kubernetes API":         {args: []string{"--standalone", "--node-role-arn", testRoleARN, "--audit-interval", "1m"}, wantErr: "--audit-interval needs the Kubernetes API"},
		"an audit Lease with a bad name":              {args: []string{"--audit-interval", "1m", "--cert-secret-namespace", "x", "--audit-lease-name", "Bad_Name"}, wantErr: `--audit-lease-name "Bad_Name"`},
		"lifecycle prediction off":                    {args: []string{"--lifecycle-warn-days", "0"}},
		"a negative lifecycle window":                 {args: []string{"--lifecycle-warn-days", "-1"}, wantErr: "--lifecycle-warn-days -1"},
		"every node pool flag":                        {args: []string{"--cluster-name", "prod", "--discover-nodes=false", "--node-pools-refresh", "1m", "--platform-check", "full", "--deny-on-any-pool"}},
		"a user ARN is no role":                       {args: []string{"--node-role-arn", "arn:aws:iam::123456789012:user/bob"}, wantErr: "is not an IAM role ARN"},
		"an unknown mode":                             {args: []string{"--node-role-arn", testRoleARN, "--mode", "enforce"}, wantErr: `unknown mode "enforce"`},
		"a zero timeout":                              {args: []string{"--node-role-arn", testRoleARN, "--admission-timeout", "0s"}, wantErr: "--admission-timeout 0s"},
		"a timeout the API server would not wait for": {args: []string{"--node-role-arn", testRoleARN, "--admission-timeout", "30s"}, wantErr: "below 30s"},
		"no concurrency":                              {args: []string{"--node-role-arn", testRoleARN, "--max-concurrent-admissions", "0"}, wantErr: "at least 1"},
		"a port out of range":                         {args: []string{"--node-role-arn", testRoleARN, "--port", "70000"}, wantErr: "not a TCP port"},
		"a bad metrics address":                       {args: []string{"--node-role-arn", testRoleARN, "--metrics-bind-address", "8080"}, wantErr: "--metrics-bind-address"},
		"metrics and probes on one address":           {args: []string{"--node-role-arn", testRoleARN, "--metrics-bind-address", ":9", "--health-probe-bind-address", ":9"}, wantErr: "must differ"},
		"kubeconfig with standalone":                  {args: []string{"--node-role-arn", testRoleARN, "--standalone", "--kubeconfig", "x"}, wantErr: "--kubeconfig has no use"},
		"a context without a value":                   {args: []string{"--node-role-arn", testRoleARN, "--context", "aws:SourceVpce"}, wantErr: "want KEY=VALUE"},
		"a context key without a prefix":              {args: []string{"--node-role-arn", testRoleARN, "--context", "SourceVpce=x"}, wantErr: "want KEY=VALUE"},
		"an assume-role with a bad account":           {args: []string{"--node-role-arn", testRoleARN, "--assume-role", "12x=arn:aws:iam::123456789012:role/R"}, wantErr: "with an account ID"},
		"an account assumed twice": {args: []string{"--node-role-arn", testRoleARN,
			"--assume-role", "123456789012=arn:aws:iam::123456789012:role/R", "--assume-role", "123456789012=arn:aws:iam::123456789012:role/S"}, wantErr: "given twice"},
		"a single-valued context key twice": {args: []string{"--node-role-arn", testRoleARN, "--context", "aws:SourceVpce=a", "--context", "AWS:sourcevpce=b"},
			wantErr: "--context AWS:sourcevpce given twice: it is single-valued"},
		"a multivalued context key twice": {args: []string{"--node-role-arn", testRoleARN, "--context", "aws:PrincipalOrgPaths=o-a/r-b/", "--context", "aws:PrincipalOrgPaths=o-a/r-c/"}},
		"an assumed role outside the registry's account": {args: []string{"--node-role-arn", testRoleARN, "--assume-role", "999988887777=arn:aws:iam::123456789012:role/R"},
			wantErr: "role arn:aws:iam::123456789012:role/R is in account 123456789012, want a role in the registry's account"},
		"a bad region":          {args: []string{"--node-role-arn", testRoleARN, "--region", "Oregon"}, wantErr: "not an AWS region"},
		"an unknown log format": {args: []string{"--node-role-arn", testRoleARN, "--log-format", "xml"}, wantErr: `--log-format "xml": want json or text`},
		"a role session is no node role": {args: []string{"--node-role-arn", "arn:aws:sts::123456789012:assumed-role/EksNodeGroupRole/i-0abc"},
			wantErr: "--node-role-arn: \"arn:aws:sts::123456789012:assumed-role/EksNodeGroupRole/i-0abc\" is not an IAM role ARN"},
		"every problem at once": {args: []string{"--standalone", "--mode", "x", "--port", "0"}, wantErr: `--mode: unknown mode "x" (want warn, deny or dryrun); --port 0 is not a TCP port; node pools are needed`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wantValidation(t, parseServeFlags(t, tc.args...).Validate(), tc.wantErr)
		})
	}
}

const testRoleARN = "arn:aws:iam::123456789012:role/EksNodeGroupRole"

func parseServeFlags(t *testing.T, args ...string) *ServeOptions {
	t.Helper()
	o := NewServeOptions()
	fs := newFlagSet("test")
	for _, g := range o.flagGroups() {
		fs.AddFlagSet(g.fs)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestFlagsParseIntoTypes(t *testing.T) {
	o := parseServeFlags(t, "--mode", "deny", "--log-format", "text", "--node-role-arn", testRoleARN,
		"--context", "aws:SourceVpce=vpce-0abc", "--context", "aws:PrincipalOrgPaths=o-a/r-b/", "--context", "aws:PrincipalOrgPaths=o-a/r-c/",
		"--assume-role", "210987654321=arn:aws:iam::210987654321:role/Reader")
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Mode != webhook.ModeDeny || o.LogFormat != logText || !slices.Equal(o.Pools.NodeRoles, roleARNs{testRoleARN}) {
		t.Errorf("mode %q, log format %q, node roles %v", o.Mode, o.LogFormat, o.Pools.NodeRoles)
	}
	wantContext := conditionContext{"aws:SourceVpce": {"vpce-0abc"}, "aws:PrincipalOrgPaths": {"o-a/r-b/", "o-a/r-c/"}}
	if !maps.EqualFunc(o.Engine.Context, wantContext, slices.Equal) {
		t.Errorf("context %v, want %v", o.Engine.Context, wantContext)
	}
	if want := (assumeRoles{"210987654321": "arn:aws:iam::210987654321:role/Reader"}); !maps.Equal(o.Engine.AssumeRole, want) {
		t.Errorf("assume roles %v, want %v", o.Engine.AssumeRole, want)
	}
}

func TestAllowSkipAnnotationIsTriState(t *testing.T) {
	tests := map[string]struct {
		args []string
		want *bool
	}{
		"unset follows the mode": {nil, nil},
		"bare flag means true":   {[]string{"--allow-skip-annotation"}, new(true)},
		"explicit false":         {[]string{"--allow-skip-annotation=false"}, new(false)},
		"explicit true":          {[]string{"--allow-skip-annotation=true"}, new(true)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := parseServeFlags(t, tc.args...).AllowSkipAnnotation
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestServeOptionsDefaults(t *testing.T) {
	o := NewServeOptions()
	if o.Port != 9443 || o.Mode != "warn" || o.AdmissionTimeout != 2*time.Second || o.MetricsBindAddress != ":8080" ||
		o.HealthProbeBindAddress != ":8081" || o.ShutdownDelay != 5*time.Second || o.AllowSkipAnnotation != nil {
		t.Errorf("defaults changed: %+v", o)
	}
}

func TestServeHelpGroupsFlags(t *testing.T) {
	var out bytes.Buffer
	code := Execute([]string{"serve", "--help"}, nil, &out, &out)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	help := out.String()
	last := -1
	for _, section := range []string{"Serving flags:", "Admission flags:", "Operation flags:", "Engine and AWS flags:"} {
		i := strings.Index(help, section)
		if i < last {
			t.Errorf("section %q missing or out of order in:\n%s", section, help)
		}
		last = i
	}
}

func TestServeUsageErrors(t *testing.T) {
	var out bytes.Buffer
	if code := Execute([]string{"serve", "--standalone"}, nil, &out, &out); code != ExitUsage || !strings.Contains(out.String(), "node pools are needed") {
		t.Errorf("exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := Execute([]string{"serve", "--no-such-flag"}, nil, &out, &out); code != ExitUsage {
		t.Errorf("exit %d: %s", code, out.String())
	}
}

// wantValidation checks Validate's answer: no error when want is "", else
// an error whose text contains want.
func wantValidation(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(joinLines(err), want)):
		t.Errorf("error %v, want it to contain %q", err, want)
	}
}
