package awsclient

import (
	"strings"
	"testing"
)

func TestParseRoleARN(t *testing.T) {
	tests := map[string]struct {
		in   string
		want RoleARN
		err  bool
	}{
		"a role":                   {in: "arn:aws:iam::123456789012:role/Node", want: RoleARN{Partition: "aws", Account: "123456789012", Name: "Node", Path: "/"}},
		"a role with a path":       {in: "arn:aws-cn:iam::1234567890:role/eks/nodes/Node", want: RoleARN{Partition: "aws-cn", Account: "1234567890", Name: "Node", Path: "/eks/nodes/"}},
		"a session names the role": {in: "arn:aws:sts::123456789012:assumed-role/Node/i-0abc", want: RoleARN{Partition: "aws", Account: "123456789012", Name: "Node", Session: "i-0abc"}},
		"a user is not a role":     {in: "arn:aws:iam::123456789012:user/alice", err: true},
		"not an ARN":               {in: "Node", err: true},
		"a letter in the account":  {in: "arn:aws:iam::12345678901x:role/Node", err: true},
		"a region in an IAM ARN":   {in: "arn:aws:iam:us-west-2:123456789012:role/Node", err: true},
		"a session without a name": {in: "arn:aws:sts::123456789012:assumed-role/Node", err: true},
		"a space in the name":      {in: "arn:aws:iam::123456789012:role/my role", err: true},
		"a name over 64":           {in: "arn:aws:iam::123456789012:role/" + strings.Repeat("n", 65), err: true},
		"a role without a name":    {in: "arn:aws:iam::123456789012:role/", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseRoleARN(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("ParseRoleARN(%q) = %+v, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.raw = tc.in
			if got != tc.want || got.String() != tc.in {
				t.Fatalf("ParseRoleARN(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}
