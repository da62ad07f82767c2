package iampolicy

// tri is a Kleene truth value. The ordering False < Unknown < True lets AND
// be min, OR be max and NOT be 2-x, which keeps the evaluator branch-light.
type tri int8

const (
	tFalse tri = iota
	tUnknown
	tTrue
)

func triOf(b bool) tri {
	if b {
		return tTrue
	}
	return tFalse
}

func (a tri) and(b tri) tri { return min(a, b) }

func (a tri) or(b tri) tri { return max(a, b) }

func (a tri) not() tri { return tTrue - a }
