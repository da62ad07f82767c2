package iampolicy

import (
	"errors"
	"strings"
)

// ParseError is a problem found while parsing a policy or an evaluation
// request. Path locates it with a JSON path (Statement[0].Effect) so a user
// can find the offending element in a long document.
type ParseError struct {
	Path string
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func errAt(path, msg string) error { return &ParseError{Path: path, Msg: msg} }

// joinPath appends a field or index step to a JSON path.
func joinPath(base, step string) string {
	switch {
	case base == "":
		return strings.TrimPrefix(step, ".")
	case strings.HasPrefix(step, "["):
		return base + step
	case strings.HasPrefix(step, "."):
		return base + step
	default:
		return base + "." + step
	}
}

// prefixError puts prefix in front of a ParseError's path, so a policy parsed
// on its own reports Statement[0]... and the same policy inside a request
// reports identityPolicies[1].document.Statement[0]...
func prefixError(prefix string, err error) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		return &ParseError{Path: joinPath(prefix, pe.Path), Msg: pe.Msg}
	}
	return &ParseError{Path: prefix, Msg: err.Error()}
}
