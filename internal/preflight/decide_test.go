package preflight

import (
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

const (
	seedAccount = "1234567890"
	seedRole    = "arn:aws:iam::1234567890:role/EksNodeGroupRole"
	seedImage   = "1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1"

	// readOnly is AmazonEC2ContainerRegistryReadOnly's statement shape.
	readOnly = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:GetRepositoryPolicy","ecr:DescribeRepositories","ecr:ListImages","ecr:DescribeImages","ecr:BatchGetImage"],"Resource":"*"}]}`
	// seedDeny is the seed's repository policy.
	seedDeny = `{"Version":"2012-10-17","Statement":[{"Sid":"new policy","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::1234567890:role/EksNodeGroupRole"},"Action":["ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","ecr:BatchCheckLayerAvailability"]}]}`
)

var seedTarget = target{
	Repository: awsclient.Repository{Registry: awsclient.Registry{Region: "us-west-2", Account: seedAccount}, Name: "retail-sample-app-ui"},
	ARN:        "arn:aws:ecr:us-west-2:1234567890:repository/retail-sample-app-ui",
	Partition:  "aws",
}

func mustPolicy(t *testing.T, kind iampolicy.Source, name, doc string) *iampolicy.NamedPolicy {
	t.Helper()
	p, err := iampolicy.ParseAs([]byte(doc), kind)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return &iampolicy.NamedPolicy{Name: name, Policy: p}
}

func TestEvaluatePull(t *testing.T) {
	fixed := func() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) }
	type want struct {
		code      Code
		statement string
		action    string
		contains  []string
	}
	tests := map[string]struct {
		role       string
		target     target
		identity   []string // identity policy documents
		boundary   string
		repository string
		registry   string
		context    map[string][]string
		tags       map[string]string
		want       []want
	}{
		"the seed: the repository policy's Deny beats the managed policy's Allow": {
			identity: []string{readOnly}, repository: seedDeny,
			want: []want{{code: CodeRepositoryPolicyDenies, statement: "new policy", action: ActionBatchGetImage,
				contains: []string{`statement "new policy"`, "repository policy of retail-sample-app-ui", "ecr:BatchGetImage", "EksNodeGroupRole", "(and ecr:GetDownloadUrlForLayer)"}}},
		},
		"the seed fixed: Effect Allow lets the role pull": {
			identity: []string{readOnly}, repository: strings.Replace(seedDeny, `"Deny"`, `"Allow"`, 1),
		},
		"no repository policy: the managed policy alone allows a same-account pull": {
			identity: []string{readOnly},
		},
		"a role with no policies can get neither a token nor the image": {
			want: []want{
				{code: CodeAuthTokenNotAllowed, action: ActionGetAuthorizationToken, contains: []string{"AmazonEC2ContainerRegistryPullOnly"}},
				{code: CodePullNotAllowed, action: ActionBatchGetImage, contains: []string{"no policy allows role EksNodeGroupRole", "(and ecr:GetDownloadUrlForLayer)"}},
			},
		},
		"an inline Deny in the role's own policies": {
			identity: []string{readOnly, `{"Version":"2012-10-17","Statement":[{"Sid":"NoProd","Effect":"Deny","Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:*:repository/retail-*"}]}`},
			want:     []want{{code: CodeIdentityPolicyDenies, statement: "NoProd", action: ActionBatchGetImage, contains: []string{"policy policy-1 of role EksNodeGroupRole"}}},
		},
		"a permissions boundary without ECR actions": {
			identity: []string{readOnly},
			boundary: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","ecr:GetAuthorizationToken"],"Resource":"*"}]}`,
			want:     []want{{code: CodePullNotAllowed, action: ActionBatchGetImage, contains: []string{"permissions boundary"}}},
		},
		"a permissions boundary without the token action is named as what blocks the token": {
			identity: []string{readOnly},
			boundary: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"}]}`,
			want: []want{
				{code: CodeAuthTokenNotAllowed, action: ActionGetAuthorizationToken, contains: []string{"the permissions boundary Boundary of role EksNodeGroupRole does not allow ecr:GetAuthorizationToken"}},
				{code: CodePullNotAllowed, action: ActionGetDownloadURL, contains: []string{"permissions boundary"}},
			},
		},
		"a token Allow scoped to a repository ARN does not grant the token": {
			identity: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"arn:aws:ecr:*:*:repository/*"}]}`},
			want:     []want{{code: CodeAuthTokenNotAllowed, action: ActionGetAuthorizationToken, contains: []string{`allows ecr:GetAuthorizationToken on Resource "*"`}}},
		},
		"a Deny of everyone outside a VPC endpoint says its condition held and how to exempt the role": {
			identity:   []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"OnlyVpce","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0abc"}}}]}`,
			context:    map[string][]string{"aws:SourceVpce": {"vpce-other"}},
			want: []want{{code: CodeRepositoryPolicyDenies, statement: "OnlyVpce", action: ActionBatchGetImage,
				contains: []string{"its condition on aws:SourceVpce holds for this pull", "exempt role EksNodeGroupRole from statement \"OnlyVpce\""}}},
		},
		"a NotAction Deny: the fix adds the action to NotAction": {
			identity:   []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"ReadMetaOnly","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::1234567890:role/EksNodeGroupRole"},"NotAction":["ecr:DescribeImages"]}]}`,
			want: []want{{code: CodeRepositoryPolicyDenies, statement: "ReadMetaOnly", action: ActionBatchGetImage,
				contains: []string{"add ecr:BatchGetImage and ecr:GetDownloadUrlForLayer to the NotAction list of statement \"ReadMetaOnly\""}}},
		},
		"an identity NotAction Deny: the fix adds the action to NotAction": {
			identity: []string{readOnly, `{"Version":"2012-10-17","Statement":[{"Sid":"OnlyDescribe","Effect":"Deny","NotAction":"ecr:Describe*","Resource":"*"}]}`},
			want: []want{
				{code: CodeAuthTokenNotAllowed, statement: "OnlyDescribe", action: ActionGetAuthorizationToken,
					contains: []string{"add ecr:GetAuthorizationToken to the NotAction list of the Deny statement \"OnlyDescribe\""}},
				{code: CodeIdentityPolicyDenies, statement: "OnlyDescribe", action: ActionBatchGetImage,
					contains: []string{"add ecr:BatchGetImage and ecr:GetDownloadUrlForLayer to the NotAction list of the Deny statement \"OnlyDescribe\""}},
			},
		},
		"a role in another partition can never pull": {
			role: "arn:aws-cn:iam::1234567890:role/EksNodeGroupRole", identity: []string{readOnly},
			want: []want{{code: CodePullNotAllowed, action: ActionBatchGetImage, contains: []string{"role EksNodeGroupRole is in partition aws-cn and the registry in partition aws"}}},
		},
		"cross-account: the registry account's repository policy does not name the role": {
			role: "arn:aws:iam::111122223333:role/Node", identity: []string{readOnly},
			want: []want{{code: CodeCrossAccountNotAllowed, action: ActionBatchGetImage, contains: []string{"account 111122223333", "from account 1234567890", "does not grant",
				"cross-account pulls need both sides: allow arn:aws:iam::111122223333:role/Node to ecr:BatchGetImage, ecr:GetDownloadUrlForLayer in the repository policy"}}},
		},
		"cross-account: granted by the registry, but not by the role's own account": {
			role:       "arn:aws:iam::111122223333:role/Node",
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"Consumers","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`,
			want: []want{
				{code: CodeAuthTokenNotAllowed, action: ActionGetAuthorizationToken},
				{code: CodeCrossAccountNotAllowed, action: ActionBatchGetImage, contains: []string{"no identity policy of role Node allows it", "need both sides: attach AmazonEC2ContainerRegistryPullOnly to role Node"}},
			},
		},
		"cross-account: granted on both sides": {
			role: "arn:aws:iam::111122223333:role/Node", identity: []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"Pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`,
		},
		"a Deny unless via a VPC endpoint is undetermined at admission time": {
			identity:   []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"OnlyVpce","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0abc"}}}]}`,
			want:       []want{{code: CodeUndetermined, statement: "OnlyVpce", action: ActionBatchGetImage, contains: []string{"aws:SourceVpce", "unknown at admission time"}}},
		},
		"the same VPC-endpoint Deny with the endpoint configured allows the pull": {
			identity:   []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"OnlyVpce","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0abc"}}}]}`,
			context:    map[string][]string{"aws:SourceVpce": {"vpce-0abc"}},
		},
		"a role tag decides a tag-conditioned Allow": {
			identity: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"retail"}}}]}`},
			tags:     map[string]string{"team": "retail"},
		},
		"a tag the role does not have is absent, so a Deny unless tagged denies for sure": {
			identity:   []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"TeamOnly","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"StringNotEquals":{"aws:PrincipalTag/team":"retail"}}}]}`,
			tags:       map[string]string{"env": "prod"},
			want: []want{
				{code: CodeRepositoryPolicyDenies, statement: "TeamOnly", action: ActionBatchGetImage},
			},
		},
		"a configured tag value overrides the role's own, whatever its case": {
			identity:   []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"TeamOnly","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"StringNotEquals":{"aws:PrincipalTag/team":"retail"}}}]}`,
			tags:       map[string]string{"team": "payments"},
			context:    map[string][]string{"AWS:principaltag/TEAM": {"retail"}},
		},
		"a Deny with NotPrincipal listing only the role: the session is not exempt, and the fix is AWS's pattern": {
			identity:   []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"OnlyNodes","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::1234567890:role/EksNodeGroupRole"},"Action":"ecr:*"}]}`,
			want: []want{{code: CodeRepositoryPolicyDenies, statement: "OnlyNodes", action: ActionBatchGetImage, contains: []string{
				"the kubelet calls as an assumed-role session of role EksNodeGroupRole, arn:aws:sts::1234567890:assumed-role/EksNodeGroupRole/SESSION",
				`"Condition": {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::1234567890:role/EksNodeGroupRole"}}`}}},
		},
		"a token granted only on a repository ARN: ask for its own statement, not a managed policy": {
			identity: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"arn:aws:ecr:us-west-2:1234567890:repository/retail-*"}]}`},
			want: []want{{code: CodeAuthTokenNotAllowed, action: ActionGetAuthorizationToken, contains: []string{
				"not a repository resource", `its own statement in policy policy-0 of role EksNodeGroupRole: {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}`}}},
		},
		"a permissions boundary blocking the pull is named, with both missing actions": {
			identity: []string{readOnly},
			boundary: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}`,
			want: []want{{code: CodePullNotAllowed, action: ActionBatchGetImage, contains: []string{
				"the permissions boundary Boundary of role EksNodeGroupRole does not allow ecr:BatchGetImage and ecr:GetDownloadUrlForLayer",
				"allow ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on arn:aws:ecr:us-west-2:1234567890:repository/retail-sample-app-ui in the permissions boundary Boundary"}}},
		},
		"a condition on the session ID: no --context is suggested, the statement and a workable key are": {
			identity:   []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"OneSession","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"StringNotLike":{"aws:userid":"AROAEXAMPLE:*"}}}]}`,
			want: []want{{code: CodeUndetermined, statement: "OneSession", action: ActionBatchGetImage, contains: []string{
				`statement "OneSession" of the repository policy of retail-sample-app-ui depends on aws:userid, which differs for every node's session`, "aws:PrincipalArn"}}},
		},
		"a cross-account grant whose organization condition fails names the statement and the key": {
			role: "arn:aws:iam::111122223333:role/Node", identity: []string{readOnly},
			repository: `{"Version":"2012-10-17","Statement":[{"Sid":"OrgPull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-mine"}}}]}`,
			context:    map[string][]string{"aws:PrincipalOrgID": {"o-other"}},
			want: []want{{code: CodeCrossAccountNotAllowed, statement: "OrgPull", action: ActionBatchGetImage, contains: []string{
				`statement "OrgPull" of the repository policy of retail-sample-app-ui would grant it, but its condition on aws:PrincipalOrgID does not hold`,
				`correct the condition on aws:PrincipalOrgID in statement "OrgPull"`}}},
		},
		"a same-account grant whose condition fails names the statement and the key": {
			identity: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"},{"Sid":"Tagged","Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"retail"}}}]}`},
			tags:     map[string]string{"team": "payments"},
			want: []want{{code: CodePullNotAllowed, statement: "Tagged", action: ActionBatchGetImage, contains: []string{
				`statement "Tagged" of policy policy-0 of role EksNodeGroupRole would allow role EksNodeGroupRole to ecr:BatchGetImage`, "condition on aws:PrincipalTag/team does not hold"}}},
		},
		"a registry policy Deny (scope V2) is named as such": {
			identity: []string{readOnly},
			registry: `{"Version":"2012-10-17","Statement":[{"Sid":"NoPulls","Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage","Resource":"*"}]}`,
			want:     []want{{code: CodeRegistryPolicyDenies, statement: "NoPulls", action: ActionBatchGetImage, contains: []string{"registry policy of account 1234567890"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			role := rolePolicies{ARN: seedRole, Tags: tc.tags}
			if tc.role != "" {
				role.ARN = tc.role
			}
			var err error
			if role.Role, err = awsclient.ParseRoleARN(role.ARN); err != nil {
				t.Fatal(err)
			}
			for i, doc := range tc.identity {
				role.Identity = append(role.Identity, *mustPolicy(t, iampolicy.SourceIdentity, "policy-"+string(rune('0'+i)), doc))
			}
			if tc.boundary != "" {
				role.Boundary = mustPolicy(t, iampolicy.SourceBoundary, "Boundary", tc.boundary)
			}
			res := resourcePolicies{RegistryScope: scopeV2}
			if tc.repository != "" {
				res.Repository = knownPolicy(mustPolicy(t, iampolicy.SourceResource, "the repository policy of retail-sample-app-ui", tc.repository))
			}
			if tc.registry != "" {
				res.Registry = knownPolicy(mustPolicy(t, iampolicy.SourceResource, "the registry policy", tc.registry))
			}
			d, err := newDecider(tc.context, fixed)
			if err != nil {
				t.Fatal(err)
			}
			got := d.evaluatePull(seedTarget, role, res)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				f := got[i]
				if f.Code != w.code || f.Statement != w.statement || f.Action != w.action || f.Role != role.ARN {
					t.Errorf("finding %d = {%s %q %s %s}, want {%s %q %s %s}", i, f.Code, f.Statement, f.Action, f.Role, w.code, w.statement, w.action, role.ARN)
				}
				if strings.Contains(f.Message, seedImage) {
					t.Errorf("finding %d message %q names the image: the Result does", i, f.Message)
				}
				for _, s := range w.contains {
					if !strings.Contains(f.Message+" "+f.Fix, s) {
						t.Errorf("finding %d message %q (fix %q) does not mention %q", i, f.Message, f.Fix, s)
					}
				}
				if f.Fix == "" {
					t.Errorf("finding %d has no fix", i)
				}
				if strings.Contains(f.Fix, "--context aws:userid") {
					t.Errorf("finding %d asks for a session ID no one can give: %q", i, f.Fix)
				}
				wantSeverity := SeverityError
				if w.code == CodeUndetermined {
					wantSeverity = SeverityWarning
				}
				if f.Severity != wantSeverity {
					t.Errorf("finding %d severity %s, want %s", i, f.Severity, wantSeverity)
				}
			}
		})
	}
}

func TestRoleName(t *testing.T) {
	tests := map[string]string{
		"arn:aws:iam::1234567890:role/EksNodeGroupRole":             "EksNodeGroupRole",
		"arn:aws:iam::1234567890:role/eks/nodes/Node":               "Node",
		"arn:aws:sts::1234567890:assumed-role/Node/i-0123456789abc": "Node",
		"not-an-arn": "not-an-arn",
	}
	for in, want := range tests {
		if got := RoleName(in); got != want {
			t.Errorf("RoleName(%q) = %q, want %q", in, got, want)
		}
	}
}
