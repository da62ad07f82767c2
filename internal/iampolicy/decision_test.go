package iampolicy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

// Policy fragments for the decision tables.
const (
	idAllow      = `{"name": "Id", "document": {"Version": "2012-10-17", "Statement": [{"Sid": "IdAllow", "Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}}`
	idDeny       = `{"name": "Id", "document": {"Version": "2012-10-17", "Statement": [{"Sid": "IdDeny", "Effect": "Deny", "Action": "ecr:*", "Resource": "*"}]}}`
	idUnknown    = `{"name": "Id", "document": {"Version": "2012-10-17", "Statement": [{"Sid": "IdVpce", "Effect": "Allow", "Action": "ecr:*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpce": "v"}}}]}}`
	boundaryEcr  = `{"name": "B", "document": {"Statement": [{"Sid": "BEcr", "Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}}`
	boundaryS3   = `{"name": "B", "document": {"Statement": [{"Sid": "BS3", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}}`
	scpFull      = `{"Statement": [{"Sid": "Full", "Effect": "Allow", "Action": "*", "Resource": "*"}]}`
	scpS3        = `{"Statement": [{"Sid": "S3", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}`
	scpDenyEcr   = `{"Statement": [{"Sid": "NoEcr", "Effect": "Deny", "Action": "ecr:*", "Resource": "*"}]}`
	rcpFull      = `{"Statement": [{"Sid": "RFull", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}`
	rcpDenyS3    = `{"Statement": [{"Sid": "RS3", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}`
	rcpDenyOrg   = `{"Statement": [{"Sid": "ROrg", "Effect": "Deny", "Principal": "*", "Action": "ecr:*", "Resource": "*", "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-1"}}}]}`
	otherSession = "arn:aws:sts::444455556666:assumed-role/Node/i-1"
)

func resPolicy(effect, principal string) string {
	return fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [{"Sid": "Repo", "Effect": %q, "Principal": %s, "Action": "ecr:BatchGetImage"}]}`, effect, principal)
}

func TestDecision(t *testing.T) {
	tests := map[string]struct {
		principal string
		fields    []string // extra top-level request fields
		want      iampolicy.Outcome
		reasons   []string // policy/statement
		missing   []iampolicy.Source
		keys      []string
	}{
		"same account: an identity Allow is enough": {
			session, []string{`"identityPolicies": [` + idAllow + `]`}, holds, []string{"identity/IdAllow"}, nil, nil},
		"same account: nothing allows": {
			session, nil, fails, nil, []iampolicy.Source{iampolicy.SourceIdentity}, nil},
		"same account: a Deny beats an Allow": {
			session, []string{`"identityPolicies": [` + idAllow + `, ` + idDeny + `]`}, iampolicy.ExplicitDeny, []string{"identity/IdDeny"}, nil, nil},
		"same account: a resource-policy grant to the role allows without identity policy": {
			session, []string{`"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "`+role+`"}`)}, holds, []string{"resource/Repo"}, nil, nil},
		"same account: a resource-policy grant to the account only delegates": {
			session, []string{`"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "111122223333"}`)}, fails, []string{"resource/Repo"}, []iampolicy.Source{iampolicy.SourceIdentity}, nil},
		"same account: Principal * grants": {
			session, []string{`"resourcePolicy": ` + resPolicy("Allow", `"*"`)}, holds, []string{"resource/Repo"}, nil, nil},
		"same account: a boundary without the action blocks the identity Allow": {
			session, []string{`"identityPolicies": [` + idAllow + `]`, `"permissionsBoundary": ` + boundaryS3}, fails, []string{"identity/IdAllow"}, []iampolicy.Source{iampolicy.SourceBoundary}, nil},
		"same account: identity and boundary both allow": {
			session, []string{`"identityPolicies": [` + idAllow + `]`, `"permissionsBoundary": ` + boundaryEcr}, holds, []string{"identity/IdAllow", "boundary/BEcr"}, nil, nil},
		"same account: the boundary limits a role-ARN resource grant": {
			session, []string{`"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "`+role+`"}`), `"permissionsBoundary": ` + boundaryS3}, fails, []string{"resource/Repo"}, []iampolicy.Source{iampolicy.SourceBoundary}, nil},
		"same account: the boundary does not limit a session-ARN resource grant": {
			session, []string{`"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "`+session+`"}`), `"permissionsBoundary": ` + boundaryS3}, holds, []string{"resource/Repo"}, nil, nil},
		"same account: a boundary that allows lets a role-ARN resource grant through": {
			session, []string{`"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "`+role+`"}`), `"permissionsBoundary": ` + boundaryEcr}, holds, []string{"resource/Repo", "boundary/BEcr"}, nil, nil},
		"same account: a session-ARN grant is unknown for a role-ARN request principal": {
			role, []string{`"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "`+session+`"}`)}, unknown, []string{"resource/Repo"}, nil, []string{"aws:userid"}},
		"cross account: identity Allow without resource policy": {
			otherSession, []string{`"identityPolicies": [` + idAllow + `]`}, fails, []string{"identity/IdAllow"}, []iampolicy.Source{iampolicy.SourceResource}, nil},
		"cross account: resource grant without identity Allow": {
			otherSession, []string{`"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "444455556666"}`)}, fails, []string{"resource/Repo"}, []iampolicy.Source{iampolicy.SourceIdentity}, nil},
		"cross account: an account principal and an identity Allow": {
			otherSession, []string{`"identityPolicies": [` + idAllow + `]`, `"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "arn:aws:iam::444455556666:root"}`)}, holds, []string{"resource/Repo", "identity/IdAllow"}, nil, nil},
		"cross account: the boundary applies as well": {
			otherSession, []string{`"identityPolicies": [` + idAllow + `]`, `"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "444455556666"}`), `"permissionsBoundary": ` + boundaryS3}, fails, []string{"resource/Repo", "identity/IdAllow"}, []iampolicy.Source{iampolicy.SourceBoundary}, nil},
		"cross account: the repository policy names another account": {
			otherSession, []string{`"identityPolicies": [` + idAllow + `]`, `"resourcePolicy": ` + resPolicy("Allow", `{"AWS": "999999999999"}`)}, fails, []string{"identity/IdAllow"}, []iampolicy.Source{iampolicy.SourceResource}, nil},
		"SCP: a level without the action denies implicitly": {
			session, []string{`"identityPolicies": [` + idAllow + `]`, `"serviceControlPolicies": [[` + scpFull + `], [` + scpS3 + `]]`}, fails, []string{"scp/Full", "identity/IdAllow"}, []iampolicy.Source{iampolicy.SourceSCP}, nil},
		"SCP: an empty list means none supplied": {
			session, []string{`"identityPolicies": [` + idAllow + `]`, `"serviceControlPolicies": []`}, holds, []string{"identity/IdAllow"}, nil, nil},
		"SCP: a Deny is explicit": {
			session, []string{`"identityPolicies": [` + idAllow + `]`, `"serviceControlPolicies": [[` + scpFull + `, ` + scpDenyEcr + `]]`}, iampolicy.ExplicitDeny, []string{"scp/NoEcr"}, nil, nil},
		"SCP: an SCP Allow alone grants nothing": {
			session, []string{`"serviceControlPolicies": [[` + scpFull + `]]`}, fails, []string{"scp/Full"}, []iampolicy.Source{iampolicy.SourceIdentity}, nil},
		"RCP: Allows decide nothing, so they are no reasons": {
			session, []string{`"identityPolicies": [` + idAllow + `]`, `"resourceControlPolicies": [[` + rcpFull + `], [` + rcpFull + `]]`}, holds, []string{"identity/IdAllow"}, nil, nil},
		"RCP: a level holding only a Deny of another action does not deny implicitly": {
			session, []string{`"identityPolicies": [` + idAllow + `]`, `"resourceControlPolicies": [[` + rcpFull + `], [` + rcpDenyS3 + `]]`}, holds, []string{"identity/IdAllow"}, nil, nil},
		"RCP: a level with no statement for the action still lets it through": {
			session, []string{`"identityPolicies": [` + idAllow + `]`, `"resourceControlPolicies": [[` + rcpDenyS3 + `]]`}, holds, []string{"identity/IdAllow"}, nil, nil},
		"RCP: nothing allows: missing names identity, never rcp": {
			session, []string{`"resourceControlPolicies": [[` + rcpDenyS3 + `]]`}, fails, nil, []iampolicy.Source{iampolicy.SourceIdentity}, nil},
		"RCP: a Deny on an unknown org ID leaves it undetermined": {
			session, []string{`"identityPolicies": [` + idAllow + `]`, `"resourceControlPolicies": [[` + rcpFull + `, ` + rcpDenyOrg + `]]`}, unknown, []string{"rcp/ROrg"}, nil, []string{"aws:PrincipalOrgID"}},
		"RCP: the org ID in the context settles it": {
			session, []string{`"context": {"aws:PrincipalOrgID": "o-1"}`, `"identityPolicies": [` + idAllow + `]`, `"resourceControlPolicies": [[` + rcpFull + `, ` + rcpDenyOrg + `]]`}, holds, []string{"identity/IdAllow"}, nil, nil},
		"unknown Deny with a certainly false Allow is an implicit deny": {
			session, []string{`"resourceControlPolicies": [[` + rcpFull + `, ` + rcpDenyOrg + `]]`}, fails, nil, []iampolicy.Source{iampolicy.SourceIdentity}, nil},
		"an unknown Allow that is needed is undetermined": {
			session, []string{`"identityPolicies": [` + idUnknown + `]`}, unknown, []string{"identity/IdVpce"}, nil, []string{"aws:SourceVpce"}},
		"an unknown Allow that is not needed does not matter": {
			session, []string{`"identityPolicies": [` + idUnknown + `, ` + idAllow + `]`}, holds, []string{"identity/IdAllow"}, nil, nil},
		"an unknown Allow with a certain Deny is an explicit deny": {
			session, []string{`"identityPolicies": [` + idUnknown + `, ` + idDeny + `]`}, iampolicy.ExplicitDeny, []string{"identity/IdDeny"}, nil, nil},
		"a resource of * is same-account": {
			otherSession, []string{`"identityPolicies": [` + idAllow + `]`}, holds, []string{"identity/IdAllow"}, nil, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resource := repo
			if strings.HasPrefix(name, "a resource of *") {
				resource = "*"
			}
			body := fmt.Sprintf(`{"principal": %q, "action": "ecr:BatchGetImage", "resource": %q, "currentTime": "2026-01-15T12:00:00Z"`, tc.principal, resource)
			for _, f := range tc.fields {
				body += ", " + f
			}
			body += "}"
			req, set, err := iampolicy.ParseEvalRequest([]byte(body))
			if err != nil {
				t.Fatalf("ParseEvalRequest: %v\n%s", err, body)
			}
			d := iampolicy.Evaluate(req, set)
			if d.Decision != tc.want {
				t.Fatalf("decision = %s, want %s (%+v)", d.Decision, tc.want, d)
			}
			var got []string
			for _, r := range d.Reasons {
				got = append(got, string(r.Policy)+"/"+r.Statement)
			}
			if !slices.Equal(got, tc.reasons) {
				t.Errorf("reasons = %q, want %q", got, tc.reasons)
			}
			if !slices.Equal(d.Missing, tc.missing) {
				t.Errorf("missing = %q, want %q", d.Missing, tc.missing)
			}
			if tc.keys == nil {
				tc.keys = []string{}
			}
			if !slices.Equal(d.UnknownKeys, tc.keys) {
				t.Errorf("unknownKeys = %q, want %q", d.UnknownKeys, tc.keys)
			}
		})
	}
}

func TestPrincipalTagsKnownMakesMissingTagsAbsent(t *testing.T) {
	p, err := iampolicy.ParseAs([]byte(`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*",
		"Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "retail"}}}]}`), iampolicy.SourceIdentity)
	if err != nil {
		t.Fatal(err)
	}
	set := iampolicy.PolicySet{Identity: []iampolicy.NamedPolicy{{Name: "p", Policy: p}}}
	for _, tc := range []struct {
		known bool
		tags  map[string][]string
		want  iampolicy.Outcome
	}{
		{known: false, want: iampolicy.Undetermined},
		{known: true, want: iampolicy.Allow},
		{known: true, tags: map[string][]string{"aws:PrincipalTag/team": {"retail"}}, want: iampolicy.ImplicitDeny},
	} {
		req := iampolicy.Request{Principal: role, Action: "ecr:BatchGetImage", Resource: "*", Context: tc.tags, PrincipalTagsKnown: tc.known}
		if got := iampolicy.Evaluate(req, set).Decision; got != tc.want {
			t.Errorf("PrincipalTagsKnown=%v tags=%v: %s, want %s", tc.known, tc.tags, got, tc.want)
		}
	}
}

func TestConditionFailuresNameTheGrantThatDidNotApply(t *testing.T) {
	const orgGrant = `{"Version":"2012-10-17","Statement":[{"Sid":"Org","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-mine"}}}]}`
	resource, err := iampolicy.ParseAs([]byte(orgGrant), iampolicy.SourceResource)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		org  string
		want []iampolicy.ConditionFailure
	}{
		"another organization: the grant is named with its failing key": {"o-other", []iampolicy.ConditionFailure{{Reason: iampolicy.Reason{Policy: iampolicy.SourceResource, Name: "repo", Statement: "Org", Effect: "Allow"}, Key: "aws:PrincipalOrgID"}}},
		"the right organization: nothing failed":                        {"o-mine", nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := iampolicy.Request{Principal: "arn:aws:iam::111122223333:role/Node", Action: "ecr:BatchGetImage", Resource: "arn:aws:ecr:us-west-2:444455556666:repository/app",
				Context: map[string][]string{"aws:principalorgid": {tc.org}}}
			got := iampolicy.Evaluate(req, iampolicy.PolicySet{Resource: &iampolicy.NamedPolicy{Name: "repo", Policy: resource}})
			if !slices.Equal(got.ConditionFailures, tc.want) {
				t.Fatalf("ConditionFailures = %+v, want %+v (decision %s)", got.ConditionFailures, tc.want, got.Decision)
			}
		})
	}
}
