package iampolicy_test

import (
	"fmt"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

// evalRepoPolicy evaluates a repository policy made of one statement (Deny
// statements get an identity Allow beside them so that they decide).
func evalRepoPolicy(t *testing.T, principal, stmt, boundary string) iampolicy.Decision {
	t.Helper()
	body := fmt.Sprintf(`{"principal": %q, "action": "ecr:BatchGetImage", "resource": %q,
	  "identityPolicies": [%s], "resourcePolicy": {"Version": "2012-10-17", "Statement": [%s]}`, principal, repo, idAllow, stmt)
	if boundary != "" {
		body += `, "permissionsBoundary": ` + boundary
	}
	body += "}"
	req, set, err := iampolicy.ParseEvalRequest([]byte(body))
	if err != nil {
		t.Fatalf("ParseEvalRequest: %v", err)
	}
	return iampolicy.Evaluate(req, set)
}

func TestPrincipalMatching(t *testing.T) {
	deny := func(principal string) string {
		return `{"Sid": "D", "Effect": "Deny", "Principal": ` + principal + `, "Action": "ecr:*"}`
	}
	notDeny := func(listed string) string {
		return `{"Sid": "D", "Effect": "Deny", "NotPrincipal": {"AWS": [` + listed + `]}, "Action": "ecr:*"}`
	}
	const (
		q       = `"`
		sessQ   = q + session + q
		roleQ   = q + role + q
		rootQ   = `"arn:aws:iam::111122223333:root"`
		acctQ   = `"111122223333"`
		userARN = "arn:aws:iam::111122223333:user/alice"
	)
	tests := map[string]struct {
		principal string
		stmt      string
		boundary  string
		want      iampolicy.Outcome
	}{
		"Principal * matches everyone":                                                       {session, deny(`"*"`), "", iampolicy.ExplicitDeny},
		"AWS * matches everyone":                                                             {session, deny(`{"AWS": "*"}`), "", iampolicy.ExplicitDeny},
		"an account ID matches its principals":                                               {session, deny(`{"AWS": ` + acctQ + `}`), "", iampolicy.ExplicitDeny},
		"an account root ARN matches its principals":                                         {session, deny(`{"AWS": ` + rootQ + `}`), "", iampolicy.ExplicitDeny},
		"another account does not match":                                                     {session, deny(`{"AWS": "444455556666"}`), "", holds},
		"a role ARN matches its sessions":                                                    {session, deny(`{"AWS": ` + roleQ + `}`), "", iampolicy.ExplicitDeny},
		"a role ARN with a path matches sessions by name":                                    {session, deny(`{"AWS": "arn:aws:iam::111122223333:role/eks/Node"}`), "", iampolicy.ExplicitDeny},
		"another role does not match":                                                        {session, deny(`{"AWS": "arn:aws:iam::111122223333:role/Other"}`), "", holds},
		"a session ARN matches that session":                                                 {session, deny(`{"AWS": ` + sessQ + `}`), "", iampolicy.ExplicitDeny},
		"another session of the role does not match":                                         {session, deny(`{"AWS": "arn:aws:sts::111122223333:assumed-role/Node/other"}`), "", holds},
		"a session ARN against a role request is unknown":                                    {role, deny(`{"AWS": ` + sessQ + `}`), "", unknown},
		"a partial wildcard in a principal is literal":                                       {session, deny(`{"AWS": "arn:aws:iam::111122223333:role/N*"}`), "", holds},
		"a wildcard account root is literal":                                                 {session, deny(`{"AWS": "arn:aws:iam::*:root"}`), "", holds},
		"a Service principal never matches a role session":                                   {session, deny(`{"Service": "ec2.amazonaws.com"}`), "", holds},
		"a Federated principal never matches":                                                {session, deny(`{"Federated": "cognito-identity.amazonaws.com"}`), "", holds},
		"a user ARN matches that user":                                                       {userARN, deny(`{"AWS": "` + userARN + `"}`), "", iampolicy.ExplicitDeny},
		"a role in another partition does not match":                                         {session, deny(`{"AWS": "arn:aws-cn:iam::111122223333:role/Node"}`), "", holds},
		"NotPrincipal listing only the role still denies":                                    {session, notDeny(roleQ), "", iampolicy.ExplicitDeny},
		"NotPrincipal listing role and account still denies":                                 {session, notDeny(roleQ + `,` + rootQ), "", iampolicy.ExplicitDeny},
		"NotPrincipal listing session, role and account exempts":                             {session, notDeny(sessQ + `,` + roleQ + `,` + acctQ), "", holds},
		"NotPrincipal listing another account denies":                                        {session, notDeny(`"444455556666"`), "", iampolicy.ExplicitDeny},
		"NotPrincipal for a role request listing role and account denies (session unlisted)": {role, notDeny(roleQ + `,` + rootQ), "", iampolicy.ExplicitDeny},
		"NotPrincipal for a role request listing a session is unknown":                       {role, notDeny(sessQ + `,` + roleQ + `,` + rootQ), "", unknown},
		"NotPrincipal listing user and account exempts the user":                             {userARN, notDeny(`"` + userARN + `",` + rootQ), "", holds},
		"NotPrincipal Deny always denies a principal with a boundary":                        {session, notDeny(sessQ + `,` + roleQ + `,` + acctQ), boundaryEcr, iampolicy.ExplicitDeny},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := evalRepoPolicy(t, tc.principal, tc.stmt, tc.boundary)
			if d.Decision != tc.want {
				t.Errorf("decision = %s, want %s (%+v)", d.Decision, tc.want, d)
			}
		})
	}
}
