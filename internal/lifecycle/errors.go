package lifecycle

import "fmt"

// ValidationError is a reason ECR would refuse a lifecycle policy (PutLifecyclePolicy
// answers InvalidParameterException "Lifecycle policy validation failure").
// It names the rule and the field so a user can find them in a long policy.
type ValidationError struct {
	// Index is the rule's position in the "rules" array, -1 for a problem
	// with the document as a whole.
	Index int
	// Priority is the rule's rulePriority, 0 when it is missing or invalid.
	Priority int
	// Field is a JSON path inside the rule (selection.tagPatternList[1]) or
	// the document (rules); "" when the problem concerns the whole rule.
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	var where string
	switch {
	case e.Index < 0:
		where = "lifecycle policy"
	case e.Priority > 0:
		where = fmt.Sprintf("rule with rulePriority %d", e.Priority)
	default:
		where = fmt.Sprintf("rules[%d]", e.Index)
	}
	if e.Field != "" {
		where += ": " + e.Field
	}
	return where + ": " + e.Msg
}

func docError(field, msg string) error {
	return &ValidationError{Index: -1, Field: field, Msg: msg}
}

// ruleError builds errors for the rule at index, once its priority is known.
type ruleError struct {
	index, priority int
}

func (r ruleError) at(field, format string, args ...any) error {
	return &ValidationError{Index: r.index, Priority: r.priority, Field: field, Msg: fmt.Sprintf(format, args...)}
}
