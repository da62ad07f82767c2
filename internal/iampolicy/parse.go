package iampolicy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Policy versions AWS accepts. Variables are substituted only under the
// current one.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Parse parses a policy document with the rules common to every kind of
// policy. Use ParseAs to also apply the rules of one kind (identity policies
// may not name a Principal, resource policies must, ...).
func Parse(data []byte) (*Policy, error) {
	return parsePolicy(data, "")
}

// ParseAs parses a policy document that will be used as kind, rejecting what
// AWS would reject for that kind.
func ParseAs(data []byte, kind Source) (*Policy, error) {
	switch kind {
	case SourceIdentity, SourceBoundary, SourceSCP, SourceResource, SourceRCP:
	default:
		return nil, fmt.Errorf("unknown policy kind %q", kind)
	}
	return parsePolicy(data, kind)
}

var (
	policyFields    = []string{"Version", "Id", "Statement"}
	statementFields = []string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
		"Resource", "NotResource", "Condition"}
	principalTypes = []string{"AWS", "Service", "Federated", "CanonicalUser"}
)

func parsePolicy(data []byte, kind Source) (*Policy, error) {
	fields, err := object(data, "")
	if err != nil {
		return nil, err
	}
	if err := onlyFields(fields, policyFields, ""); err != nil {
		return nil, err
	}
	p := &Policy{}
	if raw, ok := fields["Version"]; ok {
		if p.Version, err = str(raw, "Version"); err != nil {
			return nil, err
		}
		if p.Version != Version2012 && p.Version != Version2008 {
			return nil, errAt("Version", fmt.Sprintf("must be %q or %q, got %q", Version2012, Version2008, p.Version))
		}
	}
	if raw, ok := fields["Id"]; ok {
		if p.ID, err = str(raw, "Id"); err != nil {
			return nil, err
		}
	}
	raw, ok := fields["Statement"]
	if !ok {
		return nil, errAt("Statement", "required")
	}
	vars := p.Version == Version2012
	switch jsonKind(raw) {
	case "object":
		st, err := parseStatement(raw, "Statement", 0, vars, kind)
		if err != nil {
			return nil, err
		}
		p.statements = []statement{st}
	case "array":
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, errAt("Statement", err.Error())
		}
		p.statements = make([]statement, 0, len(items))
		firstBySid := map[string]int{}
		for i, item := range items {
			path := "Statement[" + strconv.Itoa(i) + "]"
			st, err := parseStatement(item, path, i, vars, kind)
			if err != nil {
				return nil, err
			}
			if isIAMPolicy(kind) && st.sid != "" {
				if first, dup := firstBySid[st.sid]; dup {
					return nil, errAt(path+".Sid", fmt.Sprintf("%q is also the Sid of Statement[%d]; Sids must be unique in %s", st.sid, first, kindName(kind)))
				}
				firstBySid[st.sid] = i
			}
			p.statements = append(p.statements, st)
		}
	default:
		return nil, errAt("Statement", "must be an object or an array of objects, got "+jsonKind(raw))
	}
	return p, nil
}

func parseStatement(raw json.RawMessage, path string, index int, vars bool, kind Source) (statement, error) {
	var st statement
	fields, err := object(raw, path)
	if err != nil {
		return st, err
	}
	if err := onlyFields(fields, statementFields, path); err != nil {
		return st, err
	}
	st.label = "#" + strconv.Itoa(index)
	if raw, ok := fields["Sid"]; ok {
		sid, err := str(raw, path+".Sid")
		if err != nil {
			return st, err
		}
		if sid != "" {
			st.label, st.sid = sid, sid
		}
		if isIAMPolicy(kind) && strings.IndexFunc(sid, notAlphanumeric) >= 0 {
			return st, errAt(path+".Sid", fmt.Sprintf("must contain only A-Z, a-z and 0-9 in %s, got %q", kindName(kind), sid))
		}
	}

	effRaw, ok := fields["Effect"]
	if !ok {
		return st, errAt(path+".Effect", "required")
	}
	eff, err := str(effRaw, path+".Effect")
	if err != nil {
		return st, err
	}
	switch eff {
	case "Allow":
	case "Deny":
		st.deny = true
	default:
		return st, errAt(path+".Effect", fmt.Sprintf(`must be "Allow" or "Deny", got %q`, eff))
	}

	name, raw, err := exclusive(fields, path, "Action", "NotAction", true)
	if err != nil {
		return st, err
	}
	actions, err := stringList(raw, path+"."+name)
	if err != nil {
		return st, err
	}
	st.notAction = name == "NotAction"
	st.actions = make([]glob, len(actions))
	for i, a := range actions {
		if problem := actionProblem(a); problem != "" {
			at := path + "." + name
			if jsonKind(raw) == "array" {
				at += "[" + strconv.Itoa(i) + "]"
			}
			return st, errAt(at, fmt.Sprintf("%s, got %q", problem, a))
		}
		st.actions[i] = compileGlob(tokenize(strings.ToLower(a), false, true))
	}

	needResource := kind == SourceIdentity || kind == SourceBoundary
	name, raw, err = exclusive(fields, path, "Resource", "NotResource", needResource)
	if err != nil {
		return st, err
	}
	if name != "" {
		resources, err := stringList(raw, path+"."+name)
		if err != nil {
			return st, err
		}
		st.hasResource, st.notResource = true, name == "NotResource"
		st.resources = make([]arnPattern, len(resources))
		for i, r := range resources {
			st.resources[i] = compileResourcePattern(r, vars)
		}
	}

	needPrincipal := kind == SourceResource || kind == SourceRCP
	name, raw, err = exclusive(fields, path, "Principal", "NotPrincipal", needPrincipal)
	if err != nil {
		return st, err
	}
	if name != "" {
		if kind == SourceIdentity || kind == SourceBoundary || kind == SourceSCP {
			return st, errAt(path+"."+name, "prohibited field in "+kindName(kind))
		}
		st.hasPrincipal, st.notPrincipal = true, name == "NotPrincipal"
		if st.notPrincipal && !st.deny {
			return st, errAt(path+".NotPrincipal", `is supported only with "Effect": "Deny"`)
		}
		if st.principals, err = parsePrincipal(raw, path+"."+name); err != nil {
			return st, err
		}
	}

	if raw, ok := fields["Condition"]; ok {
		if st.conditions, err = parseConditions(raw, path+".Condition", vars); err != nil {
			return st, err
		}
	}
	st.vars = statementVariables(&st)
	return st, nil
}

// actionProblem says what is wrong with an Action or NotAction entry ("" if
// nothing). AWS's Action element makes the part before the colon a service
// namespace and allows wildcards only in the action name; IAM rejects a
// wildcard vendor ("*:Get*", "ec*:Get*"), so such an entry is an error here
// rather than a pattern that silently matches nothing (or every service).
func actionProblem(a string) string {
	if a == "*" {
		return ""
	}
	service, _, ok := strings.Cut(a, ":")
	switch {
	case !ok || service == "":
		return `must be "*" or SERVICE:ACTION (e.g. ecr:BatchGetImage)`
	case strings.ContainsAny(service, "*?"):
		return `the service prefix before ":" must not contain wildcards (only a lone "*" matches every action)`
	}
	return ""
}

// isIAMPolicy reports whether kind is stored by IAM, whose grammar is
// stricter about Sids than resource policies (the seed's repository policy
// has Sid "new policy").
func isIAMPolicy(kind Source) bool { return kind == SourceIdentity || kind == SourceBoundary }

func notAlphanumeric(r rune) bool {
	return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9')
}

func kindName(kind Source) string {
	switch kind {
	case SourceIdentity:
		return "an identity policy"
	case SourceBoundary:
		return "a permissions boundary"
	case SourceSCP:
		return "a service control policy"
	case SourceRCP:
		return "a resource control policy"
	}
	return "a resource policy"
}

// exclusive returns which of a and b is present. Exactly one is allowed
// when required, at most one otherwise.
func exclusive(fields map[string]json.RawMessage, path, a, b string, required bool) (string, json.RawMessage, error) {
	ra, okA := fields[a]
	rb, okB := fields[b]
	switch {
	case okA && okB:
		return "", nil, errAt(path, fmt.Sprintf("%s and %s are mutually exclusive", a, b))
	case okA:
		return a, ra, nil
	case okB:
		return b, rb, nil
	case required:
		return "", nil, errAt(path, fmt.Sprintf("one of %s or %s is required", a, b))
	}
	return "", nil, nil
}

func parsePrincipal(raw json.RawMessage, path string) ([]principalEntry, error) {
	switch jsonKind(raw) {
	case "string":
		s, _ := str(raw, path)
		if s != "*" {
			return nil, errAt(path, fmt.Sprintf(`must be "*" or an object, got %q`, s))
		}
		return []principalEntry{{kind: peAll, raw: "*"}}, nil
	case "object":
	default:
		return nil, errAt(path, `must be "*" or an object, got `+jsonKind(raw))
	}
	fields, err := object(raw, path)
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, errAt(path, "must name at least one principal")
	}
	if err := onlyFields(fields, principalTypes, path); err != nil {
		return nil, err
	}
	var entries []principalEntry
	for _, typ := range principalTypes {
		raw, ok := fields[typ]
		if !ok {
			continue
		}
		list, err := stringList(raw, path+"."+typ)
		if err != nil {
			return nil, err
		}
		for _, s := range list {
			entries = append(entries, compilePrincipalEntry(typ, s))
		}
	}
	return entries, nil
}

func parseConditions(raw json.RawMessage, path string, vars bool) ([]condition, error) {
	ops, err := object(raw, path)
	if err != nil {
		return nil, err
	}
	var conds []condition
	for _, opName := range sortedKeys(ops) {
		spec, set, ifExists, err := parseOperator(opName)
		if err != nil {
			return nil, errAt(path, err.Error())
		}
		opPath := path + "." + opName
		keys, err := object(ops[opName], opPath)
		if err != nil {
			return nil, err
		}
		for _, key := range sortedKeys(keys) {
			keyPath := opPath + "." + key
			if strings.IndexByte(key, ':') <= 0 {
				return nil, errAt(keyPath, "a condition key must start with its service, e.g. aws:SourceVpce")
			}
			values, err := conditionValues(keys[key], keyPath)
			if err != nil {
				return nil, err
			}
			c := condition{operatorSpec: spec, set: set, ifExists: ifExists, key: key, keyLower: strings.ToLower(key)}
			c.values = make([]condValue, len(values))
			for i, v := range values {
				if c.values[i], err = compileCondValue(spec.fam, v, vars); err != nil {
					return nil, errAt(keyPath, err.Error())
				}
			}
			conds = append(conds, c)
		}
	}
	return conds, nil
}

// conditionValues reads a condition value: a string, number or boolean (kept
// as its JSON text), or an array of them.
func conditionValues(raw json.RawMessage, path string) ([]string, error) {
	if jsonKind(raw) == "array" {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, errAt(path, err.Error())
		}
		out := make([]string, len(items))
		for i, item := range items {
			v, err := scalarText(item, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	v, err := scalarText(raw, path)
	if err != nil {
		return nil, err
	}
	return []string{v}, nil
}

func scalarText(raw json.RawMessage, path string) (string, error) {
	switch jsonKind(raw) {
	case "string":
		return str(raw, path)
	case "number", "boolean":
		return string(bytes.TrimSpace(raw)), nil
	}
	return "", errAt(path, "must be a string, number or boolean, got "+jsonKind(raw))
}

// stringList reads a string or a non-empty array of non-empty strings.
func stringList(raw json.RawMessage, path string) ([]string, error) {
	switch jsonKind(raw) {
	case "string":
		s, err := str(raw, path)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, errAt(path, "must not be empty")
		}
		return []string{s}, nil
	case "array":
	default:
		return nil, errAt(path, "must be a string or an array of strings, got "+jsonKind(raw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errAt(path, err.Error())
	}
	if len(items) == 0 {
		return nil, errAt(path, "must not be empty")
	}
	out := make([]string, len(items))
	for i, item := range items {
		p := path + "[" + strconv.Itoa(i) + "]"
		if jsonKind(item) != "string" {
			return nil, errAt(p, "must be a string, got "+jsonKind(item))
		}
		s, err := str(item, p)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, errAt(p, "must not be empty")
		}
		out[i] = s
	}
	return out, nil
}

// object decodes a JSON object into its fields.
func object(raw []byte, path string) (map[string]json.RawMessage, error) {
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		return nil, errAt(path, "invalid JSON: "+err.Error())
	}
	if k := jsonKind(raw); k != "object" {
		return nil, errAt(path, "must be an object, got "+k)
	}
	// Decoded key by key: encoding/json keeps the last of two equal keys,
	// which would silently drop, say, the first of two StringEquals blocks.
	// AWS's grammar forbids repeating a key.
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, errAt(path, "invalid JSON: "+err.Error())
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errAt(path, "invalid JSON: "+err.Error())
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, errAt(joinPath(path, key), "invalid JSON: "+err.Error())
		}
		if _, dup := fields[key]; dup {
			return nil, errAt(joinPath(path, key), "duplicate key (AWS allows each key once per object)")
		}
		fields[key] = value
	}
	if _, err := dec.Token(); err != nil { // }
		return nil, errAt(path, "invalid JSON: "+err.Error())
	}
	return fields, nil
}

func onlyFields(fields map[string]json.RawMessage, allowed []string, path string) error {
	for _, k := range sortedKeys(fields) {
		if !slices.Contains(allowed, k) {
			return errAt(joinPath(path, k), "unknown field")
		}
	}
	return nil
}

func str(raw json.RawMessage, path string) (string, error) {
	var s string
	if jsonKind(raw) != "string" {
		return "", errAt(path, "must be a string, got "+jsonKind(raw))
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errAt(path, "invalid JSON: "+err.Error())
	}
	return s, nil
}

// jsonKind names the JSON type of raw from its first byte; it does not
// validate the rest.
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "invalid"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	}
	return "invalid"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
