package cli

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// The flags below are parsed once, by their Set, into the types the rest
// of the program reads; no later code looks at the strings again. Each
// value serves one flag, and its errors name it.

// rejectedValues keeps what typed flag values reject while the command line
// is parsed. Validate reports them with every other problem, so that one
// usage error still lists them all.
type rejectedValues []error

// varP is fs.VarP, except that a value v rejects is kept in r instead of
// ending the parse.
func (r *rejectedValues) varP(fs *pflag.FlagSet, v pflag.Value, name, shorthand, usage string) {
	fs.VarP(keepRejected{Value: v, rejected: r}, name, shorthand, usage)
}

// keepRejected hands what its Value rejects to a rejectedValues.
type keepRejected struct {
	pflag.Value
	rejected *rejectedValues
}

func (k keepRejected) Set(s string) error {
	if err := k.Value.Set(s); err != nil {
		*k.rejected = append(*k.rejected, err)
	}
	return nil
}

// modeFlag is --mode: warn, deny or dryrun.
type modeFlag webhook.Mode

func (m *modeFlag) String() string { return string(*m) }

func (m *modeFlag) Set(s string) error {
	mode, err := webhook.ParseMode(s)
	if err != nil {
		return fmt.Errorf("--mode: %w", err)
	}
	*m = modeFlag(mode)
	return nil
}

func (*modeFlag) Type() string { return "string" }

// logFormat is --log-format.
type logFormat string

const (
	logJSON logFormat = "json"
	logText logFormat = "text"
)

// outputFormat is check's --output: text for people, json for machines.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
)

// choiceVar adds a flag that takes one of two words into *p.
func choiceVar[T ~string](r *rejectedValues, fs *pflag.FlagSet, p *T, name, shorthand, usage string, a, b T) {
	r.varP(fs, &choice[T]{p: p, flag: name, words: [2]T{a, b}}, name, shorthand, usage)
}

// choice is the value of a choiceVar flag.
type choice[T ~string] struct {
	p     *T
	flag  string
	words [2]T
}

func (c *choice[T]) String() string { return string(*c.p) }

func (c *choice[T]) Set(s string) error {
	if v := T(s); v != c.words[0] && v != c.words[1] {
		return fmt.Errorf("--%s %q: want %s or %s", c.flag, s, c.words[0], c.words[1])
	}
	*c.p = T(s)
	return nil
}

func (*choice[T]) Type() string { return "string" }

// roleARNs is --node-role-arn, repeatable: IAM role ARNs, each checked with
// awsclient.ParseIAMRoleARN.
type roleARNs []string

func (r *roleARNs) String() string { return strings.Join(*r, ",") }

func (r *roleARNs) Set(s string) error {
	if _, err := awsclient.ParseIAMRoleARN(s); err != nil {
		return fmt.Errorf("--node-role-arn: %w", err)
	}
	*r = append(*r, s)
	return nil
}

func (*roleARNs) Type() string { return "stringArray" }

// contextKeyPattern is a condition key: service prefix, colon, name (which
// may carry a tag key after a slash).
var contextKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9-]+:[\x21-\x7e]+$`)

// conditionContext is --context KEY=VALUE, repeatable: the values of
// request-context keys by key, as the key was spelled. Only a multivalued
// key may be given twice.
type conditionContext map[string][]string

func (c *conditionContext) String() string {
	var kvs []string
	for _, k := range slices.Sorted(maps.Keys(*c)) {
		for _, v := range (*c)[k] {
			kvs = append(kvs, k+"="+v)
		}
	}
	return strings.Join(kvs, ",")
}

func (c *conditionContext) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || !contextKeyPattern.MatchString(k) {
		return fmt.Errorf("--context %q: want KEY=VALUE with a condition key such as aws:SourceVpce", kv)
	}
	// Condition keys are case-insensitive: aws:SourceVpce and
	// AWS:sourcevpce are one key. A request carries one value of a
	// single-valued key; two would make conditions on it hold when either
	// value does.
	for given := range *c {
		if strings.EqualFold(given, k) && !iampolicy.IsMultivaluedKey(k) {
			return fmt.Errorf("--context %s given twice: it is single-valued (only multivalued keys such as aws:PrincipalOrgPaths repeat)", k)
		}
	}
	if *c == nil {
		*c = conditionContext{}
	}
	(*c)[k] = append((*c)[k], v)
	return nil
}

func (*conditionContext) Type() string { return "stringArray" }

// assumeRoles is --assume-role ACCOUNT=ROLE_ARN, repeatable: the role to
// assume by account, each checked with awsclient.CheckAssumeRole.
type assumeRoles map[string]string

func (a *assumeRoles) String() string {
	var kvs []string
	for _, account := range slices.Sorted(maps.Keys(*a)) {
		kvs = append(kvs, account+"="+(*a)[account])
	}
	return strings.Join(kvs, ",")
}

func (a *assumeRoles) Set(kv string) error {
	account, arn, ok := strings.Cut(kv, "=")
	switch _, given := (*a)[account]; {
	case !ok || !imageref.IsAccountID(account):
		return fmt.Errorf("--assume-role %q: want ACCOUNT=ROLE_ARN with an account ID", kv)
	case given:
		return fmt.Errorf("--assume-role: account %s given twice", account)
	}
	if err := awsclient.CheckAssumeRole(account, arn); err != nil {
		return fmt.Errorf("--assume-role %s: %w", account, err)
	}
	if *a == nil {
		*a = assumeRoles{}
	}
	(*a)[account] = arn
	return nil
}

func (*assumeRoles) Type() string { return "stringArray" }
