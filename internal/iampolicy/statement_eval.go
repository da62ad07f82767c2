package iampolicy

// stmtResult is one statement's outcome for one request. For resource
// policies it also says by which kind of principal the statement matched,
// because same-account grants differ by kind (see Decision in the doc).
type stmtResult struct {
	applies tri
	direct  tri
	role    tri
	account tri
	// keysFrom:keysTo index the evaluator's key buffer: the keys that left
	// this statement unknown.
	keysFrom, keysTo int
	// failedKey is the key of the condition that kept a statement whose
	// action, resource and principal all match from applying.
	failedKey string
}

func (r *stmtResult) unknown() bool {
	return r.applies == tUnknown || r.direct == tUnknown || r.role == tUnknown || r.account == tUnknown
}

func (s *statement) matchAction(action string) bool {
	hit := false
	for i := range s.actions {
		if s.actions[i].match(action) {
			hit = true
			break
		}
	}
	return hit != s.notAction
}

func (s *statement) matchResource(ec *evalCtx, byPrincipal bool, unknown *[]string) tri {
	switch {
	case s.hasResource:
	case byPrincipal:
		// Omitted in a resource policy: the resource the policy is attached
		// to, which a request on "*" (ecr:GetAuthorizationToken) is not.
		return triOf(ec.resource != "*")
	default:
		return tTrue
	}
	hit := tFalse
	for i := range s.resources {
		hit = hit.or(s.resources[i].matchARN(ec.resource, &ec.resParts, ec.resIsARN, ec, unknown))
		if hit == tTrue {
			break
		}
	}
	if s.notResource {
		return hit.not()
	}
	return hit
}

// eval decides whether the statement applies to the request. byPrincipal is
// set for resource policies and RCPs, whose statements must name the
// principal.
func (s *statement) eval(ec *evalCtx, byPrincipal bool, keys *[]string) stmtResult {
	var res stmtResult
	start := len(*keys)
	res.keysFrom, res.keysTo = start, start
	if !s.matchAction(ec.action) {
		return res
	}
	r := s.matchResource(ec, byPrincipal, keys)
	if r != tFalse {
		r = r.and(s.variablesHold(ec, keys))
	}
	if r == tFalse {
		*keys = (*keys)[:start]
		return res
	}
	pm := principalMatch{direct: tTrue}
	if byPrincipal {
		if !s.hasPrincipal {
			*keys = (*keys)[:start]
			return res
		}
		pm = s.matchPrincipal(&ec.principal, ec.hasBoundary, keys)
		if pm.any() == tFalse {
			*keys = (*keys)[:start]
			return res
		}
	}
	for i := range s.conditions {
		mark := len(*keys)
		c := s.conditions[i].eval(ec, keys)
		if c != tUnknown {
			*keys = (*keys)[:mark]
		}
		r = r.and(c)
		if r == tFalse {
			*keys = (*keys)[:start]
			if pm.any() == tTrue {
				res.failedKey = s.conditions[i].key
			}
			return res
		}
	}
	res.direct, res.role, res.account = r.and(pm.direct), r.and(pm.role), r.and(pm.account)
	res.applies = r.and(pm.any())
	if !res.unknown() {
		*keys = (*keys)[:start]
	}
	res.keysTo = len(*keys)
	return res
}
