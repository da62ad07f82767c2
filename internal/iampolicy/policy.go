package iampolicy

import "slices"

// Policy is a parsed and precompiled policy document. It is immutable after
// Parse and safe for concurrent use by any number of evaluations.
type Policy struct {
	// Version is the document's Version ("2012-10-17", "2008-10-17" or "").
	Version string
	// ID is the document's optional Id element.
	ID string

	statements []statement
}

// NumStatements reports how many statements the policy holds.
func (p *Policy) NumStatements() int {
	if p == nil {
		return 0
	}
	return len(p.statements)
}

// statement is one Statement element, compiled for evaluation.
type statement struct {
	// label is the Sid, or "#N" when there is none; computed once so reasons
	// cost no allocation.
	label string
	sid   string
	deny  bool

	notAction bool
	actions   []glob // lower-cased

	// hasResource is false when the statement names no resource, which for
	// resource policies means "the resource this policy is attached to".
	hasResource bool
	notResource bool
	resources   []arnPattern

	hasPrincipal bool
	notPrincipal bool
	principals   []principalEntry

	conditions []condition

	// vars are the policy variables of resources and condition values.
	vars []*variable
}

func (s *statement) effect() string {
	if s.deny {
		return "Deny"
	}
	return "Allow"
}

// StatementShape says how a statement selects the requests it applies to,
// so a caller can word a fix ("add the action to NotAction", "exempt the
// role from the condition") without reading the document again.
type StatementShape struct {
	// NotAction: the statement lists the actions it does not cover.
	NotAction bool
	// AnyPrincipal: Principal "*" (or {"AWS": "*"}): it names no one.
	AnyPrincipal bool
	// ConditionKeys are the keys its Condition tests, as spelled.
	ConditionKeys []string
	// NotPrincipal lists the entries of a NotPrincipal element, as
	// written: the principals the statement does not apply to.
	NotPrincipal []string
}

// Shape describes the first statement whose label (Sid, or "#N") is label.
func (p *Policy) Shape(label string) (StatementShape, bool) {
	if p == nil {
		return StatementShape{}, false
	}
	for i := range p.statements {
		st := &p.statements[i]
		if st.label != label {
			continue
		}
		shape := StatementShape{NotAction: st.notAction}
		for _, e := range st.principals {
			shape.AnyPrincipal = shape.AnyPrincipal || (e.kind == peAll && !st.notPrincipal)
			if st.notPrincipal {
				shape.NotPrincipal = append(shape.NotPrincipal, e.raw)
			}
		}
		for _, c := range st.conditions {
			if !slices.Contains(shape.ConditionKeys, c.key) {
				shape.ConditionKeys = append(shape.ConditionKeys, c.key)
			}
		}
		return shape, true
	}
	return StatementShape{}, false
}

// CoversAction reports whether any statement's Action (or NotAction) selects
// action, whatever its principals, resources and conditions: a policy that
// does not is irrelevant to that action.
func (p *Policy) CoversAction(action string) bool {
	if p == nil {
		return false
	}
	action = toLowerASCII(action)
	for i := range p.statements {
		if p.statements[i].matchAction(action) {
			return true
		}
	}
	return false
}
