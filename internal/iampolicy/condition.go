package iampolicy

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// family groups condition operators that compare values the same way.
type family int8

const (
	famString family = iota
	famStringIgnoreCase
	famStringLike
	famNumeric
	famDate
	famBool
	famBinary
	famIP
	famARN
	famNull
)

// comparison is the relation a Numeric or Date operator tests.
type comparison int8

const (
	cmpEq comparison = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

// setMode is the ForAnyValue:/ForAllValues: qualifier.
type setMode int8

const (
	setNone setMode = iota
	setAny
	setAll
)

type operatorSpec struct {
	fam     family
	cmp     comparison
	negated bool
}

// operators lists every base operator name AWS documents.
var operators = map[string]operatorSpec{
	"StringEquals":              {fam: famString},
	"StringNotEquals":           {fam: famString, negated: true},
	"StringEqualsIgnoreCase":    {fam: famStringIgnoreCase},
	"StringNotEqualsIgnoreCase": {fam: famStringIgnoreCase, negated: true},
	"StringLike":                {fam: famStringLike},
	"StringNotLike":             {fam: famStringLike, negated: true},
	"NumericEquals":             {fam: famNumeric},
	"NumericNotEquals":          {fam: famNumeric, negated: true},
	"NumericLessThan":           {fam: famNumeric, cmp: cmpLt},
	"NumericLessThanEquals":     {fam: famNumeric, cmp: cmpLe},
	"NumericGreaterThan":        {fam: famNumeric, cmp: cmpGt},
	"NumericGreaterThanEquals":  {fam: famNumeric, cmp: cmpGe},
	"DateEquals":                {fam: famDate},
	"DateNotEquals":             {fam: famDate, negated: true},
	"DateLessThan":              {fam: famDate, cmp: cmpLt},
	"DateLessThanEquals":        {fam: famDate, cmp: cmpLe},
	"DateGreaterThan":           {fam: famDate, cmp: cmpGt},
	"DateGreaterThanEquals":     {fam: famDate, cmp: cmpGe},
	"Bool":                      {fam: famBool},
	"BinaryEquals":              {fam: famBinary},
	"IpAddress":                 {fam: famIP},
	"NotIpAddress":              {fam: famIP, negated: true},
	"ArnEquals":                 {fam: famARN},
	"ArnLike":                   {fam: famARN},
	"ArnNotEquals":              {fam: famARN, negated: true},
	"ArnNotLike":                {fam: famARN, negated: true},
	"Null":                      {fam: famNull},
}

// parseOperator splits "ForAllValues:StringLikeIfExists" into its parts.
func parseOperator(name string) (operatorSpec, setMode, bool, error) {
	base, set := name, setNone
	switch {
	case strings.HasPrefix(base, "ForAnyValue:"):
		base, set = strings.TrimPrefix(base, "ForAnyValue:"), setAny
	case strings.HasPrefix(base, "ForAllValues:"):
		base, set = strings.TrimPrefix(base, "ForAllValues:"), setAll
	}
	ifExists := false
	if b, ok := strings.CutSuffix(base, "IfExists"); ok {
		base, ifExists = b, true
	}
	spec, ok := operators[base]
	if !ok || (spec.fam == famNull && (ifExists || set != setNone)) {
		return operatorSpec{}, 0, false, fmt.Errorf("unknown operator %q", name)
	}
	return spec, set, ifExists, nil
}

// condition is one key under one operator, compiled.
type condition struct {
	operatorSpec
	set      setMode
	ifExists bool
	key      string // as spelled in the policy
	keyLower string
	values   []condValue
}

// condValue is one policy value, parsed for its operator at parse time. When
// it holds policy variables, parsing waits until they are substituted.
type condValue struct {
	raw  string
	toks []token // template with variables (vars set), or StringLike pattern
	vars bool
	like glob
	arn  arnPattern
	num  float64
	tm   time.Time
	ip   netip.Prefix
	b    bool
}

func compileCondValue(fam family, raw string, vars bool) (condValue, error) {
	v := condValue{raw: raw}
	switch fam {
	case famStringLike:
		v.like = compileGlob(tokenize(raw, vars, true))
		return v, nil
	case famARN:
		v.arn = compileARNPattern(raw, vars)
		return v, nil
	}
	if vars && !takesVariables(fam) {
		if strings.Contains(raw, "${") {
			return v, fmt.Errorf("value %q: AWS supports policy variables only with String, ARN and Bool operators", raw)
		}
		vars = false
	}
	if vars {
		v.toks = tokenize(raw, true, false)
		if hasVariable(v.toks) {
			v.vars = true
			return v, nil
		}
		// Escapes such as ${$} leave literal text that differs from raw.
		raw = literalText(v.toks)
		v.raw = raw
	}
	if fam == famNull {
		b, ok := parseBoolText(raw)
		if !ok {
			return v, fmt.Errorf("value %q is not \"true\" or \"false\"", raw)
		}
		v.b = b
		return v, nil
	}
	if err := v.parseTyped(fam, raw); err != nil {
		return v, err
	}
	return v, nil
}

// takesVariables reports whether AWS substitutes policy variables in values
// of fam: not under Numeric, Date, Binary, IpAddress or Null.
func takesVariables(fam family) bool {
	switch fam {
	case famNumeric, famDate, famBinary, famIP, famNull:
		return false
	}
	return true
}

// parseTyped fills in the typed form of raw for fam.
func (v *condValue) parseTyped(fam family, raw string) error {
	var ok bool
	switch fam {
	case famNumeric:
		v.num, ok = parseNumber(raw)
		if !ok {
			return fmt.Errorf("value %q is not a number", raw)
		}
	case famDate:
		v.tm, ok = parseDate(raw)
		if !ok {
			return fmt.Errorf("value %q is not a date", raw)
		}
	case famBool:
		v.b, ok = parseBoolText(raw)
		if !ok {
			return fmt.Errorf("value %q is not \"true\" or \"false\"", raw)
		}
	case famBinary:
		if _, err := base64.StdEncoding.DecodeString(raw); err != nil {
			return fmt.Errorf("value %q is not base64", raw)
		}
	case famIP:
		v.ip, ok = parseIPPrefix(raw)
		if !ok {
			return fmt.Errorf("value %q is not an IP address or CIDR", raw)
		}
	}
	return nil
}

func parseBoolText(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// dateLayouts are the ISO 8601 shapes AWS accepts in Date conditions.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
	"2006-01", // W3C's year-and-month; a bare year reads as epoch seconds
}

func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if isDigits(s) || (s[0] == '-' && isDigits(s[1:])) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	if f, ok := parseNumber(s); ok && strings.IndexFunc(s, isDateRune) < 0 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// isDateRune marks characters that make a numeric-looking text a date.
func isDateRune(r rune) bool { return r == '-' || r == 'T' || r == ':' }

func parseIPPrefix(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}
