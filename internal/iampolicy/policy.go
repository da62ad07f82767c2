package iampolicy

// Policy is a parsed policy document. (Placeholder: the parser lands with
// the evaluator.)
type Policy struct{}
