package iampolicy

import (
	"strconv"
	"strings"
	"time"
)

// keyState says what the evaluator knows about a condition key.
type keyState int8

const (
	keyKnown keyState = iota
	keyAbsent
	keyUnknown
)

// absentKeys are known not to be in the request context of a direct call by
// a role session (the kubelet pulling with the node role's credentials).
var absentKeys = map[string]bool{
	"aws:sourcearn":                 true,
	"aws:sourceaccount":             true,
	"aws:sourceorgid":               true,
	"aws:sourceorgpaths":            true,
	"aws:calledvia":                 true,
	"aws:calledviafirst":            true,
	"aws:calledvialast":             true,
	"aws:principalservicename":      true,
	"aws:principalservicenameslist": true,
	"aws:federatedprovider":         true,
	"aws:multifactorauthpresent":    true,
	"aws:multifactorauthage":        true,
}

// evalCtx is everything one evaluation derives from its Request, computed
// once and shared by every statement.
type evalCtx struct {
	req       *Request
	principal requestPrincipal
	action    string // lower-cased

	resource      string
	resParts      [6]string
	resIsARN      bool
	resAccount    string
	resRegion     string
	hasResAccount bool

	// one backs the single-valued derived keys handed out by lookup, so
	// lookups do not allocate.
	one [8]string

	// hasBoundary: the principal has a permissions boundary (it changes
	// how NotPrincipal behaves).
	hasBoundary bool

	timeDone       bool
	curTime, epoch string
	sameAccount    bool
}

func newEvalCtx(req *Request) *evalCtx {
	ec := &evalCtx{req: req, resource: req.Resource}
	ec.principal = parseRequestPrincipal(req.Principal)
	ec.action = toLowerASCII(req.Action)
	ec.resParts, ec.resIsARN = splitARN(req.Resource)
	if ec.resIsARN {
		ec.resAccount, ec.resRegion = ec.resParts[4], ec.resParts[3]
		ec.hasResAccount = ec.resAccount != ""
	}
	ec.sameAccount = req.Resource == "*" || !ec.hasResAccount || ec.resAccount == ec.principal.account ||
		ec.resAccount == awsOwnedAccount
	return ec
}

// awsOwnedAccount is the account field of resources AWS itself owns, such as
// AWS managed policies (arn:aws:iam::aws:policy/NAME). They are no other
// customer's resources: any principal reaches them with its own identity
// policies, no resource policy, as in its own account. Their owner is a
// service-managed account whose ID the ARN does not show, so
// aws:ResourceAccount is unknown for them.
const awsOwnedAccount = "aws"

// toLowerASCII avoids strings.ToLower's allocation for already-lower text.
func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(s)
		}
	}
	return s
}

// lookup returns the values of a condition key (lower-cased name). Caller
// supplied context wins over derived values.
func (ec *evalCtx) lookup(keyLower string) ([]string, keyState) {
	for k, v := range ec.req.Context {
		if strings.EqualFold(k, keyLower) {
			if len(v) == 0 {
				return nil, keyAbsent
			}
			return v, keyKnown
		}
	}
	if ec.req.PrincipalTagsKnown && strings.HasPrefix(keyLower, "aws:principaltag/") {
		return nil, keyAbsent
	}
	p := &ec.principal
	switch keyLower {
	case "aws:principalarn":
		if p.kind == pkOther {
			return nil, keyUnknown
		}
		return ec.single(0, p.arn)
	case "aws:principalaccount":
		if p.account == "" {
			return nil, keyUnknown
		}
		return ec.single(1, p.account)
	case "aws:principaltype":
		if p.ptype == "" {
			return nil, keyUnknown
		}
		return ec.single(2, p.ptype)
	case "aws:resourceaccount":
		switch {
		case !ec.hasResAccount:
			return nil, keyAbsent
		case ec.resAccount == awsOwnedAccount:
			return nil, keyUnknown
		}
		return ec.single(3, ec.resAccount)
	case "aws:requestedregion":
		if ec.resRegion == "" {
			return nil, keyUnknown
		}
		return ec.single(4, ec.resRegion)
	case "aws:securetransport":
		return ec.single(5, "true")
	case "aws:viaawsservice", "aws:principalisawsservice":
		return ec.single(6, "false")
	case "aws:currenttime", "aws:epochtime":
		if ec.req.Now.IsZero() {
			return nil, keyUnknown
		}
		ec.formatTime()
		if keyLower == "aws:currenttime" {
			return ec.single(7, ec.curTime)
		}
		return []string{ec.epoch}, keyKnown
	case "aws:username":
		if p.kind == pkUser {
			return []string{p.name}, keyKnown
		}
		if p.kind == pkOther {
			return nil, keyUnknown
		}
		return nil, keyAbsent
	}
	if absentKeys[keyLower] {
		return nil, keyAbsent
	}
	return nil, keyUnknown
}

func (ec *evalCtx) single(slot int, v string) ([]string, keyState) {
	ec.one[slot] = v
	return ec.one[slot : slot+1 : slot+1], keyKnown
}

func (ec *evalCtx) formatTime() {
	if ec.timeDone {
		return
	}
	ec.timeDone = true
	t := ec.req.Now.UTC()
	ec.curTime = t.Format(time.RFC3339)
	ec.epoch = strconv.FormatInt(t.Unix(), 10)
}
