package iampolicy

import (
	"strings"
	"unicode/utf8"
)

// glob is a compiled wildcard pattern. The common shapes (match-all,
// literal, prefix*) are answered without walking tokens.
type glob struct {
	toks   []token
	all    bool   // a lone "*"
	exact  bool   // no wildcards, no variables: compare lit
	prefix bool   // literal followed by a single trailing "*"
	lit    string // the literal for exact and prefix
	vars   bool   // holds variables: substitute before matching
}

func compileGlob(toks []token) glob {
	g := glob{toks: toks, vars: hasVariable(toks)}
	switch {
	case g.vars:
	case len(toks) == 1 && toks[0].op == '*':
		g.all = true
	case len(toks) == 0:
		g.exact = true
	case len(toks) == 1 && toks[0].op == 'l':
		g.exact, g.lit = true, toks[0].lit
	case len(toks) == 2 && toks[0].op == 'l' && toks[1].op == '*':
		g.prefix, g.lit = true, toks[0].lit
	}
	return g
}

// match reports whether s matches a variable-free glob.
func (g *glob) match(s string) bool {
	switch {
	case g.all:
		return true
	case g.exact:
		return s == g.lit
	case g.prefix:
		return strings.HasPrefix(s, g.lit)
	}
	return matchTokens(g.toks, s)
}

// matchVars matches s, substituting variables first.
func (g *glob) matchVars(s string, ec *evalCtx, unknown *[]string) tri {
	if !g.vars {
		return triOf(g.match(s))
	}
	toks, r := resolve(g.toks, ec, unknown)
	if r != tTrue {
		return r
	}
	return triOf(matchTokens(toks, s))
}

// matchTokens is the classic single-backtrack wildcard match: on a mismatch
// after a *, retry with the * swallowing one more character. Linear in
// practice and never recursive, so hostile patterns cannot blow the stack.
func matchTokens(toks []token, s string) bool {
	ti, si := 0, 0
	star, starS := -1, 0
	for {
		if ti < len(toks) {
			t := toks[ti]
			switch t.op {
			case '*':
				star, starS = ti, si
				ti++
				continue
			case '?':
				if si < len(s) {
					_, size := utf8.DecodeRuneInString(s[si:])
					si += size
					ti++
					continue
				}
			default:
				if strings.HasPrefix(s[si:], t.lit) {
					si += len(t.lit)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if star < 0 || starS >= len(s) {
			return false
		}
		_, size := utf8.DecodeRuneInString(s[starS:])
		starS += size
		ti, si = star+1, starS
	}
}

// arnPattern is a Resource entry or an Arn* condition value. Wildcards stay
// within one colon-separated part of the ARN (arn:aws:ecr:us-*:111:... must
// not match another account) except in the resource part, and except a *
// that ends a part: AWS lets that one expand over the following colons, so
// arn:aws:ecr:* covers every ECR ARN.
type arnPattern struct {
	all bool
	// partwise: the pattern has six parts, so an ARN whose resource part
	// holds no colon can be matched part by part, without allocating.
	partwise bool
	parts    [6]glob // arn, partition, service, region, account, resource
	// loose is the whole pattern with each wildcard's right to match ':'.
	loose []token
	vars  bool
}

func compileARNPattern(s string, vars bool) arnPattern {
	if s == "*" {
		return arnPattern{all: true}
	}
	return compileARNTokens(tokenize(s, vars, true))
}

// compileResourcePattern compiles a Resource or NotResource entry. AWS
// substitutes policy variables only in the resource part of the ARN, after
// the fifth colon; before it, ${...} is literal text (and so matches no ARN).
func compileResourcePattern(s string, vars bool) arnPattern {
	if s == "*" || !vars {
		return compileARNPattern(s, false)
	}
	at := resourcePartStart(s)
	toks := tokenize(s[:at], false, true)
	rest := tokenize(s[at:], true, true)
	if n := len(toks); n > 0 && len(rest) > 0 && toks[n-1].op == 'l' && rest[0].op == 'l' {
		toks[n-1].lit += rest[0].lit
		rest = rest[1:]
	}
	return compileARNTokens(append(toks, rest...))
}

// resourcePartStart returns the index just past the fifth colon of an ARN
// pattern, not counting colons inside ${...}; len(s) if there are fewer.
func resourcePartStart(s string) int {
	colons := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			if end := strings.IndexByte(s[i:], '}'); end > 0 {
				i += end
			}
		case s[i] == ':':
			if colons++; colons == 5 {
				return i + 1
			}
		}
	}
	return len(s)
}

func compileARNTokens(toks []token) arnPattern {
	p := arnPattern{loose: markCrossing(toks), vars: hasVariable(toks)}
	if parts, ok := splitTokens(toks); ok {
		p.partwise = true
		for i := range parts {
			p.parts[i] = compileGlob(parts[i])
		}
	}
	return p
}

// markCrossing sets token.cross on wildcards in the resource part (after
// the fifth colon) and on a * that ends its part.
func markCrossing(toks []token) []token {
	out := make([]token, len(toks))
	copy(out, toks)
	colons := 0
	for i := range out {
		t := &out[i]
		switch t.op {
		case 'l':
			colons += strings.Count(t.lit, ":")
		case '?':
			t.cross = colons >= 5
		case '*':
			last := i == len(out)-1 || (out[i+1].op == 'l' && strings.HasPrefix(out[i+1].lit, ":"))
			t.cross = colons >= 5 || last
		}
	}
	return out
}

// splitTokens splits tokens at the first five literal colons.
func splitTokens(toks []token) ([6][]token, bool) {
	var parts [6][]token
	n := 0
	for _, t := range toks {
		if t.op != 'l' || n == 5 {
			parts[n] = append(parts[n], t)
			continue
		}
		lit := t.lit
		for n < 5 {
			i := strings.IndexByte(lit, ':')
			if i < 0 {
				break
			}
			if i > 0 {
				parts[n] = append(parts[n], token{op: 'l', lit: lit[:i]})
			}
			n++
			lit = lit[i+1:]
		}
		if lit != "" {
			parts[n] = append(parts[n], token{op: 'l', lit: lit})
		}
	}
	return parts, n == 5
}

// splitARN splits an ARN into its six parts without allocating.
func splitARN(s string) (parts [6]string, ok bool) {
	for i := range 5 {
		j := strings.IndexByte(s, ':')
		if j < 0 {
			return parts, false
		}
		parts[i], s = s[:j], s[j+1:]
	}
	parts[5] = s
	return parts, true
}

// matchARN matches a request value already split with splitARN (whole is
// the unsplit value; isARN says whether the split worked).
func (p *arnPattern) matchARN(whole string, parts *[6]string, isARN bool, ec *evalCtx, unknown *[]string) tri {
	if p.all {
		return tTrue
	}
	if whole == "*" {
		// A request for every resource is matched only by a lone "*".
		return tFalse
	}
	if p.partwise && isARN && !strings.Contains(parts[5], ":") {
		// Five literal colons on each side: no wildcard can take a colon,
		// so part-by-part matching is exact.
		result := tTrue
		for i := range p.parts {
			result = result.and(p.parts[i].matchVars(parts[i], ec, unknown))
			if result == tFalse {
				return tFalse
			}
		}
		return result
	}
	toks := p.loose
	if p.vars {
		var r tri
		if toks, r = resolve(toks, ec, unknown); r != tTrue {
			return r
		}
	}
	return triOf(matchLoose(toks, whole))
}

// matchLoose matches s against tokens whose wildcards may or may not match
// ':'. Wildcards with different powers defeat the single-backtrack
// algorithm, so this tracks every reachable position (O(tokens × len(s))).
func matchLoose(toks []token, s string) bool {
	cur := make([]bool, len(s)+1)
	next := make([]bool, len(s)+1)
	cur[0] = true
	for _, t := range toks {
		clear(next)
		reached := false
		for i := 0; i <= len(s); i++ {
			if !cur[i] {
				continue
			}
			switch t.op {
			case 'l':
				if strings.HasPrefix(s[i:], t.lit) {
					next[i+len(t.lit)], reached = true, true
				}
			case '?':
				if i < len(s) && (t.cross || s[i] != ':') {
					_, size := utf8.DecodeRuneInString(s[i:])
					next[i+size], reached = true, true
				}
			case '*':
				next[i], reached = true, true
				for j := i; j < len(s) && (t.cross || s[j] != ':'); j++ {
					next[j+1] = true
				}
			}
		}
		if !reached {
			return false
		}
		cur, next = next, cur
	}
	return cur[len(s)]
}
