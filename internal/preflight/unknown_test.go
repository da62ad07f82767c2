package preflight

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

const (
	// pullOnly is AmazonEC2ContainerRegistryPullOnly's statement shape.
	pullOnly = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchImportUpstreamImage"],"Resource":"*"}]}`
	// ecrAll grants every ECR action.
	ecrAll       = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`
	otherAccount = "111122223333"
	otherRole    = "arn:aws:iam::" + otherAccount + ":role/Node"
	// addonImage is in another account whose repository allows everyone to
	// pull, as EKS add-on images are.
	addonImage  = seedAccount + ".dkr.ecr.us-west-2.amazonaws.com/eks/coredns:v1.11"
	anyonePulls = `{"Version":"2012-10-17","Statement":[{"Sid":"Public","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`
	cacheImage  = seedAccount + ".dkr.ecr.us-west-2.amazonaws.com/docker-hub/library/nginx:1.27"
	cacheRepo   = "docker-hub/library/nginx"
)

func denied(action string) error {
	return awsErr("looking up", action, awsclient.ClassAccessDenied, "AccessDeniedException")
}

// internalHost stands for what AWS's error messages can carry and users
// must never read: internal host names, endpoints, ARNs.
const internalHost = "internal-host.corp.example:8443"

// awsErr is a failed lookup as awsclient makes one: the SDK's wrapping of
// an AWS error whose code users may read and whose message only the log.
func awsErr(what, action string, class awsclient.Class, code string) error {
	return &awsclient.LookupError{What: what, Action: action, Class: class, Err: fmt.Errorf(
		"operation error ECR: %s, https response error StatusCode: 400, RequestID: 8c1e, api error %w", action,
		&smithy.GenericAPIError{Code: code, Message: internalHost + " said no to arn:aws:sts::1234567890:assumed-role/ecr-preflight/i-0abc"})}
}

func withRole(f *fakeLookups, arn, doc string) *fakeLookups {
	if f.roles == nil {
		f.roles = map[string]awsclient.RolePolicies{}
	}
	f.roles[arn] = awsclient.RolePolicies{RoleARN: arn, Attached: []awsclient.Policy{{Name: "policy", Document: doc}}}
	return f
}

func dockerHub() []awsclient.PullThroughCacheRule {
	return []awsclient.PullThroughCacheRule{{EcrRepositoryPrefix: "docker-hub", UpstreamRegistry: "docker-hub", UpstreamRegistryURL: "registry-1.docker.io"}}
}

// scenario is one input of the engine with its full-information answer.
type scenario struct {
	lookups func() *fakeLookups
	image   string
	roles   []string
	verdict Verdict
	codes   []Code
	// contains are fragments some finding's message or fix must contain.
	contains []string
}

// scenarios cover the families of issue 12 and the ordinary cases; the
// lookup-failure property runs over all of them.
func scenarios() map[string]scenario {
	const restore = "aws ecr update-image-storage-class --registry-id 1234567890 --repository-name retail-sample-app-ui --region us-west-2 --image-id imageDigest=sha256:"
	return map[string]scenario{
		"the seed: a repository Deny": {
			lookups: seedLookups, image: seedImage, roles: []string{seedRole},
			verdict: VerdictNotPullable, codes: []Code{CodeRepositoryPolicyDenies},
		},
		"the seed fixed": {
			lookups: func() *fakeLookups { f := seedLookups(); f.repoPolicies = nil; return f },
			image:   seedImage, roles: []string{seedRole}, verdict: VerdictPullable,
		},
		"a missing tag": {
			lookups: func() *fakeLookups { f := seedLookups(); f.repoPolicies = nil; return f },
			image:   strings.Replace(seedImage, "1.2.1", "9.9.9", 1), roles: []string{seedRole},
			verdict: VerdictNotPullable, codes: []Code{CodeImageNotFound},
		},
		"a missing unnested repository": {
			lookups: seedLookups, image: seedAccount + ".dkr.ecr.us-west-2.amazonaws.com/nope:1", roles: []string{seedRole},
			verdict: VerdictNotPullable, codes: []Code{CodeRepositoryNotFound},
		},
		"another account's repository that lets everyone pull": {
			lookups: func() *fakeLookups {
				f := withRole(&fakeLookups{images: map[string][]string{"eks/coredns": {"v1.11"}}, repoPolicies: map[string]string{"eks/coredns": anyonePulls}}, otherRole, pullOnly)
				f.caller = otherAccount
				return f
			},
			image: addonImage, roles: []string{otherRole}, verdict: VerdictPullable,
		},
		"another account's repository that grants nothing": {
			lookups: func() *fakeLookups {
				f := withRole(&fakeLookups{images: map[string][]string{"eks/coredns": {"v1.11"}}}, otherRole, pullOnly)
				f.caller = otherAccount
				return f
			},
			image: addonImage, roles: []string{otherRole}, verdict: VerdictNotPullable, codes: []Code{CodeCrossAccountNotAllowed},
		},
		"identity grants the token and the manifest, the repository policy the layers": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.repoPolicies["retail-sample-app-ui"] = `{"Version":"2012-10-17","Statement":[{"Sid":"Layers","Effect":"Allow","Principal":{"AWS":"` + seedRole + `"},"Action":"ecr:GetDownloadUrlForLayer"}]}`
				return withRole(f, seedRole, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage"],"Resource":"*"}]}`)
			},
			image: seedImage, roles: []string{seedRole}, verdict: VerdictPullable,
		},
		"an identity Deny stands whatever the repository says": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.repoPolicies = nil
				return withRole(f, seedRole, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Sid":"NoPulls","Effect":"Deny","Action":"ecr:BatchGetImage","Resource":"*"}]}`)
			},
			image: seedImage, roles: []string{seedRole}, verdict: VerdictNotPullable, codes: []Code{CodeIdentityPolicyDenies},
		},
		"a registry Deny under scope V1 does not govern pulls": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.repoPolicies = nil
				f.scope = "V1"
				f.registry = `{"Version":"2012-10-17","Statement":[{"Sid":"NoPulls","Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage","Resource":"*"}]}`
				return f
			},
			image: seedImage, roles: []string{seedRole}, verdict: VerdictPullable,
		},
		"a registry Deny under scope V2": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.repoPolicies = nil
				f.registry = `{"Version":"2012-10-17","Statement":[{"Sid":"NoPulls","Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage","Resource":"*"}]}`
				return f
			},
			image: seedImage, roles: []string{seedRole}, verdict: VerdictNotPullable, codes: []Code{CodeRegistryPolicyDenies},
		},
		"an archived image": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.repoPolicies = nil
				f.statuses = map[string]string{"1.2.1": "ARCHIVED"}
				return f
			},
			image: seedImage, roles: []string{seedRole}, verdict: VerdictNotPullable, codes: []Code{CodeImageArchived},
			contains: []string{"is archived", restore, "--target-storage-class STANDARD"},
		},
		"an image being restored": {
			lookups: func() *fakeLookups {
				f := seedLookups()
				f.repoPolicies = nil
				f.statuses = map[string]string{"1.2.1": "ACTIVATING"}
				return f
			},
			image: seedImage, roles: []string{seedRole}, verdict: VerdictUnknown, codes: []Code{CodeImageArchived},
			contains: []string{"being restored"},
		},
		"a tag not cached yet, and the role may import it": {
			lookups: func() *fakeLookups {
				f := withRole(&fakeLookups{images: map[string][]string{cacheRepo: {"1.26"}}, ptcRules: dockerHub()}, seedRole, pullOnly)
				return f
			},
			image: cacheImage, roles: []string{seedRole}, verdict: VerdictUnknown, codes: []Code{CodeImageImportedOnPull},
			contains: []string{"imports it from registry-1.docker.io on the first pull"},
		},
		"a tag not cached yet, and the role may not import it": {
			lookups: func() *fakeLookups {
				return withRole(&fakeLookups{images: map[string][]string{cacheRepo: {"1.26"}}, ptcRules: dockerHub()}, seedRole, readOnly)
			},
			image: cacheImage, roles: []string{seedRole}, verdict: VerdictNotPullable, codes: []Code{CodeImageImportedOnPull, CodePullThroughCacheNotAllowed},
			contains: []string{"no policy allows role EksNodeGroupRole to ecr:BatchImportUpstreamImage", "AmazonEC2ContainerRegistryPullOnly"},
		},
		"a cache repository not created yet, and a read-only role": {
			lookups: func() *fakeLookups { return withRole(&fakeLookups{ptcRules: dockerHub()}, seedRole, readOnly) },
			image:   cacheImage, roles: []string{seedRole}, verdict: VerdictNotPullable,
			codes:    []Code{CodeRepositoryNotFound, CodePullThroughCacheNotAllowed, CodePullThroughCacheNotAllowed},
			contains: []string{"ecr:CreateRepository on arn:aws:ecr:us-west-2:1234567890:repository/docker-hub/*"},
		},
		"a cache repository not created yet, and a pull-only role": {
			lookups: func() *fakeLookups { return withRole(&fakeLookups{ptcRules: dockerHub()}, seedRole, pullOnly) },
			image:   cacheImage, roles: []string{seedRole}, verdict: VerdictNotPullable,
			codes: []Code{CodeRepositoryNotFound, CodePullThroughCacheNotAllowed},
		},
		"a cache repository not created yet, and the registry policy lets the role create and import": {
			lookups: func() *fakeLookups {
				f := withRole(&fakeLookups{ptcRules: dockerHub()}, seedRole, readOnly)
				f.scope = "V1"
				f.registry = `{"Version":"2012-10-17","Statement":[{"Sid":"Cache","Effect":"Allow","Principal":{"AWS":"` + seedRole + `"},"Action":["ecr:CreateRepository","ecr:BatchImportUpstreamImage"],"Resource":"arn:aws:ecr:us-west-2:1234567890:repository/docker-hub/*"}]}`
				return f
			},
			image: cacheImage, roles: []string{seedRole}, verdict: VerdictUnknown, codes: []Code{CodeRepositoryNotFound},
			contains: []string{"creates it and imports the image from registry-1.docker.io"},
		},
	}
}

func TestCheckScenarios(t *testing.T) {
	for name, sc := range scenarios() {
		t.Run(name, func(t *testing.T) {
			got := newTestEngine(t, sc.lookups()).Check(context.Background(), []string{sc.image}, sc.roles)[0]
			if got.Verdict != sc.verdict || !slices.Equal(codes(got), sc.codes) {
				t.Fatalf("got %s %v, want %s %v: %+v", got.Verdict, codes(got), sc.verdict, sc.codes, got.Findings)
			}
			if got.Verdict != verdictOf(got.Findings) {
				t.Errorf("verdict %s does not follow from the findings", got.Verdict)
			}
			for _, c := range sc.contains {
				if !slices.ContainsFunc(got.Findings, func(f Finding) bool { return strings.Contains(f.Message+" "+f.Fix, c) }) {
					t.Errorf("no finding says %q: %+v", c, got.Findings)
				}
			}
			for _, f := range got.Findings {
				if strings.Contains(f.Message, sc.image) || f.Fix == "" {
					t.Errorf("finding %s names the image or lacks a fix: %+v", f.Code, f)
				}
			}
		})
	}
}

// failureKinds are the ways a lookup fails; none of them says anything
// about the pull.
func failureKinds() map[string]func(op string) error {
	class := func(c awsclient.Class, err error) func(string) error {
		return func(op string) error {
			return &awsclient.LookupError{What: "looking up " + op, Action: "ecr:" + op, Class: c, Err: err}
		}
	}
	return map[string]func(string) error{
		"access denied": func(op string) error {
			return awsErr("looking up "+op, "ecr:"+op, awsclient.ClassAccessDenied, "AccessDeniedException")
		},
		"throttling": func(op string) error {
			return awsErr("looking up "+op, "ecr:"+op, awsclient.ClassThrottled, "ThrottlingException")
		},
		"5xx": class(awsclient.ClassUnavailable, &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500}}, Err: errors.New("from " + internalHost)}),
		"a server error": func(op string) error {
			return awsErr("looking up "+op, "ecr:"+op, awsclient.ClassUnavailable, "ServerException")
		},
		"something unexpected": class(awsclient.ClassOther, errors.New("proxy "+internalHost+" refused")),
		"timeout":              class(awsclient.ClassTimeout, context.DeadlineExceeded),
		"no credentials": class(awsclient.ClassNoCredentials,
			errors.New("get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found")),
	}
}

var lookupOps = []string{"DescribeImages", "RepositoryPolicy", "RegistryPolicy", "RegistryPolicyScope", "PullThroughCacheRules", "RolePolicies", "CallerAccount"}

// TestLookupFailureNeverChangesADefiniteVerdict is issue 12's property: with
// any lookup failing, alone or with others, in any way, the verdict is the
// full-information one or unknown, never another definite one.
func TestLookupFailureNeverChangesADefiniteVerdict(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	for name, sc := range scenarios() {
		for kind, failure := range failureKinds() {
			subsets := [][]string{}
			for _, op := range lookupOps {
				subsets = append(subsets, []string{op})
			}
			for range 12 {
				var subset []string
				for _, op := range lookupOps {
					if rng.IntN(2) == 0 {
						subset = append(subset, op)
					}
				}
				subsets = append(subsets, subset)
			}
			for _, failed := range subsets {
				f := sc.lookups()
				f.fail = map[string]error{}
				for _, op := range failed {
					f.fail[op] = failure(op)
				}
				got := newTestEngine(t, f).Check(context.Background(), []string{sc.image}, sc.roles)[0]
				if got.Verdict != sc.verdict && got.Verdict != VerdictUnknown {
					t.Errorf("%s, %s failing with %s: verdict %s, want %s or unknown: %+v", name, strings.Join(failed, "+"), kind, got.Verdict, sc.verdict, got.Findings)
				}
			}
		}
	}
}

// TestAWSTextNeverReachesAFinding fails every lookup, one at a time, with
// AWS errors whose message names an internal host: no finding's message or
// fix carries AWS's text, whatever the scenario and the failure. The engine
// logs the text in full where it makes the finding.
func TestAWSTextNeverReachesAFinding(t *testing.T) {
	for name, sc := range scenarios() {
		for kind, failure := range failureKinds() {
			for _, op := range lookupOps {
				f := sc.lookups()
				f.fail = map[string]error{op: failure(op)}
				if op == "PullThroughCacheRules" {
					f.ptcErr = failure(op)
				}
				for _, r := range newTestEngine(t, f).Check(context.Background(), []string{sc.image}, sc.roles) {
					for _, fd := range r.Findings {
						if strings.Contains(fd.Message+fd.Fix+strings.Join(fd.Command, " "), "internal-host") {
							t.Errorf("%s, %s failing with %s: AWS's text in a finding: %+v", name, op, kind, fd)
						}
					}
				}
			}
		}
	}

	for _, op := range []string{"DescribeImages", "RepositoryPolicy"} {
		t.Run("the log has the text of a failed "+op, func(t *testing.T) {
			var logs strings.Builder
			f := seedLookups()
			f.fail = map[string]error{op: awsErr("looking up "+op, "ecr:"+op, awsclient.ClassUnavailable, "ServerException")}
			e, err := New(Options{Lookups: f, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			r := e.Check(context.Background(), []string{seedImage}, []string{seedRole})[0]
			if !slices.ContainsFunc(r.Findings, func(fd Finding) bool { return strings.HasSuffix(fd.Message, "ecr:"+op+" failed: ServerException") }) {
				t.Errorf("no finding names the call and AWS's code: %+v", r.Findings)
			}
			if !strings.Contains(logs.String(), internalHost+" said no") || !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("the log lacks AWS's text at warning level:\n%s", logs.String())
			}
		})
	}
}

func TestUnreadPoliciesLeaveTheAnswerUnknown(t *testing.T) {
	tests := map[string]struct {
		scenario string
		fail     []string
		caller   string
		contains []string
	}{
		"another account's open repository, our reads refused: unknown, and the fix is on that side": {
			scenario: "another account's repository that lets everyone pull", fail: []string{"DescribeImages", "RepositoryPolicy"}, caller: otherAccount,
			contains: []string{"our credentials (account 111122223333) are not allowed ecr:RepositoryPolicy in account 1234567890",
				"pass --assume-role 1234567890=ROLE_ARN", "have account 1234567890 grant"},
		},
		"identity grants the manifest, the unread repository policy the layers: unknown": {
			scenario: "identity grants the token and the manifest, the repository policy the layers", fail: []string{"RepositoryPolicy"},
			contains: []string{"grant ecr:RepositoryPolicy to ecr-preflight's own IAM role"},
		},
		"an identity-only allow is not pullable when the repository policy could hold a Deny": {
			scenario: "the seed fixed", fail: []string{"RepositoryPolicy"},
		},
	}
	all := scenarios()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sc := all[tc.scenario]
			f := sc.lookups()
			if tc.caller != "" {
				f.caller = tc.caller
			}
			f.fail = map[string]error{}
			for _, op := range tc.fail {
				f.fail[op] = denied("ecr:" + op)
			}
			got := newTestEngine(t, f).Check(context.Background(), []string{sc.image}, sc.roles)[0]
			if got.Verdict != VerdictUnknown || !slices.Contains(codes(got), CodeLookupFailed) {
				t.Fatalf("got %s %v, want unknown with LookupFailed: %+v", got.Verdict, codes(got), got.Findings)
			}
			for _, c := range tc.contains {
				if !slices.ContainsFunc(got.Findings, func(f Finding) bool { return strings.Contains(f.Message+" "+f.Fix, c) }) {
					t.Errorf("no finding says %q: %+v", c, got.Findings)
				}
			}
		})
	}
}

func TestUnreadPullThroughRulesLeaveAMissingNestedImageUnknown(t *testing.T) {
	f := withRole(&fakeLookups{images: map[string][]string{cacheRepo: {"1.26"}}}, seedRole, pullOnly)
	f.ptcErr = denied("ecr:DescribePullThroughCacheRules")
	got := newTestEngine(t, f).Check(context.Background(), []string{cacheImage}, []string{seedRole})[0]
	if got.Verdict != VerdictUnknown || !slices.Equal(codes(got), []Code{CodeImageNotFound}) || got.Findings[0].Severity != SeverityWarning {
		t.Fatalf("got %s %v, want unknown with an ImageNotFound warning: %+v", got.Verdict, codes(got), got.Findings)
	}
	if msg := got.Findings[0].Message; !strings.Contains(msg, "the rules could not be read") {
		t.Errorf("message %q does not say the rules could not be read", msg)
	}
}

func ExampleEngine_Check_archived() {
	f := seedLookups()
	f.repoPolicies = nil
	f.statuses = map[string]string{"1.2.1": "ARCHIVED"}
	e, _ := New(Options{Lookups: f})
	r := e.Check(context.Background(), []string{seedImage}, nil)[0]
	fmt.Println(r.Verdict, r.Findings[0].Code, r.Findings[0].Severity)
	// Output: not-pullable ImageArchived error
}
