package awsclient

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
)

// RoleARN is an IAM role, or a session of one, parsed once where it enters
// the program (flags, policies, discovery) so later code reads fields and
// never re-splits the string.
type RoleARN struct {
	Partition string // aws, aws-cn, aws-us-gov, ...
	Account   string // 1 to 12 digits
	// Name is the role's name: the last element of its path, or the role of
	// a session.
	Name string
	// Path is the role's path ("/" or "/eks/nodes/"); empty for a session,
	// whose ARN does not show it.
	Path string
	// Session is the session name of arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION;
	// empty for a role.
	Session string
	raw     string
}

// ParseRoleARN parses arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME or
// arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION (the SDK's aws/arn
// does the splitting). Any other string is an error naming it.
func ParseRoleARN(s string) (RoleARN, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return RoleARN{}, fmt.Errorf("%q is not an ARN: %w", s, err)
	}
	r := RoleARN{Partition: a.Partition, Account: a.AccountID, raw: s}
	if !imageref.IsAccountID(a.AccountID) || a.Region != "" {
		return RoleARN{}, fmt.Errorf("%q is not an IAM role ARN: want arn:PARTITION:iam::ACCOUNT:role/NAME", s)
	}
	switch {
	case a.Service == "iam" && strings.HasPrefix(a.Resource, "role/"):
		rest := strings.TrimPrefix(a.Resource, "role")
		i := strings.LastIndexByte(rest, '/')
		r.Path, r.Name = rest[:i+1], rest[i+1:]
	case a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/"):
		r.Name, r.Session, _ = strings.Cut(strings.TrimPrefix(a.Resource, "assumed-role/"), "/")
		if r.Session == "" || strings.Contains(r.Session, "/") {
			return RoleARN{}, fmt.Errorf("%q is not a role session ARN: want arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION", s)
		}
	default:
		return RoleARN{}, fmt.Errorf("%q is not an IAM role ARN: want arn:PARTITION:iam::ACCOUNT:role/NAME", s)
	}
	if r.Name == "" {
		return RoleARN{}, fmt.Errorf("%q has no role name", s)
	}
	if !validRoleName(r.Name) {
		return RoleARN{}, fmt.Errorf("%q: role name %q is not 1-64 of letters, digits and +=,.@_-", s, r.Name)
	}
	return r, nil
}

// validRoleName: IAM's rule for role names (CreateRole's RoleName pattern
// [\w+=,.@-]+, at most 64 characters).
func validRoleName(name string) bool {
	if len(name) > 64 {
		return false
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_+=,.@-", c)
		if !ok {
			return false
		}
	}
	return true
}

// String is the ARN as it was given.
func (r RoleARN) String() string { return r.raw }

// IsSession reports whether r is an assumed-role session.
func (r RoleARN) IsSession() bool { return r.Session != "" }
