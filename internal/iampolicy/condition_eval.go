package iampolicy

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
)

// eval decides one condition. Keys whose unknown values leave it open are
// appended to unknown.
func (c *condition) eval(ec *evalCtx, unknown *[]string) tri {
	vals, st := ec.lookup(c.keyLower)
	switch st {
	case keyUnknown:
		*unknown = append(*unknown, c.key)
		for i := range c.values {
			c.values[i].unknownVariables(ec, unknown)
		}
		return tUnknown
	case keyAbsent:
		return c.absent()
	}
	if c.fam == famNull {
		// The key is present: Null holds for a "false" value.
		r := tFalse
		for i := range c.values {
			r = r.or(triOf(!c.values[i].b))
		}
		return r
	}
	switch c.set {
	case setAny:
		r := tFalse
		for _, v := range vals {
			r = r.or(c.applyOne(v, ec, unknown))
			if r == tTrue {
				break
			}
		}
		return r
	case setAll:
		// AWS: ForAllValues holds when the key resolves to a null data set,
		// such as an empty string.
		if !slices.ContainsFunc(vals, func(v string) bool { return v != "" }) {
			return tTrue
		}
		r := tTrue
		for _, v := range vals {
			r = r.and(c.applyOne(v, ec, unknown))
			if r == tFalse {
				break
			}
		}
		return r
	}
	// A plain operator on a multi-valued key: positive operators hold when
	// any value matches, negated ones when none does.
	hit := tFalse
	for _, v := range vals {
		hit = hit.or(c.matchAny(v, ec, unknown))
		if hit == tTrue {
			break
		}
	}
	if c.negated {
		return hit.not()
	}
	return hit
}

// absent is the outcome when the key is not in the request.
func (c *condition) absent() tri {
	switch {
	case c.fam == famNull:
		r := tFalse
		for i := range c.values {
			r = r.or(triOf(c.values[i].b))
		}
		return r
	case c.ifExists, c.set == setAll:
		return tTrue
	case c.set == setAny:
		return tFalse
	}
	return triOf(c.negated)
}

func (v *condValue) unknownVariables(ec *evalCtx, unknown *[]string) {
	switch {
	case v.vars:
		unknownVariables(v.toks, ec, unknown)
	case v.like.vars:
		unknownVariables(v.like.toks, ec, unknown)
	case v.arn.vars:
		unknownVariables(v.arn.loose, ec, unknown)
	}
}

// applyOne is the operator applied to one request value on its own.
func (c *condition) applyOne(v string, ec *evalCtx, unknown *[]string) tri {
	m := c.matchAny(v, ec, unknown)
	if c.negated {
		return m.not()
	}
	return m
}

// matchAny reports whether v matches any policy value (ignoring negation).
func (c *condition) matchAny(v string, ec *evalCtx, unknown *[]string) tri {
	r := tFalse
	// Parse the request value once for the typed families.
	var parsed condValue
	switch c.fam {
	case famNumeric, famDate, famBool, famIP:
		if parsed.parseTyped(c.fam, v) != nil {
			// A request value that does not parse compares false.
			return tFalse
		}
	}
	var parts [6]string
	isARN := false
	if c.fam == famARN {
		parts, isARN = splitARN(v)
	}
	for i := range c.values {
		pv := &c.values[i]
		var m tri
		switch c.fam {
		case famStringLike:
			m = pv.like.matchVars(v, ec, unknown)
		case famARN:
			m = pv.arn.matchARN(v, &parts, isARN, ec, unknown)
		default:
			m = c.matchValue(pv, v, &parsed, ec, unknown)
		}
		r = r.or(m)
		if r == tTrue {
			return r
		}
	}
	return r
}

// matchValue compares v (and its parsed form) with one non-pattern policy
// value, substituting variables first when it has any.
func (c *condition) matchValue(pv *condValue, v string, parsed *condValue, ec *evalCtx, unknown *[]string) tri {
	if pv.vars {
		s, r := resolveText(pv.toks, ec, unknown)
		if r != tTrue {
			return r
		}
		tmp := condValue{raw: s}
		if err := tmp.parseTyped(c.fam, s); err != nil {
			return tFalse
		}
		pv = &tmp
	}
	switch c.fam {
	case famString, famBinary:
		return triOf(v == pv.raw)
	case famStringIgnoreCase:
		return triOf(strings.EqualFold(v, pv.raw))
	case famBool:
		return triOf(parsed.b == pv.b)
	case famNumeric:
		return triOf(compare(c.cmp, cmpFloat(parsed.num, pv.num)))
	case famDate:
		return triOf(compare(c.cmp, parsed.tm.Compare(pv.tm)))
	case famIP:
		return triOf(prefixContains(pv.ip, parsed.ip))
	}
	return tFalse
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compare(op comparison, c int) bool {
	switch op {
	case cmpLt:
		return c < 0
	case cmpLe:
		return c <= 0
	case cmpGt:
		return c > 0
	case cmpGe:
		return c >= 0
	}
	return c == 0
}

// prefixContains reports whether the request address (or network) lies in
// the policy's network.
func prefixContains(policy, req netip.Prefix) bool {
	if !policy.IsValid() || !req.IsValid() || policy.Addr().Is4() != req.Addr().Is4() {
		return false
	}
	return req.Bits() >= policy.Bits() && policy.Contains(req.Addr())
}

// resolveText substitutes variables in a template with no wildcards.
func resolveText(toks []token, ec *evalCtx, unknown *[]string) (string, tri) {
	out, r := resolve(toks, ec, unknown)
	if r != tTrue {
		return "", r
	}
	var b bytes.Buffer
	for _, t := range out {
		b.WriteString(t.lit)
	}
	return b.String(), tTrue
}
