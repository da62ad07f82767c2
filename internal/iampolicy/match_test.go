package iampolicy

import "testing"

func TestActionMatching(t *testing.T) {
	tests := map[string]struct {
		pattern, action string
		want            bool
	}{
		"an exact action matches":                      {"ecr:BatchGetImage", "ecr:BatchGetImage", true},
		"actions are case-insensitive":                 {"ECR:batchgetimage", "ecr:BatchGetImage", true},
		"a lone star matches every action":             {"*", "s3:GetObject", true},
		"a service star matches that service":          {"ecr:*", "ecr:BatchGetImage", true},
		"a service star does not match other services": {"ecr:*", "ecr-public:BatchGetImage", false},
		"a suffix star matches the end":                {"ecr:Batch*", "ecr:BatchGetImage", true},
		"an inner star matches a run":                  {"ecr:*Image", "ecr:BatchGetImage", true},
		"an inner star still needs the suffix":         {"ecr:*Image", "ecr:GetDownloadUrlForLayer", false},
		"a question mark matches one character":        {"ecr:BatchGetImag?", "ecr:BatchGetImage", true},
		"a question mark needs a character":            {"ecr:BatchGetImage?", "ecr:BatchGetImage", false},
		"a prefix is not a match":                      {"ecr:BatchGet", "ecr:BatchGetImage", false},
		"several stars backtrack":                      {"e*:*a*e", "ecr:BatchGetImage", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := statement{actions: []glob{compileGlob(tokenize(toLowerASCII(tc.pattern), false, true))}}
			if got := st.matchAction(toLowerASCII(tc.action)); got != tc.want {
				t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.action, got, tc.want)
			}
		})
	}
}

func TestResourceMatching(t *testing.T) {
	const repo = "arn:aws:ecr:us-west-2:111122223333:repository/app"
	tests := map[string]struct {
		pattern, resource string
		want              bool
	}{
		"an exact ARN matches":                           {repo, repo, true},
		"resources are case-sensitive":                   {"arn:aws:ecr:us-west-2:111122223333:repository/App", repo, false},
		"a lone star matches everything":                 {"*", repo, true},
		"a star in the region part":                      {"arn:aws:ecr:*:111122223333:repository/app", repo, true},
		"a star inside a part does not cross a colon":    {"arn:aws:ecr:us-*2:111122223333:repository/app", repo, true},
		"a mid-part star cannot reach another account":   {"arn:aws:ecr:us-*3:repository/app", repo, false},
		"a part-ending star expands over colons":         {"arn:aws:ecr:*", repo, true},
		"a part-ending star expands over the account":    {"arn:aws:ecr:*:repository/app", repo, true},
		"a question mark in the account part":            {"arn:aws:ecr:us-west-2:11112222333?:repository/app", repo, true},
		"a star in the resource part crosses slashes":    {"arn:aws:ecr:us-west-2:111122223333:repository/*", repo + "/nested", true},
		"a wrong account does not match":                 {"arn:aws:ecr:us-west-2:444455556666:repository/*", repo, false},
		"a request for * is matched only by *":           {"arn:aws:ecr:*:*:*", "*", false},
		"a star in the resource part matches colons":     {"arn:aws:logs:*:*:log-group:*", "arn:aws:logs:us-east-1:1:log-group:a:log-stream:b", true},
		"a non-ARN pattern against a non-ARN resource":   {"bucket*", "bucket-1", true},
		"a six-part pattern with colons in the resource": {"arn:aws:logs:*:1:log-group:a:*", "arn:aws:logs:us-east-1:1:log-group:a:log-stream:b", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ec := newEvalCtx(&Request{Principal: "arn:aws:iam::111122223333:role/Node", Resource: tc.resource})
			p := compileARNPattern(tc.pattern, true)
			var keys []string
			if got := p.matchARN(tc.resource, &ec.resParts, ec.resIsARN, ec, &keys); got != triOf(tc.want) {
				t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.resource, got, tc.want)
			}
		})
	}
}

func TestTokenize(t *testing.T) {
	tests := map[string]struct {
		in   string
		vars bool
		want string // literals as [text], wildcards as * and ?, variables as {key|default}
	}{
		"plain text":                        {"abc", true, "[abc]"},
		"a variable":                        {"a/${aws:username}/b", true, "[a/]{aws:username}[/b]"},
		"a variable with a default":         {"${aws:username, 'guest'}", true, "{aws:username|guest}"},
		"escapes are literal":               {"${*}${?}${$}", true, "[*?$]"},
		"variables off: text stays literal": {"${aws:username}", false, "[${aws:username}]"},
		"an unterminated variable is text":  {"${aws:username", true, "[${aws:username]"},
		"an empty variable is text":         {"${}", true, "[${}]"},
		"wildcards around a variable":       {"*${k}?", true, "*{k}?"},
		"a bad default is text":             {"${k, guest}", true, "[${k, guest}]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ""
			for _, tok := range tokenize(tc.in, tc.vars, true) {
				switch tok.op {
				case 'l':
					got += "[" + tok.lit + "]"
				case '$':
					got += "{" + tok.v.key
					if tok.v.hasDef {
						got += "|" + tok.v.def
					}
					got += "}"
				default:
					got += string(tok.op)
				}
			}
			if got != tc.want {
				t.Errorf("tokenize(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}
