package iampolicy

import (
	"slices"
	"strings"
)

// variable is one ${key} or ${key, 'default'} reference found at parse time.
type variable struct {
	key      string // as spelled in the policy, for UnknownKeys
	keyLower string
	def      string
	hasDef   bool
}

// token is one piece of a pattern or template: literal text, a wildcard, or
// a policy variable to substitute at evaluation time.
type token struct {
	op  byte // 'l' literal, '*' any run, '?' one character, '$' variable
	lit string
	v   *variable
	// cross lets a wildcard of an ARN pattern match ':' (see arnPattern).
	cross bool
}

// tokenize splits s into tokens. vars enables ${...} substitution (policy
// Version 2012-10-17 only); wild makes * and ? wildcards. Values substituted
// for ${*}, ${?} and ${$} are always literal: that is their whole purpose.
func tokenize(s string, vars, wild bool) []token {
	var toks []token
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, token{op: 'l', lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if vars && c == '$' && i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end >= 0 {
				inner := s[i+2 : i+2+end]
				if v, literal, ok := parseVariable(inner); ok {
					if v == nil {
						lit.WriteString(literal)
					} else {
						flush()
						toks = append(toks, token{op: '$', v: v})
					}
					i += end + 3
					continue
				}
			}
		}
		if wild && (c == '*' || c == '?') {
			flush()
			toks = append(toks, token{op: c})
			i++
			continue
		}
		lit.WriteByte(c)
		i++
	}
	flush()
	return toks
}

// parseVariable reads the text between ${ and }. It returns a nil variable
// with the literal text for the escapes ${*}, ${?} and ${$}, and ok=false
// when the text is not a variable (left as literal text, as AWS does).
func parseVariable(inner string) (v *variable, literal string, ok bool) {
	switch inner {
	case "*", "?", "$":
		return nil, inner, true
	}
	key, def, hasDef := inner, "", false
	if comma := strings.IndexByte(inner, ','); comma >= 0 {
		key = inner[:comma]
		rest := strings.TrimSpace(inner[comma+1:])
		if len(rest) < 2 || rest[0] != '\'' || rest[len(rest)-1] != '\'' {
			return nil, "", false
		}
		def, hasDef = rest[1:len(rest)-1], true
	}
	key = strings.TrimSpace(key)
	if key == "" || strings.ContainsAny(key, " \t${}'") {
		return nil, "", false
	}
	return &variable{key: key, keyLower: strings.ToLower(key), def: def, hasDef: hasDef}, "", true
}

// substState says whether a policy variable can be substituted in this
// request.
type substState int8

const (
	substOK      substState = iota
	substUnknown            // its key is unknown: it may have a value or none
	substVoid               // it has no value: the statement does not apply
)

// substitute returns the text v stands for. A key that is absent (with no
// default) or multi-valued leaves v without a value; a multivalued key AWS
// never substitutes, so only its absence (and a default) can help.
func (v *variable) substitute(ec *evalCtx) (string, substState) {
	vals, st := ec.lookup(v.keyLower)
	switch {
	case st == keyAbsent && v.hasDef:
		return v.def, substOK
	case st == keyAbsent:
		return "", substVoid
	case multiValuedKeys[v.keyLower] && (st == keyKnown || !v.hasDef):
		return "", substVoid
	case st == keyUnknown:
		return "", substUnknown
	case len(vals) != 1:
		return "", substVoid
	}
	return vals[0], substOK
}

// mayBeVoid reports whether v, whose key is unknown, could turn out to have
// no value: without a default an absent key leaves it empty.
func (v *variable) mayBeVoid() bool { return !v.hasDef || multiValuedKeys[v.keyLower] }

// resolve substitutes variables in toks. It returns tFalse when a variable
// has no value (statement.eval has already set such statements aside: this
// is only a safe answer) and tUnknown when one depends on an unknown key
// (its key is appended to unknown).
func resolve(toks []token, ec *evalCtx, unknown *[]string) ([]token, tri) {
	out := make([]token, 0, len(toks))
	result := tTrue
	for _, t := range toks {
		if t.op != '$' {
			out = append(out, t)
			continue
		}
		text, st := t.v.substitute(ec)
		switch st {
		case substVoid:
			return nil, tFalse
		case substUnknown:
			*unknown = append(*unknown, t.v.key)
			result = tUnknown
		default:
			out = append(out, token{op: 'l', lit: text})
		}
	}
	return out, result
}

// multiValuedKeys are the global keys AWS defines as multivalued. AWS does
// not substitute them as policy variables, whatever their number of values
// in one request.
var multiValuedKeys = map[string]bool{
	"aws:calledvia":                 true,
	"aws:principalorgpaths":         true,
	"aws:principalservicenameslist": true,
	"aws:sourceorgpaths":            true,
	"aws:tagkeys":                   true,
}

// IsMultivaluedKey reports whether AWS defines the global condition key as
// multivalued (a request may carry several values for it).
func IsMultivaluedKey(key string) bool { return multiValuedKeys[strings.ToLower(key)] }

// unknownVariables appends the keys of the variables in toks whose values
// are unknown, so an undetermined decision names every key it waits on.
func unknownVariables(toks []token, ec *evalCtx, unknown *[]string) {
	for _, t := range toks {
		if t.op != '$' {
			continue
		}
		if _, st := t.v.substitute(ec); st == substUnknown {
			*unknown = append(*unknown, t.v.key)
		}
	}
}

// statementVariables lists, once per key, the policy variables of a
// statement's Resource/NotResource and condition values, so evaluation can
// settle up front whether each has a value.
func statementVariables(st *statement) []*variable {
	var vs []*variable
	add := func(toks []token) {
		for _, t := range toks {
			if t.op == '$' && !slices.ContainsFunc(vs, t.v.sameKey) {
				vs = append(vs, t.v)
			}
		}
	}
	for i := range st.resources {
		add(st.resources[i].loose)
	}
	for i := range st.conditions {
		for j := range st.conditions[i].values {
			v := &st.conditions[i].values[j]
			add(v.toks)
			add(v.like.toks)
			add(v.arn.loose)
		}
	}
	return vs
}

// sameKey reports whether two references always have a value together:
// same key, and both with or both without a default.
func (v *variable) sameKey(o *variable) bool {
	return v.keyLower == o.keyLower && v.hasDef == o.hasDef
}

// variablesHold says whether every policy variable of the statement has a
// value. AWS: a variable whose key has no value in the request makes the
// statement not apply, whatever operator, NotResource or Effect surrounds
// it, so a negated comparison with "nothing" never turns into a match.
// tUnknown when an unknown key might leave one without a value.
func (s *statement) variablesHold(ec *evalCtx, unknown *[]string) tri {
	r := tTrue
	for _, v := range s.vars {
		switch _, st := v.substitute(ec); {
		case st == substVoid:
			return tFalse
		case st == substUnknown && v.mayBeVoid():
			*unknown = append(*unknown, v.key)
			r = tUnknown
		}
	}
	return r
}

// hasVariable reports whether any token needs substitution.
func hasVariable(toks []token) bool {
	for _, t := range toks {
		if t.op == '$' {
			return true
		}
	}
	return false
}

// literalText joins literal tokens; only meaningful when there are no
// wildcards or variables left.
func literalText(toks []token) string {
	if len(toks) == 1 && toks[0].op == 'l' {
		return toks[0].lit
	}
	var b strings.Builder
	for _, t := range toks {
		switch t.op {
		case 'l':
			b.WriteString(t.lit)
		case '*', '?':
			b.WriteByte(t.op)
		}
	}
	return b.String()
}
