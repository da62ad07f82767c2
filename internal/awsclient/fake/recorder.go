package fake

import (
	"sync"
	"time"
)

// recorder counts calls per operation and returns injected errors.
type recorder struct {
	mu sync.Mutex
	// WantErr maps an operation name ("DescribeImages") to the error it
	// returns.
	WantErr map[string]error
	// Delay is slept before each answer, to hold calls in flight.
	Delay time.Duration
	calls map[string]int
}

// begin records a call to op and returns its injected error, if any.
func (r *recorder) begin(op string) error {
	if r.Delay > 0 {
		time.Sleep(r.Delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	r.calls[op]++
	return r.WantErr[op]
}

// SetErr makes op return err (nil clears it).
func (r *recorder) SetErr(op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.WantErr == nil {
		r.WantErr = map[string]error{}
	}
	r.WantErr[op] = err
}

// Calls returns how many times op was called.
func (r *recorder) Calls(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[op]
}

// TotalCalls returns the number of calls to all operations.
func (r *recorder) TotalCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return n
}
