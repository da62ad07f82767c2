package iampolicy_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

const (
	acct    = "111122223333"
	session = "arn:aws:sts::111122223333:assumed-role/Node/i-0abc"
	role    = "arn:aws:iam::111122223333:role/Node"
	repo    = "arn:aws:ecr:us-west-2:111122223333:repository/app"
)

var testNow = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// evalCondition evaluates one identity Allow statement carrying condition
// (the JSON of a Condition element): allow means the condition held,
// implicit-deny that it did not, undetermined that it is unknown.
func evalCondition(t *testing.T, version, condition string, ctx map[string][]string) iampolicy.Decision {
	t.Helper()
	doc := `{"Statement": [{"Sid": "C", "Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*", "Condition": ` + condition + `}]`
	if version != "" {
		doc += `, "Version": "` + version + `"`
	}
	doc += "}"
	p, err := iampolicy.ParseAs([]byte(doc), iampolicy.SourceIdentity)
	if err != nil {
		t.Fatalf("parsing %s: %v", doc, err)
	}
	req := iampolicy.Request{Principal: session, Action: "ecr:BatchGetImage", Resource: repo, Context: ctx, Now: testNow}
	return iampolicy.Evaluate(req, iampolicy.PolicySet{Identity: []iampolicy.NamedPolicy{{Name: "P", Policy: p}}})
}

const (
	holds   = iampolicy.Allow
	fails   = iampolicy.ImplicitDeny
	unknown = iampolicy.Undetermined
)

func TestConditionOperators(t *testing.T) {
	tags := map[string][]string{"aws:PrincipalTag/team": {"a", "b"}}
	tests := map[string]struct {
		condition string
		ctx       map[string][]string
		want      iampolicy.Outcome
		wantKeys  []string
	}{
		// Strings.
		"StringEquals matches one of the policy values": {`{"StringEquals": {"aws:SourceVpce": ["vpce-1", "vpce-2"]}}`, map[string][]string{"aws:SourceVpce": {"vpce-2"}}, holds, nil},
		"StringEquals is case-sensitive":                {`{"StringEquals": {"aws:SourceVpce": "VPCE-1"}}`, map[string][]string{"aws:SourceVpce": {"vpce-1"}}, fails, nil},
		"condition keys are case-insensitive":           {`{"StringEquals": {"AWS:SOURCEVPCE": "vpce-1"}}`, map[string][]string{"aws:sourcevpce": {"vpce-1"}}, holds, nil},
		"StringEqualsIgnoreCase folds case":             {`{"StringEqualsIgnoreCase": {"aws:SourceVpce": "VPCE-1"}}`, map[string][]string{"aws:SourceVpce": {"vpce-1"}}, holds, nil},
		"StringNotEquals holds for another value":       {`{"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}`, map[string][]string{"aws:SourceVpce": {"vpce-9"}}, holds, nil},
		"StringNotEquals on an absent key holds":        {`{"StringNotEquals": {"aws:SourceArn": "x"}}`, nil, holds, nil},
		"StringEquals on an absent key fails":           {`{"StringEquals": {"aws:SourceArn": "x"}}`, nil, fails, nil},
		"a context null makes a key absent":             {`{"StringEquals": {"aws:SourceVpce": "x"}}`, map[string][]string{"aws:SourceVpce": nil}, fails, nil},
		"StringEquals on an unknown key is unknown":     {`{"StringEquals": {"aws:SourceVpce": "x"}}`, nil, unknown, []string{"aws:SourceVpce"}},
		"IfExists on an unknown key is still unknown":   {`{"StringEqualsIfExists": {"aws:SourceVpce": "x"}}`, nil, unknown, []string{"aws:SourceVpce"}},
		"IfExists on an absent key holds":               {`{"StringEqualsIfExists": {"aws:SourceAccount": "x"}}`, nil, holds, nil},
		"IfExists on a present key compares":            {`{"StringEqualsIfExists": {"aws:SourceVpce": "x"}}`, map[string][]string{"aws:SourceVpce": {"y"}}, fails, nil},
		"StringLike with a star":                        {`{"StringLike": {"aws:SourceVpce": "vpce-*"}}`, map[string][]string{"aws:SourceVpce": {"vpce-0abc"}}, holds, nil},
		"StringNotLike with a question mark":            {`{"StringNotLike": {"aws:SourceVpce": "vpce-?"}}`, map[string][]string{"aws:SourceVpce": {"vpce-12"}}, holds, nil},
		"a JSON number is compared as its text":         {`{"StringEquals": {"aws:PrincipalTag/n": 42}}`, map[string][]string{"aws:PrincipalTag/n": {"42"}}, holds, nil},
		"a JSON boolean is compared as its text":        {`{"StringEquals": {"aws:PrincipalTag/b": true}}`, map[string][]string{"aws:PrincipalTag/b": {"true"}}, holds, nil},
		// Multi-valued keys and set operators.
		"a plain operator on a multi-valued key holds when any value matches":    {`{"StringEquals": {"aws:PrincipalTag/team": "b"}}`, tags, holds, nil},
		"a negated plain operator on a multi-valued key needs no value to match": {`{"StringNotEquals": {"aws:PrincipalTag/team": "b"}}`, tags, fails, nil},
		"ForAnyValue holds when one value matches":                               {`{"ForAnyValue:StringEquals": {"aws:PrincipalTag/team": ["b", "c"]}}`, tags, holds, nil},
		"ForAnyValue fails when none matches":                                    {`{"ForAnyValue:StringEquals": {"aws:PrincipalTag/team": ["c"]}}`, tags, fails, nil},
		"ForAllValues holds when every value is in the set":                      {`{"ForAllValues:StringEquals": {"aws:PrincipalTag/team": ["a", "b", "c"]}}`, tags, holds, nil},
		"ForAllValues fails when one value is outside the set":                   {`{"ForAllValues:StringEquals": {"aws:PrincipalTag/team": ["a"]}}`, tags, fails, nil},
		"ForAllValues on an absent key holds":                                    {`{"ForAllValues:StringEquals": {"aws:CalledVia": ["x"]}}`, nil, holds, nil},
		"ForAnyValue on an absent key fails":                                     {`{"ForAnyValue:StringEquals": {"aws:CalledVia": ["x"]}}`, nil, fails, nil},
		"ForAnyValue with a negated operator holds when one value differs":       {`{"ForAnyValue:StringNotEquals": {"aws:PrincipalTag/team": ["a"]}}`, tags, holds, nil},
		"ForAllValues with a negated operator fails when one value is listed":    {`{"ForAllValues:StringNotEquals": {"aws:PrincipalTag/team": ["a"]}}`, tags, fails, nil},
		"ForAllValues on an unknown key is unknown":                              {`{"ForAllValues:StringEquals": {"aws:PrincipalTag/x": ["a"]}}`, nil, unknown, []string{"aws:PrincipalTag/x"}},
		// Null.
		"Null true on an absent key holds":  {`{"Null": {"aws:SourceArn": "true"}}`, nil, holds, nil},
		"Null false on an absent key fails": {`{"Null": {"aws:SourceArn": "false"}}`, nil, fails, nil},
		"Null false on a present key holds": {`{"Null": {"aws:SourceVpce": "false"}}`, map[string][]string{"aws:SourceVpce": {"v"}}, holds, nil},
		"Null on an unknown key is unknown": {`{"Null": {"aws:SourceVpce": "true"}}`, nil, unknown, []string{"aws:SourceVpce"}},
		// Numbers.
		"NumericLessThan":                         {`{"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}`, map[string][]string{"aws:MultiFactorAuthAge": {"60"}}, holds, nil},
		"NumericGreaterThanEquals at the bound":   {`{"NumericGreaterThanEquals": {"s3:max-keys": 10}}`, map[string][]string{"s3:max-keys": {"10"}}, holds, nil},
		"NumericEquals compares numbers not text": {`{"NumericEquals": {"s3:max-keys": "10"}}`, map[string][]string{"s3:max-keys": {"10.0"}}, holds, nil},
		"NumericNotEquals":                        {`{"NumericNotEquals": {"s3:max-keys": "10"}}`, map[string][]string{"s3:max-keys": {"10"}}, fails, nil},
		"a non-number request value is false":     {`{"NumericLessThan": {"s3:max-keys": "10"}}`, map[string][]string{"s3:max-keys": {"ten"}}, fails, nil},
		// Dates.
		"DateLessThan with currentTime":            {`{"DateLessThan": {"aws:CurrentTime": "2026-02-01T00:00:00Z"}}`, nil, holds, nil},
		"DateGreaterThan with a plain date":        {`{"DateGreaterThan": {"aws:CurrentTime": "2026-01-16"}}`, nil, fails, nil},
		"DateGreaterThan with an offset":           {`{"DateGreaterThan": {"aws:CurrentTime": "2026-01-15T13:30:00+02:00"}}`, nil, holds, nil},
		"DateLessThanEquals with epoch seconds":    {`{"DateLessThanEquals": {"aws:CurrentTime": "1768478400"}}`, nil, holds, nil},
		"DateEquals on aws:EpochTime":              {`{"DateEquals": {"aws:EpochTime": "2026-01-15T12:00:00Z"}}`, nil, holds, nil},
		"DateNotEquals with fractional seconds":    {`{"DateNotEquals": {"aws:CurrentTime": "2026-01-15T12:00:00.000Z"}}`, nil, fails, nil},
		"a date on aws:TokenIssueTime is unknown":  {`{"DateGreaterThan": {"aws:TokenIssueTime": "2026-01-01"}}`, nil, unknown, []string{"aws:TokenIssueTime"}},
		"Bool is case-insensitive":                 {`{"Bool": {"aws:SecureTransport": "TRUE"}}`, nil, holds, nil},
		"Bool false against aws:ViaAWSService":     {`{"Bool": {"aws:ViaAWSService": false}}`, nil, holds, nil},
		"Bool on an absent key fails":              {`{"Bool": {"aws:MultiFactorAuthPresent": "true"}}`, nil, fails, nil},
		"BoolIfExists on an absent key holds":      {`{"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}`, nil, holds, nil},
		"BinaryEquals compares base64 text":        {`{"BinaryEquals": {"k:bin": "QmluYXJ5"}}`, map[string][]string{"k:bin": {"QmluYXJ5"}}, holds, nil},
		"IpAddress in a CIDR":                      {`{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}`, map[string][]string{"aws:SourceIp": {"203.0.113.7"}}, holds, nil},
		"IpAddress with a single address":          {`{"IpAddress": {"aws:SourceIp": "203.0.113.7"}}`, map[string][]string{"aws:SourceIp": {"203.0.113.8"}}, fails, nil},
		"IpAddress with IPv6":                      {`{"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}`, map[string][]string{"aws:SourceIp": {"2001:db8::1"}}, holds, nil},
		"NotIpAddress outside the CIDR":            {`{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, map[string][]string{"aws:SourceIp": {"192.0.2.1"}}, holds, nil},
		"NotIpAddress on an absent key holds":      {`{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, map[string][]string{"aws:SourceIp": nil}, holds, nil},
		"an unparsable request IP is false":        {`{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, map[string][]string{"aws:SourceIp": {"ten"}}, fails, nil},
		"ArnLike on aws:PrincipalArn":              {`{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/No?e"}}`, nil, holds, nil},
		"ArnEquals takes wildcards too":            {`{"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}`, nil, holds, nil},
		"ArnNotEquals on another role":             {`{"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/Other"}}`, nil, holds, nil},
		"ArnNotLike on the principal's role":       {`{"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/N*"}}`, nil, fails, nil},
		"ArnLike on an absent key fails":           {`{"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}}`, nil, fails, nil},
		"aws:ResourceAccount comes from the ARN":   {`{"StringEquals": {"aws:ResourceAccount": "111122223333"}}`, nil, holds, nil},
		"aws:RequestedRegion comes from the ARN":   {`{"StringEquals": {"aws:RequestedRegion": "us-west-2"}}`, nil, holds, nil},
		"aws:PrincipalType of a session":           {`{"StringEquals": {"aws:PrincipalType": "AssumedRole"}}`, nil, holds, nil},
		"the context overrides a derived key":      {`{"StringEquals": {"aws:RequestedRegion": "us-west-2"}}`, map[string][]string{"aws:requestedregion": {"eu-west-1"}}, fails, nil},
		"all operator blocks must hold":            {`{"StringEquals": {"aws:RequestedRegion": "us-west-2"}, "Bool": {"aws:SecureTransport": "false"}}`, nil, fails, nil},
		"all keys under one operator must hold":    {`{"StringEquals": {"aws:RequestedRegion": "us-west-2", "aws:PrincipalAccount": "9"}}`, nil, fails, nil},
		"a false condition settles an unknown one": {`{"StringEquals": {"aws:SourceVpce": "x", "aws:PrincipalAccount": "9"}}`, nil, fails, nil},
		"unknown keys are reported as spelled":     {`{"StringEquals": {"AWS:SourceVPCE": "x"}, "StringLike": {"aws:PrincipalOrgID": "o-*"}}`, nil, unknown, []string{"aws:PrincipalOrgID", "AWS:SourceVPCE"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := evalCondition(t, "2012-10-17", tc.condition, tc.ctx)
			if d.Decision != tc.want {
				t.Fatalf("decision = %s, want %s (%+v)", d.Decision, tc.want, d)
			}
			if tc.wantKeys == nil {
				tc.wantKeys = []string{}
			}
			if !slices.Equal(d.UnknownKeys, tc.wantKeys) {
				t.Errorf("unknownKeys = %q, want %q", d.UnknownKeys, tc.wantKeys)
			}
		})
	}
}

func TestPolicyVariables(t *testing.T) {
	tests := map[string]struct {
		version, condition string
		ctx                map[string][]string
		want               iampolicy.Outcome
		wantKeys           []string
	}{
		"a variable takes the key's value": {"2012-10-17", `{"StringEquals": {"aws:PrincipalTag/acct": "${aws:PrincipalAccount}"}}`,
			map[string][]string{"aws:PrincipalTag/acct": {acct}}, holds, nil},
		"a variable inside a StringLike pattern is literal text": {"2012-10-17", `{"StringLike": {"aws:PrincipalTag/p": "${aws:PrincipalTag/q}/*"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"a*b/c"}, "aws:PrincipalTag/q": {"a*b"}}, holds, nil},
		"a substituted star does not act as a wildcard": {"2012-10-17", `{"StringLike": {"aws:PrincipalTag/p": "${aws:PrincipalTag/q}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"anything"}, "aws:PrincipalTag/q": {"*"}}, fails, nil},
		"${*} is a literal star": {"2012-10-17", `{"StringEquals": {"aws:PrincipalTag/p": "a${*}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"a*"}}, holds, nil},
		"${?} is a literal question mark in StringLike": {"2012-10-17", `{"StringLike": {"aws:PrincipalTag/p": "a${?}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"ab"}}, fails, nil},
		"${$} is a literal dollar": {"2012-10-17", `{"StringEquals": {"aws:PrincipalTag/p": "${$}{x}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"${x}"}}, holds, nil},
		"an absent key takes the default": {"2012-10-17", `{"StringEquals": {"aws:PrincipalTag/p": "${aws:username, 'none'}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"none"}}, holds, nil},
		"an absent key without default matches nothing": {"2012-10-17", `{"StringEquals": {"aws:PrincipalTag/p": "${aws:username}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {""}}, fails, nil},
		"an absent variable under a negated operator: the statement does not apply": {"2012-10-17", `{"StringNotEquals": {"aws:PrincipalTag/p": "${aws:username}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"x"}}, fails, nil},
		"an unknown variable key makes the condition unknown": {"2012-10-17", `{"StringEquals": {"aws:PrincipalTag/p": "${aws:PrincipalTag/q}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"x"}}, unknown, []string{"aws:PrincipalTag/q"}},
		"both the condition key and the variable key are reported": {"2012-10-17", `{"StringEquals": {"ecr:ResourceTag/team": "${aws:PrincipalTag/team}"}}`,
			nil, unknown, []string{"aws:PrincipalTag/team", "ecr:ResourceTag/team"}},
		"a multi-valued key is not substituted": {"2012-10-17", `{"StringEquals": {"aws:PrincipalTag/p": "${aws:PrincipalTag/q}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"a"}, "aws:PrincipalTag/q": {"a", "b"}}, fails, nil},
		"under 2008-10-17 a variable is literal text": {"2008-10-17", `{"StringEquals": {"aws:PrincipalTag/p": "${aws:PrincipalAccount}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {"${aws:PrincipalAccount}"}}, holds, nil},
		"without Version a variable is literal text": {"", `{"StringEquals": {"aws:PrincipalTag/p": "${aws:PrincipalAccount}"}}`,
			map[string][]string{"aws:PrincipalTag/p": {acct}}, fails, nil},
		"a variable in a Bool value is substituted": {"2012-10-17", `{"Bool": {"aws:SecureTransport": "${aws:PrincipalTag/tls}"}}`,
			map[string][]string{"aws:PrincipalTag/tls": {"true"}}, holds, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := evalCondition(t, tc.version, tc.condition, tc.ctx)
			if d.Decision != tc.want {
				t.Fatalf("decision = %s, want %s (%+v)", d.Decision, tc.want, d)
			}
			if tc.wantKeys == nil {
				tc.wantKeys = []string{}
			}
			if !slices.Equal(d.UnknownKeys, tc.wantKeys) {
				t.Errorf("unknownKeys = %q, want %q", d.UnknownKeys, tc.wantKeys)
			}
		})
	}
}
