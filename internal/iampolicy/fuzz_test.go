package iampolicy_test

import (
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

// fuzzSeeds are real policy shapes: managed policies, repository policies,
// conditions of every family, variables, and some broken documents.
var fuzzSeeds = []string{
	ecrReadOnly, ecrPullOnly, eksCNI, denyOutsideVpce, s3Logs, teamRepos, kmsDecrypt,
	`{"Version": "2012-10-17", "Statement": {"Sid": "new policy", "Effect": "Deny",
	  "Principal": {"AWS": "arn:aws:iam::1234567890:role/EksNodeGroupRole"},
	  "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}}`,
	`{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": [
	  "arn:aws:sts::111122223333:assumed-role/Node/i-1", "arn:aws:iam::111122223333:role/Node", "111122223333"]},
	  "NotAction": "ecr:Describe*", "NotResource": "arn:aws:ecr:*:*:repository/${aws:username, 'x'}"}]}`,
	`{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {
	  "ForAllValues:StringLikeIfExists": {"aws:PrincipalTag/team": ["a*", "b?"]},
	  "ForAnyValue:IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32", "1.2.3.4"]},
	  "DateGreaterThanEquals": {"aws:CurrentTime": ["2026-01-02", "2026-01-02T15:04:05.123+02:00", 1767225600]},
	  "NumericLessThan": {"aws:EpochTime": 1.5e9}, "Bool": {"aws:SecureTransport": true},
	  "BinaryEquals": {"k": "QmluYXJ5"}, "Null": {"aws:SourceArn": "true"},
	  "ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/${aws:PrincipalTag/x}"}}}]}`,
	`{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}`,
	`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*"}]}`,
	`{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "ecr:*", "NotResource": "*",
	  "Condition": {"ForAnyValue:StringNotEqualsIgnoreCaseIfExists": {"aws:PrincipalArn": "${aws:username}"}}}]}`,
	`{"Statement": [{"Effect": "Allow", "Action": ["ecr:*", "*:BatchGetImage"], "Resource": "*"}]}`,
	`{"Statement": [{"Effect": "Permit", "Action": "x"}]}`,
	`{"Statement": [{"Effect": "Allow", "Action": [], "Resource": {"a": 1}}]}`,
	`{"Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*", "Condition": {"StringEqualz": {"a": 1}}}]}`,
	`[1, 2]`, `null`, `{"Statement": "x"}`, `{"Version": "2012-10-17", "Statement": [], "Id": "x"}`, `{`, ``,
}

// FuzzParse: no input may make Parse or ParseAs panic.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := iampolicy.Parse(data)
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse returned policy %v and error %v", p, err)
		}
		for _, kind := range []iampolicy.Source{iampolicy.SourceIdentity, iampolicy.SourceResource,
			iampolicy.SourceBoundary, iampolicy.SourceSCP, iampolicy.SourceRCP} {
			kp, kerr := iampolicy.ParseAs(data, kind)
			if err != nil && kerr == nil {
				t.Fatalf("ParseAs(%s) accepted what Parse rejected (%v)", kind, err)
			}
			if (kp == nil) == (kerr == nil) {
				t.Fatalf("ParseAs(%s) returned policy %v and error %v", kind, kp, kerr)
			}
		}
	})
}

// FuzzEvaluate: any parsed policy, used in every role, with any action and
// resource strings, must give one of the four outcomes without panicking.
func FuzzEvaluate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "ecr:BatchGetImage", "arn:aws:ecr:us-west-2:111122223333:repository/app", "vpce-1")
		f.Add([]byte(s), "ECR:batchgetimage", "*", "")
	}
	f.Add([]byte(fuzzSeeds[0]), "s3:Get?bject", "arn:aws:s3:::b:c/d:e", "10.0.0.1")
	principals := []string{
		"arn:aws:iam::111122223333:role/Node",
		"arn:aws:sts::111122223333:assumed-role/Node/i-1",
		"arn:aws:iam::444455556666:user/u",
		"arn:aws:iam::111122223333:root",
		"not-an-arn",
	}
	f.Fuzz(func(t *testing.T, doc []byte, action, resource, ctxValue string) {
		p, err := iampolicy.Parse(doc)
		if err != nil {
			return
		}
		np := iampolicy.NamedPolicy{Name: "fuzz", Policy: p}
		set := iampolicy.PolicySet{
			Identity: []iampolicy.NamedPolicy{np},
			Boundary: &np,
			Resource: &np,
			SCPs:     [][]iampolicy.NamedPolicy{{np}},
			RCPs:     [][]iampolicy.NamedPolicy{{np}, {}},
		}
		ctx := map[string][]string{"aws:SourceVpce": {ctxValue}, "aws:PrincipalTag/team": {ctxValue, "a"},
			"aws:SourceIp": {ctxValue}, "aws:username": nil}
		for _, principal := range principals {
			for _, now := range []time.Time{{}, time.Unix(1767225600, 0)} {
				req := iampolicy.Request{Principal: principal, Action: action, Resource: resource, Context: ctx, Now: now}
				d := iampolicy.Evaluate(req, set)
				switch d.Decision {
				case iampolicy.Allow, iampolicy.ExplicitDeny, iampolicy.ImplicitDeny, iampolicy.Undetermined:
				default:
					t.Fatalf("Evaluate returned outcome %q", d.Decision)
				}
				if d.Reasons == nil || d.UnknownKeys == nil {
					t.Fatalf("Evaluate returned nil Reasons or UnknownKeys: %+v", d)
				}
				if d.Decision == iampolicy.Undetermined && len(d.UnknownKeys) == 0 {
					t.Fatalf("undetermined without unknown keys: %+v", d)
				}
			}
		}
	})
}
