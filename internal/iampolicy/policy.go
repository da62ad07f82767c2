package iampolicy

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
}

func (s *statement) effect() string {
	if s.deny {
		return "Deny"
	}
	return "Allow"
}
