package iampolicy_test

import (
	"strings"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

func TestParseErrors(t *testing.T) {
	const (
		allow = `"Effect": "Allow", "Action": "ecr:*", "Resource": "*"`
	)
	tests := map[string]struct {
		kind    iampolicy.Source // "" for Parse
		doc     string
		wantErr string // "" for success
	}{
		"a minimal policy parses":                      {"", `{"Statement": []}`, ""},
		"a lone statement object parses":               {"", `{"Version": "2012-10-17", "Statement": {` + allow + `}}`, ""},
		"2008-10-17 is accepted":                       {"", `{"Version": "2008-10-17", "Statement": []}`, ""},
		"not JSON":                                     {"", `{"Statement": [`, "invalid JSON"},
		"not an object":                                {"", `[]`, "must be an object, got array"},
		"an unknown version":                           {"", `{"Version": "2012-10-18", "Statement": []}`, `Version: must be "2012-10-17" or "2008-10-17", got "2012-10-18"`},
		"a missing Statement":                          {"", `{"Version": "2012-10-17"}`, "Statement: required"},
		"an unknown top-level field":                   {"", `{"Statement": [], "Statements": []}`, "Statements: unknown field"},
		"an unknown statement field":                   {"", `{"Statement": [{` + allow + `, "Conditions": {}}]}`, "Statement[0].Conditions: unknown field"},
		"Effect is case-sensitive":                     {"", `{"Statement": [{"Effect": "allow", "Action": "a:b"}]}`, `Statement[0].Effect: must be "Allow" or "Deny", got "allow"`},
		"Effect is required":                           {"", `{"Statement": [{"Action": "a:b"}]}`, "Statement[0].Effect: required"},
		"Action or NotAction is required":              {"", `{"Statement": [{"Effect": "Allow"}]}`, "Statement[0]: one of Action or NotAction is required"},
		"Action and NotAction together":                {"", `{"Statement": [{"Effect": "Allow", "Action": "a:b", "NotAction": "c:d"}]}`, "Action and NotAction are mutually exclusive"},
		"Resource and NotResource together":            {"", `{"Statement": [{` + allow + `, "NotResource": "*"}]}`, "Resource and NotResource are mutually exclusive"},
		"an empty Action":                              {"", `{"Statement": [{"Effect": "Allow", "Action": ""}]}`, "Statement[0].Action: must not be empty"},
		"an empty Action array":                        {"", `{"Statement": [{"Effect": "Allow", "Action": []}]}`, "Statement[0].Action: must not be empty"},
		"a number in an Action array":                  {"", `{"Statement": [{"Effect": "Allow", "Action": ["a:b", 1]}]}`, "Statement[0].Action[1]: must be a string, got number"},
		"an unknown operator":                          {"", `{"Statement": [{` + allow + `, "Condition": {"StringEqualz": {"aws:k": "v"}}}]}`, `Statement[0].Condition: unknown operator "StringEqualz"`},
		"NullIfExists is not an operator":              {"", `{"Statement": [{` + allow + `, "Condition": {"NullIfExists": {"aws:k": "true"}}}]}`, `unknown operator "NullIfExists"`},
		"an unknown set qualifier":                     {"", `{"Statement": [{` + allow + `, "Condition": {"ForSomeValues:StringEquals": {"aws:k": "v"}}}]}`, `unknown operator`},
		"a non-number under Numeric":                   {"", `{"Statement": [{` + allow + `, "Condition": {"NumericLessThan": {"aws:k": "ten"}}}]}`, `Statement[0].Condition.NumericLessThan.aws:k: value "ten" is not a number`},
		"a non-date under Date":                        {"", `{"Statement": [{` + allow + `, "Condition": {"DateLessThan": {"aws:k": "tomorrow"}}}]}`, `is not a date`},
		"a non-boolean under Bool":                     {"", `{"Statement": [{` + allow + `, "Condition": {"Bool": {"aws:k": "yes"}}}]}`, `is not "true" or "false"`},
		"a bad CIDR under IpAddress":                   {"", `{"Statement": [{` + allow + `, "Condition": {"IpAddress": {"aws:k": "10.0.0.0/33"}}}]}`, `is not an IP address or CIDR`},
		"a non-base64 value under BinaryEquals":        {"", `{"Statement": [{` + allow + `, "Condition": {"BinaryEquals": {"aws:k": "%%"}}}]}`, `is not base64`},
		"an object as a condition value":               {"", `{"Statement": [{` + allow + `, "Condition": {"StringEquals": {"aws:k": {"a": 1}}}}]}`, `Statement[0].Condition.StringEquals.aws:k: must be a string, number or boolean, got object`},
		"an unknown principal type":                    {"resource", `{"Statement": [{` + allow + `, "Principal": {"IAM": "x"}}]}`, "Statement[0].Principal.IAM: unknown field"},
		"a Principal string other than *":              {"resource", `{"Statement": [{` + allow + `, "Principal": "arn:aws:iam::1:root"}]}`, `Statement[0].Principal: must be "*" or an object`},
		"Principal and NotPrincipal together":          {"resource", `{"Statement": [{` + allow + `, "Principal": "*", "NotPrincipal": "*"}]}`, "Principal and NotPrincipal are mutually exclusive"},
		"an identity policy must not name a Principal": {"identity", `{"Statement": [{` + allow + `, "Principal": "*"}]}`, "Statement[0].Principal: prohibited field in an identity policy"},
		"a boundary must not name a NotPrincipal":      {"boundary", `{"Statement": [{` + allow + `, "NotPrincipal": {"AWS": "1"}}]}`, "Statement[0].NotPrincipal: prohibited field in a permissions boundary"},
		"an SCP must not name a Principal":             {"scp", `{"Statement": [{` + allow + `, "Principal": "*"}]}`, "prohibited field in a service control policy"},
		"an identity policy needs a Resource":          {"identity", `{"Statement": [{"Effect": "Allow", "Action": "a:b"}]}`, "Statement[0]: one of Resource or NotResource is required"},
		"a resource policy needs a Principal":          {"resource", `{"Statement": [{` + allow + `}]}`, "Statement[0]: one of Principal or NotPrincipal is required"},
		"an RCP needs a Principal":                     {"rcp", `{"Statement": [{` + allow + `}]}`, "one of Principal or NotPrincipal is required"},
		"a resource policy may omit Resource":          {"resource", `{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "a:b"}]}`, ""},
		"an SCP may omit Resource":                     {"scp", `{"Statement": [{"Effect": "Allow", "Action": "*"}]}`, ""},
		"duplicate Sids are allowed":                   {"", `{"Statement": [{"Sid": "A", ` + allow + `}, {"Sid": "A", ` + allow + `}]}`, ""},
		"duplicate Sids in an identity policy":         {"identity", `{"Statement": [{"Sid": "A", ` + allow + `}, {"Sid": "A", ` + allow + `}]}`, `Statement[1].Sid: "A" is also the Sid of Statement[0]; Sids must be unique in an identity policy`},
		"a Sid with a space in an identity policy":     {"identity", `{"Statement": [{"Sid": "allow pull", ` + allow + `}]}`, `Statement[0].Sid: must contain only A-Z, a-z and 0-9 in an identity policy, got "allow pull"`},
		"a Sid with a dash in a boundary":              {"boundary", `{"Statement": [{"Sid": "allow-pull", ` + allow + `}]}`, `must contain only A-Z, a-z and 0-9 in a permissions boundary`},
		"a repository policy Sid may have spaces":      {"resource", `{"Statement": [{"Sid": "new policy", "Effect": "Deny", "Principal": "*", "Action": "ecr:*"}]}`, ""},
		"a key given twice":                            {"", `{"Statement": [{"Effect": "Allow", "Effect": "Deny", "Action": "a:b"}]}`, "Statement[0].Effect: duplicate key"},
		"an operator given twice":                      {"", `{"Statement": [{` + allow + `, "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}, "StringEquals": {"aws:SourceVpce": "vpce-1"}}}]}`, "Statement[0].Condition.StringEquals: duplicate key"},
		"a policy variable under Date":                 {"", `{"Version": "2012-10-17", "Statement": [{` + allow + `, "Condition": {"DateLessThan": {"aws:CurrentTime": "${aws:PrincipalTag/expires}"}}}]}`, `Statement[0].Condition.DateLessThan.aws:CurrentTime: value "${aws:PrincipalTag/expires}": AWS supports policy variables only with String, ARN and Bool operators`},
		"a policy variable under Numeric":              {"", `{"Version": "2012-10-17", "Statement": [{` + allow + `, "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "${aws:PrincipalTag/age}"}}}]}`, "policy variables only with String, ARN and Bool"},
		"a policy variable under IpAddress":            {"", `{"Version": "2012-10-17", "Statement": [{` + allow + `, "Condition": {"IpAddress": {"aws:SourceIp": "${aws:PrincipalTag/cidr}"}}}]}`, "policy variables only with String, ARN and Bool"},
		"a policy variable under Null":                 {"", `{"Version": "2012-10-17", "Statement": [{` + allow + `, "Condition": {"Null": {"aws:SourceIp": "${aws:PrincipalTag/n}"}}}]}`, "policy variables only with String, ARN and Bool"},
		"text after the document":                      {"", `{"Statement": []} {}`, "invalid JSON"},
		"an action without its service":                {"", `{"Statement": [{"Effect": "Allow", "Action": "BatchGetImage", "Resource": "*"}]}`, `Statement[0].Action: must be "*" or SERVICE:ACTION (e.g. ecr:BatchGetImage), got "BatchGetImage"`},
		"an action without its service in an array":    {"", `{"Statement": [{"Effect": "Allow", "NotAction": ["ecr:*", ":Get"], "Resource": "*"}]}`, `Statement[0].NotAction[1]: must be "*" or SERVICE:ACTION`},
		"a condition key without its service":          {"", `{"Statement": [{` + allow + `, "Condition": {"StringEquals": {"SourceVpce": "v"}}}]}`, "Statement[0].Condition.StringEquals.SourceVpce: a condition key must start with its service"},
		"NotPrincipal with Allow":                      {"resource", `{"Statement": [{` + allow + `, "NotPrincipal": {"AWS": "1"}}]}`, `Statement[0].NotPrincipal: is supported only with "Effect": "Deny"`},
		"a Sid must be a string":                       {"", `{"Statement": [{"Sid": 1, ` + allow + `}]}`, "Statement[0].Sid: must be a string, got number"},
		"the lone-statement path has no index":         {"", `{"Statement": {"Effect": "Deny"}}`, "Statement: one of Action or NotAction is required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var err error
			if tc.kind == "" {
				_, err = iampolicy.Parse([]byte(tc.doc))
			} else {
				_, err = iampolicy.ParseAs([]byte(tc.doc), tc.kind)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseEvalRequestErrors(t *testing.T) {
	const base = `"principal": "arn:aws:iam::111122223333:role/Node", "action": "ecr:BatchGetImage", "resource": "*"`
	tests := map[string]struct {
		body    string
		wantErr string
	}{
		"principal is required":       {`{"action": "ecr:BatchGetImage", "resource": "*"}`, "principal: required"},
		"action is required":          {`{"principal": "arn:aws:iam::1:role/N", "resource": "*"}`, "action: required"},
		"resource is required":        {`{"principal": "arn:aws:iam::1:role/N", "action": "a:b"}`, "resource: required"},
		"principal must be an ARN":    {`{"principal": "Node", "action": "a:b", "resource": "*"}`, "principal: must be an IAM"},
		"action must be service:name": {`{"principal": "arn:aws:iam::1:role/N", "action": "BatchGetImage", "resource": "*"}`, "action: must be service:Action"},
		"an unknown field":            {`{` + base + `, "identityPolicy": []}`, "identityPolicy: unknown field"},
		"a bad currentTime":           {`{` + base + `, "currentTime": "yesterday"}`, "currentTime: must be an RFC 3339 time"},
		"a context object value":      {`{` + base + `, "context": {"aws:k": {"a": 1}}}`, `context["aws:k"]: must be a string, an array of strings or null`},
		"keys differing only in case": {`{` + base + `, "context": {"aws:SourceIp": "1.2.3.4", "AWS:SOURCEIP": "5.6.7.8"}}`, "keys are case-insensitive"},
		"an identity policy error is prefixed": {`{` + base + `, "identityPolicies": [{"name": "a", "document": {"Statement": []}}, {"name": "b", "document": {"Statement": [{"Effect": "Permit", "Action": "a:b", "Resource": "*"}]}}]}`,
			`identityPolicies[1].document.Statement[0].Effect: must be "Allow" or "Deny", got "Permit"`},
		"a bare resource policy error is prefixed": {`{` + base + `, "resourcePolicy": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "a:b", "Condition": {"StringEqualz": {}}}]}}`,
			`resourcePolicy.Statement[0].Condition: unknown operator "StringEqualz"`},
		"an SCP error names its level": {`{` + base + `, "serviceControlPolicies": [[], [{"Statement": [{"Effect": "Allow", "Action": "*", "Principal": "*"}]}]]}`,
			"serviceControlPolicies[1][0].Statement[0].Principal: prohibited field"},
		"an RCP level must be an array": {`{` + base + `, "resourceControlPolicies": [{"Statement": []}]}`, "resourceControlPolicies[0]: must be an array"},
		"a boundary must be an object":  {`{` + base + `, "permissionsBoundary": "B"}`, "permissionsBoundary: must be an object"},
		"a named policy with extra fields": {`{` + base + `, "identityPolicies": [{"name": "a", "document": {"Statement": []}, "arn": "x"}]}`,
			"identityPolicies[0].arn: unknown field"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := iampolicy.ParseEvalRequest([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseEvalRequestNames(t *testing.T) {
	body := `{"principal": "arn:aws:iam::111122223333:role/Node", "action": "ecr:BatchGetImage", "resource": "*",
	  "context": {"aws:SourceIp": null, "aws:PrincipalTag/t": ["a", "b"], "aws:SourceVpce": "v"},
	  "resourcePolicy": {"Statement": []},
	  "permissionsBoundary": {"document": {"Statement": []}},
	  "serviceControlPolicies": [[{"Statement": []}, {"name": "Named", "document": {"Statement": []}}]],
	  "resourceControlPolicies": [[], [{"Statement": []}]]}`
	req, set, err := iampolicy.ParseEvalRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"resource policy default name": {set.Resource.Name, iampolicy.DefaultResourcePolicyName},
		"boundary default name":        {set.Boundary.Name, iampolicy.DefaultBoundaryName},
		"unnamed SCP":                  {set.SCPs[0][0].Name, "scp[0][0]"},
		"named SCP":                    {set.SCPs[0][1].Name, "Named"},
		"unnamed RCP on level 1":       {set.RCPs[1][0].Name, "rcp[1][0]"},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", what, c[0], c[1])
		}
	}
	if v, ok := req.Context["aws:SourceIp"]; !ok || v != nil {
		t.Errorf("context null = %q (present %v), want a nil slice", v, ok)
	}
	if got := req.Context["aws:PrincipalTag/t"]; len(got) != 2 {
		t.Errorf("context array = %q, want two values", got)
	}
	if !req.Now.IsZero() {
		t.Errorf("Now = %v, want zero without currentTime", req.Now)
	}
	if len(set.RCPs[0]) != 0 {
		t.Errorf("empty RCP level = %v, want empty", set.RCPs[0])
	}
}

func TestShape(t *testing.T) {
	p, err := iampolicy.ParseAs([]byte(`{"Version": "2012-10-17", "Statement": [
		{"Sid": "Named", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::1:role/R"}, "Action": "ecr:*"},
		{"Effect": "Deny", "Principal": {"AWS": "*"}, "NotAction": "ecr:Describe*",
		 "Condition": {"StringNotEquals": {"aws:SourceVpce": "v"}, "Null": {"aws:SourceVpce": "false", "aws:SourceIp": "false"}}}]}`), iampolicy.SourceResource)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := p.Shape("Named"); !ok || got.AnyPrincipal || got.NotAction || len(got.ConditionKeys) != 0 {
		t.Errorf("Shape(Named) = %+v, %v; want a plain statement", got, ok)
	}
	got, ok := p.Shape("#1")
	if !ok || !got.AnyPrincipal || !got.NotAction || strings.Join(got.ConditionKeys, ",") != "aws:SourceIp,aws:SourceVpce" {
		t.Errorf("Shape(#1) = %+v, %v; want NotAction, any principal, keys aws:SourceIp,aws:SourceVpce", got, ok)
	}
	if _, ok := p.Shape("Missing"); ok {
		t.Error("Shape(Missing) found a statement")
	}
}
