package iampolicy

import (
	"slices"
	"strings"
)

// evaluated is one statement of one policy with its outcome.
type evaluated struct {
	src   Source
	name  string
	level int // SCP/RCP level, 0 otherwise
	st    *statement
	stmtResult
}

// evaluator holds the per-request state of Evaluate.
type evaluator struct {
	ec    *evalCtx
	items []evaluated
	keys  []string
}

// Evaluate decides whether req.Principal may perform req.Action on
// req.Resource under the policies in set, following AWS's evaluation logic
// with three-valued conditions (see docs/policy-evaluation.md). It never
// fails: policies are validated by Parse, and any request strings are
// acceptable (they just match less).
func Evaluate(req Request, set PolicySet) Decision {
	ev := evaluator{ec: newEvalCtx(&req)}
	ev.ec.hasBoundary = set.Boundary != nil
	ev.items = make([]evaluated, 0, countStatements(&set))
	for l, level := range set.SCPs {
		for i := range level {
			ev.add(SourceSCP, &level[i], l, false)
		}
	}
	for l, level := range set.RCPs {
		for i := range level {
			ev.add(SourceRCP, &level[i], l, true)
		}
	}
	if set.Resource != nil {
		ev.add(SourceResource, set.Resource, 0, true)
	}
	for i := range set.Identity {
		ev.add(SourceIdentity, &set.Identity[i], 0, false)
	}
	if set.Boundary != nil {
		ev.add(SourceBoundary, set.Boundary, 0, false)
	}
	return ev.decide(&set)
}

func countStatements(set *PolicySet) int {
	n := 0
	for _, level := range set.SCPs {
		for _, p := range level {
			n += p.Policy.NumStatements()
		}
	}
	for _, level := range set.RCPs {
		for _, p := range level {
			n += p.Policy.NumStatements()
		}
	}
	if set.Resource != nil {
		n += set.Resource.Policy.NumStatements()
	}
	for _, p := range set.Identity {
		n += p.Policy.NumStatements()
	}
	if set.Boundary != nil {
		n += set.Boundary.Policy.NumStatements()
	}
	return n
}

func (ev *evaluator) add(src Source, np *NamedPolicy, level int, byPrincipal bool) {
	if np.Policy == nil {
		return
	}
	for i := range np.Policy.statements {
		st := &np.Policy.statements[i]
		if src == SourceRCP && !st.deny {
			// RCPFullAWSAccess sits at every level and cannot be detached,
			// so an RCP level always lets a request through: only its
			// Denies count, and its Allows decide nothing.
			continue
		}
		r := st.eval(ev.ec, byPrincipal, &ev.keys)
		ev.items = append(ev.items, evaluated{src: src, name: np.Name, level: level, st: st, stmtResult: r})
	}
}

// sides are the Allow-side values that the decision combines.
type sides struct {
	scp                        tri
	scpLevels                  []tri
	identity, boundary         tri
	resDirect, resRole, resAny tri
	hasBoundary, sameAccount   bool
	allow                      tri
	identityUsed, boundaryUsed bool
	resRoleUsed                bool
}

func (ev *evaluator) sides(set *PolicySet) sides {
	s := sides{
		scp: tTrue, boundary: tTrue,
		hasBoundary: set.Boundary != nil, sameAccount: ev.ec.sameAccount,
	}
	if len(set.SCPs) > 0 {
		s.scpLevels = make([]tri, len(set.SCPs))
	}
	if s.hasBoundary {
		s.boundary = tFalse
	}
	if ev.ec.principal.kind == pkRoot {
		// The account's root user has full access in its own account: no
		// identity policy is needed (SCPs, RCPs and Denies still apply).
		s.identity = tTrue
	}
	for i := range ev.items {
		it := &ev.items[i]
		if it.st.deny {
			continue
		}
		switch it.src {
		case SourceSCP:
			s.scpLevels[it.level] = s.scpLevels[it.level].or(it.applies)
		case SourceResource:
			s.resDirect = s.resDirect.or(it.direct)
			s.resRole = s.resRole.or(it.role)
			s.resAny = s.resAny.or(it.applies)
		case SourceIdentity:
			s.identity = s.identity.or(it.applies)
		case SourceBoundary:
			s.boundary = s.boundary.or(it.applies)
		}
	}
	for _, v := range s.scpLevels {
		s.scp = s.scp.and(v)
	}
	var principal tri
	if s.sameAccount {
		// A session (or user) ARN grant is not limited by the boundary; a
		// role ARN grant is; an account grant only delegates to IAM.
		principal = s.resDirect.or(s.boundary.and(s.resRole.or(s.identity)))
		s.identityUsed = s.boundary != tFalse && s.identity != tFalse
		s.resRoleUsed = s.boundary != tFalse && s.resRole != tFalse
		s.boundaryUsed = s.hasBoundary && (s.identity != tFalse || s.resRole != tFalse)
	} else {
		principal = s.resAny.and(s.identity).and(s.boundary)
		s.identityUsed, s.resRoleUsed, s.boundaryUsed = true, true, s.hasBoundary
	}
	s.allow = s.scp.and(principal)
	return s
}

func (ev *evaluator) decide(set *PolicySet) Decision {
	d := Decision{Reasons: []Reason{}, UnknownKeys: []string{}}
	deny := tFalse
	for i := range ev.items {
		if ev.items[i].st.deny {
			deny = deny.or(ev.items[i].applies)
		}
	}
	if deny == tTrue {
		d.Decision = ExplicitDeny
		ev.reasons(&d, func(it *evaluated) bool { return it.st.deny && it.applies == tTrue })
		return d
	}
	s := ev.sides(set)
	switch {
	case s.allow == tFalse:
		d.Decision = ImplicitDeny
		ev.reasons(&d, func(it *evaluated) bool { return !it.st.deny && it.applies == tTrue })
		d.Missing = s.missing(set)
		for i := range ev.items {
			if it := &ev.items[i]; !it.st.deny && it.failedKey != "" {
				r := Reason{Policy: it.src, Name: it.name, Statement: it.st.label, Effect: it.st.effect()}
				d.ConditionFailures = append(d.ConditionFailures, ConditionFailure{Reason: r, Key: it.failedKey})
			}
		}
	case s.allow == tTrue && deny == tFalse:
		d.Decision = Allow
		ev.reasons(&d, func(it *evaluated) bool { return !it.st.deny && s.granted(it) })
	default:
		d.Decision = Undetermined
		ev.reasons(&d, func(it *evaluated) bool {
			if it.st.deny {
				return it.applies == tUnknown
			}
			return s.allow == tUnknown && s.open(it)
		})
		ev.unknownKeys(&d, func(it *evaluated) bool {
			if it.st.deny {
				return it.applies == tUnknown
			}
			return s.allow == tUnknown && s.open(it)
		})
	}
	return d
}

// granted reports whether an Allow statement is part of what allowed the
// request.
func (s *sides) granted(it *evaluated) bool {
	switch it.src {
	case SourceSCP, SourceIdentity:
		return it.applies == tTrue && (it.src != SourceIdentity || s.identityUsed)
	case SourceBoundary:
		return it.applies == tTrue && s.boundaryUsed
	case SourceResource:
		if !s.sameAccount {
			return it.applies == tTrue
		}
		return it.direct == tTrue || (it.role == tTrue && s.resRoleUsed)
	}
	return false
}

// open reports whether an Allow statement's unknown outcome is one the
// decision waits on.
func (s *sides) open(it *evaluated) bool {
	switch it.src {
	case SourceSCP:
		return it.applies == tUnknown && s.scpLevels[it.level] == tUnknown
	case SourceIdentity:
		return it.applies == tUnknown && s.identity == tUnknown && s.identityUsed
	case SourceBoundary:
		return it.applies == tUnknown && s.boundary == tUnknown && s.boundaryUsed
	case SourceResource:
		if !s.sameAccount {
			return it.applies == tUnknown && s.resAny == tUnknown
		}
		return (it.direct == tUnknown && s.resDirect == tUnknown) ||
			(it.role == tUnknown && s.resRole == tUnknown && s.resRoleUsed)
	}
	return false
}

// missing names the policy types whose lack of an Allow made the request
// implicitly denied.
func (s *sides) missing(set *PolicySet) []Source {
	var m []Source
	if len(set.SCPs) > 0 && s.scp == tFalse {
		m = append(m, SourceSCP)
	}
	if s.sameAccount {
		if s.resDirect == tFalse && s.resRole == tFalse && s.identity == tFalse {
			m = append(m, SourceIdentity)
		}
		if s.hasBoundary && s.boundary == tFalse && s.resDirect == tFalse {
			m = append(m, SourceBoundary)
		}
		return m
	}
	if s.resAny == tFalse {
		m = append(m, SourceResource)
	}
	if s.identity == tFalse {
		m = append(m, SourceIdentity)
	}
	if s.hasBoundary && s.boundary == tFalse {
		m = append(m, SourceBoundary)
	}
	return m
}

func (ev *evaluator) reasons(d *Decision, keep func(*evaluated) bool) {
	for i := range ev.items {
		it := &ev.items[i]
		if keep(it) {
			d.Reasons = append(d.Reasons, Reason{Policy: it.src, Name: it.name, Statement: it.st.label, Effect: it.st.effect()})
		}
	}
}

func (ev *evaluator) unknownKeys(d *Decision, keep func(*evaluated) bool) {
	for i := range ev.items {
		it := &ev.items[i]
		if keep(it) {
			d.UnknownKeys = append(d.UnknownKeys, ev.keys[it.keysFrom:it.keysTo]...)
		}
	}
	slices.SortFunc(d.UnknownKeys, func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	d.UnknownKeys = slices.CompactFunc(d.UnknownKeys, strings.EqualFold)
}
