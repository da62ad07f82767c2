package iampolicy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// requestFields are the top-level fields of a `policy eval` request.
var requestFields = []string{"principal", "action", "resource", "context", "currentTime",
	"identityPolicies", "permissionsBoundary", "resourcePolicy",
	"serviceControlPolicies", "resourceControlPolicies"}

// Default names for policies the request leaves unnamed.
const (
	DefaultResourcePolicyName = "resource policy"
	DefaultBoundaryName       = "permissions boundary"
)

// ParseEvalRequest parses the JSON request of `ecr-preflight policy eval`
// (see docs/policy-evaluation.md). Errors carry the JSON path of the
// offending element from the request's top level. When the request has no
// currentTime, Request.Now is zero and the caller supplies the time.
func ParseEvalRequest(data []byte) (Request, PolicySet, error) {
	var req Request
	var set PolicySet
	fields, err := object(data, "")
	if err != nil {
		return req, set, err
	}
	if err := onlyFields(fields, requestFields, ""); err != nil {
		return req, set, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"principal", &req.Principal}, {"action", &req.Action}, {"resource", &req.Resource}} {
		raw, ok := fields[f.name]
		if !ok || jsonKind(raw) == "null" {
			return req, set, errAt(f.name, "required")
		}
		if *f.dst, err = str(raw, f.name); err != nil {
			return req, set, err
		}
		if *f.dst == "" {
			return req, set, errAt(f.name, "required")
		}
	}
	if err := checkPrincipal(req.Principal); err != nil {
		return req, set, err
	}
	if err := checkAction(req.Action); err != nil {
		return req, set, err
	}
	if raw, ok := present(fields, "context"); ok {
		if req.Context, err = parseContext(raw); err != nil {
			return req, set, err
		}
	}
	if raw, ok := present(fields, "currentTime"); ok {
		s, err := str(raw, "currentTime")
		if err != nil {
			return req, set, err
		}
		if req.Now, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return req, set, errAt("currentTime", fmt.Sprintf("must be an RFC 3339 time, got %q", s))
		}
	}
	if raw, ok := present(fields, "identityPolicies"); ok {
		items, err := array(raw, "identityPolicies")
		if err != nil {
			return req, set, err
		}
		for i, item := range items {
			path := "identityPolicies[" + strconv.Itoa(i) + "]"
			np, err := namedPolicy(item, path, SourceIdentity, path, true)
			if err != nil {
				return req, set, err
			}
			set.Identity = append(set.Identity, np)
		}
	}
	if raw, ok := present(fields, "permissionsBoundary"); ok {
		np, err := namedPolicy(raw, "permissionsBoundary", SourceBoundary, DefaultBoundaryName, true)
		if err != nil {
			return req, set, err
		}
		set.Boundary = &np
	}
	if raw, ok := present(fields, "resourcePolicy"); ok {
		np, err := namedPolicy(raw, "resourcePolicy", SourceResource, DefaultResourcePolicyName, true)
		if err != nil {
			return req, set, err
		}
		set.Resource = &np
	}
	if raw, ok := present(fields, "serviceControlPolicies"); ok {
		if set.SCPs, err = orgPolicies(raw, "serviceControlPolicies", SourceSCP); err != nil {
			return req, set, err
		}
	}
	if raw, ok := present(fields, "resourceControlPolicies"); ok {
		if set.RCPs, err = orgPolicies(raw, "resourceControlPolicies", SourceRCP); err != nil {
			return req, set, err
		}
	}
	return req, set, nil
}

// present returns a field unless it is missing or null.
func present(fields map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := fields[name]
	if !ok || jsonKind(raw) == "null" {
		return nil, false
	}
	return raw, true
}

func checkPrincipal(p string) error {
	parts, ok := splitARN(p)
	if !ok || parts[0] != "arn" || parts[1] == "" || parts[2] == "" {
		return errAt("principal", fmt.Sprintf("must be an IAM role, role session, user or account ARN, got %q", p))
	}
	return nil
}

func checkAction(a string) error {
	svc, name, ok := strings.Cut(a, ":")
	if !ok || svc == "" || name == "" {
		return errAt("action", fmt.Sprintf("must be service:Action, got %q", a))
	}
	return nil
}

func array(raw json.RawMessage, path string) ([]json.RawMessage, error) {
	if k := jsonKind(raw); k != "array" {
		return nil, errAt(path, "must be an array, got "+k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errAt(path, "invalid JSON: "+err.Error())
	}
	return items, nil
}

func parseContext(raw json.RawMessage) (map[string][]string, error) {
	fields, err := object(raw, "context")
	if err != nil {
		return nil, err
	}
	ctx := make(map[string][]string, len(fields))
	for _, k := range sortedKeys(fields) {
		path := "context[" + strconv.Quote(k) + "]"
		if k == "" {
			return nil, errAt(path, "empty key")
		}
		for other := range ctx {
			if strings.EqualFold(other, k) {
				return nil, errAt(path, fmt.Sprintf("duplicates %q (keys are case-insensitive)", other))
			}
		}
		v := fields[k]
		switch jsonKind(v) {
		case "null":
			ctx[k] = nil
		case "string", "number", "boolean":
			s, err := scalarText(v, path)
			if err != nil {
				return nil, err
			}
			ctx[k] = []string{s}
		case "array":
			items, err := conditionValues(v, path)
			if err != nil {
				return nil, err
			}
			ctx[k] = items
		default:
			return nil, errAt(path, "must be a string, an array of strings or null, got "+jsonKind(v))
		}
	}
	return ctx, nil
}

// namedPolicy reads {"name": ..., "document": ...} or, when bare is
// allowed, a policy document on its own (named def).
func namedPolicy(raw json.RawMessage, path string, kind Source, def string, bare bool) (NamedPolicy, error) {
	fields, err := object(raw, path)
	if err != nil {
		return NamedPolicy{}, err
	}
	doc, named := fields["document"]
	if !named {
		if !bare {
			return NamedPolicy{}, errAt(path+".document", "required")
		}
		p, err := ParseAs(raw, kind)
		if err != nil {
			return NamedPolicy{}, prefixError(path, err)
		}
		return NamedPolicy{Name: def, Policy: p}, nil
	}
	if err := onlyFields(fields, []string{"name", "document"}, path); err != nil {
		return NamedPolicy{}, err
	}
	name := def
	if n, ok := present(fields, "name"); ok {
		if name, err = str(n, path+".name"); err != nil {
			return NamedPolicy{}, err
		}
		if name == "" {
			name = def
		}
	}
	p, err := ParseAs(doc, kind)
	if err != nil {
		return NamedPolicy{}, prefixError(path+".document", err)
	}
	return NamedPolicy{Name: name, Policy: p}, nil
}

// orgPolicies reads SCPs or RCPs: one array per organization level.
func orgPolicies(raw json.RawMessage, path string, kind Source) ([][]NamedPolicy, error) {
	levels, err := array(raw, path)
	if err != nil {
		return nil, err
	}
	if len(levels) == 0 {
		return nil, nil
	}
	out := make([][]NamedPolicy, len(levels))
	for l, lraw := range levels {
		lpath := path + "[" + strconv.Itoa(l) + "]"
		items, err := array(lraw, lpath)
		if err != nil {
			return nil, err
		}
		out[l] = make([]NamedPolicy, 0, len(items))
		for i, item := range items {
			ipath := lpath + "[" + strconv.Itoa(i) + "]"
			def := fmt.Sprintf("%s[%d][%d]", kind, l, i)
			np, err := namedPolicy(item, ipath, kind, def, true)
			if err != nil {
				return nil, err
			}
			out[l] = append(out[l], np)
		}
	}
	return out, nil
}
