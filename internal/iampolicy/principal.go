package iampolicy

import "strings"

// principalKind classifies the request principal.
type principalKind int8

const (
	pkOther   principalKind = iota
	pkRole                  // arn:aws:iam::ACCT:role/[path/]NAME: a session of it, name unknown
	pkSession               // arn:aws:sts::ACCT:assumed-role/NAME/SESSION
	pkUser                  // arn:aws:iam::ACCT:user/[path/]NAME
	pkRoot                  // arn:aws:iam::ACCT:root
)

// requestPrincipal is the request principal split into the identities AWS
// sees for it: session, role, account.
type requestPrincipal struct {
	raw       string
	kind      principalKind
	partition string
	account   string
	name      string // role or user name
	session   string
	// arn is what aws:PrincipalArn holds: the role ARN for a session.
	arn   string
	ptype string // aws:PrincipalType, "" when unknown
}

func parseRequestPrincipal(s string) requestPrincipal {
	p := requestPrincipal{raw: s, arn: s}
	parts, ok := splitARN(s)
	if !ok || parts[0] != "arn" {
		return p
	}
	p.partition, p.account = parts[1], parts[4]
	res := parts[5]
	switch {
	case parts[2] == "iam" && res == "root":
		p.kind, p.ptype = pkRoot, "Account"
	case parts[2] == "iam" && strings.HasPrefix(res, "role/"):
		p.kind, p.ptype = pkRole, "AssumedRole"
		p.name = res[strings.LastIndexByte(res, '/')+1:]
	case parts[2] == "iam" && strings.HasPrefix(res, "user/"):
		p.kind, p.ptype = pkUser, "User"
		p.name = res[strings.LastIndexByte(res, '/')+1:]
	case parts[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		rest := res[len("assumed-role/"):]
		slash := strings.IndexByte(rest, '/')
		if slash <= 0 || slash == len(rest)-1 {
			return p
		}
		p.kind, p.ptype = pkSession, "AssumedRole"
		p.name, p.session = rest[:slash], rest[slash+1:]
		// The role's path is not visible in a session ARN.
		p.arn = "arn:" + p.partition + ":iam::" + p.account + ":role/" + p.name
	}
	return p
}

// entryKind classifies one Principal entry of a policy.
type entryKind int8

const (
	peNever   entryKind = iota // Service, Federated, CanonicalUser, unparsable
	peAll                      // "*"
	peAccount                  // "ACCT" or arn:...:iam::ACCT:root
	peRole                     // a role ARN
	peSession                  // an assumed-role session ARN
	peExact                    // any other ARN (users, ...): compared as a string
)

type principalEntry struct {
	kind      entryKind
	raw       string
	partition string
	account   string
	name      string
	session   string
}

func compilePrincipalEntry(typ, s string) principalEntry {
	e := principalEntry{raw: s}
	if typ != "AWS" {
		return e
	}
	if s == "*" {
		e.kind = peAll
		return e
	}
	if isDigits(s) {
		e.kind, e.account = peAccount, s
		return e
	}
	parts, ok := splitARN(s)
	if !ok || parts[0] != "arn" {
		return e
	}
	e.partition, e.account = parts[1], parts[4]
	res := parts[5]
	switch {
	case parts[2] == "iam" && res == "root":
		e.kind = peAccount
	case parts[2] == "iam" && strings.HasPrefix(res, "role/"):
		e.kind = peRole
		e.name = res[strings.LastIndexByte(res, '/')+1:]
	case parts[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		rest := res[len("assumed-role/"):]
		slash := strings.IndexByte(rest, '/')
		if slash <= 0 {
			e.kind = peExact
			return e
		}
		e.kind = peSession
		e.name, e.session = rest[:slash], rest[slash+1:]
	default:
		e.kind = peExact
	}
	return e
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// principalMatch says how a statement's Principal covers the request: by
// the principal's own identity (a session or user ARN, or "*": not limited by
// a permissions boundary), by role ARN (limited by the boundary), or by
// account only (delegates to IAM within the account).
type principalMatch struct {
	direct, role, account tri
}

func (m principalMatch) any() tri { return m.direct.or(m.role).or(m.account) }

// matchEntry matches one Principal entry against the request principal.
// unknownSession is set when the outcome hinges on the unknown session name.
func matchEntry(e *principalEntry, rp *requestPrincipal) (m principalMatch, unknownSession bool) {
	samePartition := e.partition == "" || e.partition == rp.partition
	switch e.kind {
	case peAll:
		// Everyone, the session itself included: like a session ARN grant,
		// not limited by a permissions boundary (AWS documents this for "*"
		// scoped with an aws:PrincipalArn condition).
		m.direct = tTrue
	case peAccount:
		if rp.account != "" && e.account == rp.account && samePartition {
			m.account = tTrue
		}
	case peRole:
		if (rp.kind == pkRole || rp.kind == pkSession) && samePartition &&
			e.account == rp.account && e.name == rp.name {
			m.role = tTrue
		}
	case peSession:
		if !samePartition || e.account != rp.account || e.name != rp.name {
			break
		}
		switch rp.kind {
		case pkSession:
			m.direct = triOf(e.session == rp.session)
		case pkRole:
			m.direct, unknownSession = tUnknown, true
		}
	case peExact:
		if e.raw == rp.raw {
			m.direct = tTrue
		}
	}
	return m, unknownSession
}

// unknownSessionKey is reported when a session-ARN principal is compared
// with a role ARN request principal: the session name lives in aws:userid.
const unknownSessionKey = "aws:userid"

// matchPrincipal evaluates a statement's Principal or NotPrincipal. A
// statement without either (identity policies) applies to the caller.
func (s *statement) matchPrincipal(rp *requestPrincipal, hasBoundary bool, unknown *[]string) principalMatch {
	if !s.hasPrincipal {
		return principalMatch{direct: tTrue}
	}
	if !s.notPrincipal {
		var m principalMatch
		unknownSession := false
		for i := range s.principals {
			em, us := matchEntry(&s.principals[i], rp)
			m.direct = m.direct.or(em.direct)
			m.role = m.role.or(em.role)
			m.account = m.account.or(em.account)
			unknownSession = unknownSession || us
		}
		if unknownSession && m.direct == tUnknown {
			*unknown = append(*unknown, unknownSessionKey)
		}
		return m
	}
	// AWS documents that a Deny with NotPrincipal always denies an IAM user
	// or role that has a permissions boundary, whatever it lists.
	if s.deny && hasBoundary && (rp.kind == pkRole || rp.kind == pkSession || rp.kind == pkUser) {
		return principalMatch{role: tTrue}
	}
	// NotPrincipal: the statement applies unless every identity the request
	// carries (session, role, account) is listed.
	sessionListed, roleListed, accountListed := tFalse, tFalse, tFalse
	unknownSession := false
	for i := range s.principals {
		em, us := matchEntry(&s.principals[i], rp)
		if s.principals[i].kind == peAll {
			sessionListed, roleListed, accountListed = tTrue, tTrue, tTrue
			continue
		}
		sessionListed = sessionListed.or(em.direct)
		roleListed = roleListed.or(em.role)
		accountListed = accountListed.or(em.account)
		unknownSession = unknownSession || us
	}
	all := accountListed
	switch rp.kind {
	case pkRole, pkSession:
		all = all.and(roleListed).and(sessionListed)
	case pkUser, pkOther:
		all = all.and(sessionListed)
	}
	applies := all.not()
	if applies == tUnknown && unknownSession {
		*unknown = append(*unknown, unknownSessionKey)
	}
	return principalMatch{role: applies}
}
