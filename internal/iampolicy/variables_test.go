package iampolicy_test

import (
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

// stmtOutcome is what one statement does for a request.
type stmtOutcome int

const (
	applies  stmtOutcome = iota
	inert                // does not apply: no match, or a variable without a value
	stmtOpen             // depends on unknown keys
)

// evalStatementAs evaluates one identity statement with the given effect;
// selector holds its Resource/NotResource and Condition members. A Deny
// statement is paired with an Allow of everything, so its outcome shows.
func evalStatementAs(t *testing.T, effect, selector string, ctx map[string][]string) iampolicy.Decision {
	t.Helper()
	doc := `{"Version": "2012-10-17", "Statement": [{"Sid": "S", "Effect": "` + effect + `", "Action": "ecr:BatchGetImage", ` + selector + `}]}`
	p, err := iampolicy.ParseAs([]byte(doc), iampolicy.SourceIdentity)
	if err != nil {
		t.Fatalf("parsing %s: %v", doc, err)
	}
	set := iampolicy.PolicySet{Identity: []iampolicy.NamedPolicy{{Name: "P", Policy: p}}}
	if effect == "Deny" {
		all, err := iampolicy.ParseAs([]byte(`{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}`), iampolicy.SourceIdentity)
		if err != nil {
			t.Fatal(err)
		}
		set.Identity = append(set.Identity, iampolicy.NamedPolicy{Name: "All", Policy: all})
	}
	req := iampolicy.Request{Principal: session, Action: "ecr:BatchGetImage", Resource: repo, Context: ctx, Now: testNow}
	return iampolicy.Evaluate(req, set)
}

// want is the decision a statement outcome gives under effect.
func (o stmtOutcome) want(effect string) iampolicy.Outcome {
	switch {
	case o == stmtOpen:
		return iampolicy.Undetermined
	case effect == "Allow" && o == applies:
		return iampolicy.Allow
	case effect == "Allow":
		return iampolicy.ImplicitDeny
	case o == applies:
		return iampolicy.ExplicitDeny
	}
	return iampolicy.Allow
}

// TestVariablesWithoutValue: a policy variable with no value makes its
// statement not apply whatever the operator (negated ones included), set
// qualifier, IfExists or NotResource around it, for Allow and Deny alike; an
// unknown key keeps it open. The session principal has no aws:username.
func TestVariablesWithoutValue(t *testing.T) {
	const allRes = `"Resource": "*", `
	tag := map[string][]string{"aws:PrincipalTag/team": {"x"}}
	tests := map[string]struct {
		selector string
		ctx      map[string][]string
		want     stmtOutcome
	}{
		"StringNotEquals":                         {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/${aws:username}"}}`, nil, inert},
		"StringNotEqualsIgnoreCase":               {allRes + `"Condition": {"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "${aws:username}"}}`, tag, inert},
		"StringNotLike":                           {allRes + `"Condition": {"StringNotLike": {"aws:PrincipalTag/team": "${aws:username}-*"}}`, tag, inert},
		"ArnNotEquals":                            {allRes + `"Condition": {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/${aws:username}"}}`, nil, inert},
		"ArnNotLike":                              {allRes + `"Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/${aws:username}*"}}`, nil, inert},
		"StringNotEqualsIfExists":                 {allRes + `"Condition": {"StringNotEqualsIfExists": {"aws:PrincipalTag/team": "${aws:username}"}}`, tag, inert},
		"ArnNotLikeIfExists":                      {allRes + `"Condition": {"ArnNotLikeIfExists": {"aws:PrincipalArn": "arn:aws:iam::*:role/${aws:username}"}}`, nil, inert},
		"ForAnyValue:StringNotEquals":             {allRes + `"Condition": {"ForAnyValue:StringNotEquals": {"aws:PrincipalTag/team": "${aws:username}"}}`, tag, inert},
		"ForAllValues:StringNotLike":              {allRes + `"Condition": {"ForAllValues:StringNotLike": {"aws:PrincipalTag/team": "${aws:username}"}}`, tag, inert},
		"ForAllValues:ArnNotEqualsIfExists":       {allRes + `"Condition": {"ForAllValues:ArnNotEqualsIfExists": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/${aws:username}"}}`, nil, inert},
		"a negated operator on an absent key":     {allRes + `"Condition": {"StringNotEquals": {"aws:SourceArn": "${aws:username}"}}`, nil, inert},
		"StringEquals":                            {allRes + `"Condition": {"StringEquals": {"aws:PrincipalTag/team": "${aws:username}"}}`, tag, inert},
		"StringEqualsIgnoreCase":                  {allRes + `"Condition": {"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "${aws:username}"}}`, tag, inert},
		"StringLike":                              {allRes + `"Condition": {"StringLike": {"aws:PrincipalTag/team": "*${aws:username}*"}}`, tag, inert},
		"ArnLike":                                 {allRes + `"Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/${aws:username}"}}`, nil, inert},
		"Bool":                                    {allRes + `"Condition": {"Bool": {"aws:SecureTransport": "${aws:username}"}}`, nil, inert},
		"ForAllValues on an absent key":           {allRes + `"Condition": {"ForAllValues:StringEquals": {"aws:SourceArn": "${aws:username}"}}`, nil, inert},
		"one value of several has no value":       {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalTag/team": ["y", "${aws:username}"]}}`, tag, inert},
		"a multi-valued key as a variable":        {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/list}"}}`, map[string][]string{"aws:PrincipalTag/team": {"x"}, "aws:PrincipalTag/list": {"a", "b"}}, inert},
		"a multivalued key, unknown, no default":  {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "${aws:PrincipalOrgPaths}"}}`, tag, inert},
		"NotResource":                             {`"NotResource": "arn:aws:ecr:*:*:repository/${aws:username}/*"`, nil, inert},
		"one Resource entry of several":           {`"Resource": ["arn:aws:ecr:*:*:repository/${aws:username}/*", "*"]`, nil, inert},
		"a default stands in":                     {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/${aws:username, 'nobody'}"}}`, nil, applies},
		"a default in NotResource":                {`"NotResource": "arn:aws:ecr:*:*:repository/${aws:username, 'nobody'}/*"`, nil, applies},
		"a known value under a negated operator":  {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/other}"}}`, map[string][]string{"aws:PrincipalTag/team": {"x"}, "aws:PrincipalTag/other": {"y"}}, applies},
		"a known equal value":                     {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/other}"}}`, map[string][]string{"aws:PrincipalTag/team": {"x"}, "aws:PrincipalTag/other": {"x"}}, inert},
		"an unknown variable, key present":        {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/other}"}}`, tag, stmtOpen},
		"an unknown variable, key absent":         {allRes + `"Condition": {"StringNotEquals": {"aws:SourceArn": "${aws:PrincipalTag/other}"}}`, nil, stmtOpen},
		"an unknown variable with a default":      {allRes + `"Condition": {"StringNotEquals": {"aws:SourceArn": "${aws:PrincipalTag/other, 'x'}"}}`, nil, applies},
		"an unknown variable in NotResource":      {`"NotResource": "arn:aws:ecr:*:*:repository/${aws:PrincipalTag/other}/*"`, nil, stmtOpen},
		"a void variable beats an unknown one":    {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalTag/team": ["${aws:PrincipalTag/other}", "${aws:username}"]}}`, tag, inert},
		"a known-absent tag is no value":          {allRes + `"Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/other}"}}`, map[string][]string{"aws:PrincipalTag/team": {"x"}, "aws:PrincipalTag/other": nil}, inert},
		"a non-matching Resource settles it":      {`"Resource": "arn:aws:s3:::b", "Condition": {"StringNotEquals": {"aws:SourceArn": "${aws:PrincipalTag/other}"}}`, nil, inert},
		"a false condition settles an open value": {allRes + `"Condition": {"StringEquals": {"aws:PrincipalAccount": "9"}, "StringNotEquals": {"aws:SourceArn": "${aws:PrincipalTag/other}"}}`, nil, inert},
	}
	for name, tc := range tests {
		for _, effect := range []string{"Allow", "Deny"} {
			t.Run(effect+"/"+name, func(t *testing.T) {
				d := evalStatementAs(t, effect, tc.selector, tc.ctx)
				if want := tc.want.want(effect); d.Decision != want {
					t.Fatalf("decision = %s, want %s (%+v)", d.Decision, want, d)
				}
				if tc.want != stmtOpen && len(d.UnknownKeys) != 0 {
					t.Errorf("unknownKeys = %q, want none", d.UnknownKeys)
				}
			})
		}
	}
}
