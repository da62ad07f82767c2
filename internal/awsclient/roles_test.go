package awsclient_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
)

const (
	readOnlyARN = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
	readOnlyDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage"],"Resource":"*"}]}`
	boundaryARN = "arn:aws:iam::123456789012:policy/boundary"
	boundaryDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`
	inlineDoc   = `{"Version":"2012-10-17","Statement":[{"Sid":"With space+plus","Effect":"Deny","Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:*:repository/secret/*"}]}`
)

func withRoles(e *env) {
	e.iam.Policies[readOnlyARN] = &fake.ManagedPolicy{Name: "AmazonEC2ContainerRegistryReadOnly", DefaultVersion: "v3",
		Versions: map[string]string{"v1": `{"old":true}`, "v3": readOnlyDoc}}
	e.iam.Policies[boundaryARN] = &fake.ManagedPolicy{Name: "boundary", DefaultVersion: "v1", Versions: map[string]string{"v1": boundaryDoc}}
	e.iam.Roles["node"] = &fake.Role{ARN: "arn:aws:iam::123456789012:role/eks/node", Attached: []string{readOnlyARN},
		Inline: map[string]string{"deny-secret": inlineDoc, "other": `{}`}, Boundary: boundaryARN,
		Tags: map[string]string{"team": "platform", "env": "prod"}}
	e.iam.Roles["plain"] = &fake.Role{ARN: "arn:aws:iam::123456789012:role/plain", Attached: []string{readOnlyARN}}
}

func TestRolePolicies(t *testing.T) {
	e := newEnv()
	withRoles(e)
	e.iam.PageSize = 1 // every list is paginated
	rp, err := e.l.RolePolicies(context.Background(), "arn:aws:iam::123456789012:role/eks/node")
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.Attached) != 1 || rp.Attached[0] != (awsclient.Policy{Name: "AmazonEC2ContainerRegistryReadOnly", ARN: readOnlyARN, VersionID: "v3", Document: readOnlyDoc}) {
		t.Errorf("Attached = %+v, want the default version v3, URL-decoded", rp.Attached)
	}
	if len(rp.Inline) != 2 || rp.Inline[0] != (awsclient.Policy{Name: "deny-secret", Document: inlineDoc}) || rp.Inline[1].Name != "other" {
		t.Errorf("Inline = %+v, want both inline policies URL-decoded", rp.Inline)
	}
	if rp.Boundary == nil || *rp.Boundary != (awsclient.Policy{Name: "boundary", ARN: boundaryARN, VersionID: "v1", Document: boundaryDoc}) {
		t.Errorf("Boundary = %+v", rp.Boundary)
	}
	if want := map[string]string{"team": "platform", "env": "prod"}; !maps.Equal(rp.Tags, want) {
		t.Errorf("Tags = %v, want %v", rp.Tags, want)
	}
}

func TestRolePoliciesSharesManagedPoliciesAndCaches(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	withRoles(e)
	for _, arn := range []string{"arn:aws:iam::123456789012:role/eks/node", "arn:aws:iam::123456789012:role/plain", "arn:aws:iam::123456789012:role/plain"} {
		if _, err := e.l.RolePolicies(ctx, arn); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.iam.Calls("GetRole"); got != 2 {
		t.Errorf("GetRole calls = %d, want 2 (the repeat is cached)", got)
	}
	if got := e.iam.Calls("GetPolicyVersion"); got != 2 {
		t.Errorf("GetPolicyVersion calls = %d, want 2 (read-only once for both roles, boundary once)", got)
	}
	e.clock.Advance(5*time.Minute + time.Second)
	if _, err := e.l.RolePolicies(ctx, "arn:aws:iam::123456789012:role/plain"); err != nil {
		t.Fatal(err)
	}
	if got := e.iam.Calls("GetRole"); got != 3 {
		t.Errorf("GetRole calls after the policy TTL = %d, want 3", got)
	}
}

func TestRolePoliciesErrors(t *testing.T) {
	tests := map[string]struct {
		arn       string
		failOp    string
		wantClass awsclient.Class
		wantIs    error
	}{
		"a missing role is ErrRoleNotFound": {
			arn: "arn:aws:iam::123456789012:role/ghost", wantClass: awsclient.ClassNotFound, wantIs: awsclient.ErrRoleNotFound,
		},
		"an instance profile ARN is not a role ARN": {
			arn: "arn:aws:iam::123456789012:instance-profile/node", wantClass: awsclient.ClassOther,
		},
		"a role session's ARN is not a role ARN": {
			arn: "arn:aws:sts::123456789012:assumed-role/plain/i-0abc", wantClass: awsclient.ClassOther,
		},
		"a denied policy read is access denied": {
			arn: "arn:aws:iam::123456789012:role/plain", failOp: "GetPolicyVersion", wantClass: awsclient.ClassAccessDenied,
		},
		"a denied inline read is access denied": {
			arn: "arn:aws:iam::123456789012:role/eks/node", failOp: "GetRolePolicy", wantClass: awsclient.ClassAccessDenied,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv()
			withRoles(e)
			if tc.failOp != "" {
				e.iam.SetErr(tc.failOp, &smithy.GenericAPIError{Code: "AccessDenied", Message: "no"})
			}
			_, err := e.l.RolePolicies(context.Background(), tc.arn)
			if got := awsclient.ClassOf(err); got != tc.wantClass {
				t.Fatalf("err = %v, class %s, want %s", err, got, tc.wantClass)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.wantIs)
			}
		})
	}
}

func TestMissingRoleIsCachedBriefly(t *testing.T) {
	e := newEnv()
	for range 2 {
		_, _ = e.l.RolePolicies(context.Background(), "arn:aws:iam::123456789012:role/ghost")
	}
	if got := e.iam.Calls("GetRole"); got != 1 {
		t.Fatalf("GetRole calls = %d, want 1", got)
	}
	e.clock.Advance(31 * time.Second)
	_, _ = e.l.RolePolicies(context.Background(), "arn:aws:iam::123456789012:role/ghost")
	if got := e.iam.Calls("GetRole"); got != 2 {
		t.Fatalf("GetRole calls after the negative TTL = %d, want 2", got)
	}
}
