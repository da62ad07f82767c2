package webhook

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// errNotInTime reports that a dependency did not answer within the
// admission budget.
var errNotInTime = errors.New("did not answer in time")

// panicError carries a recovered panic out of a guarded call.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// guarded runs fn in its own goroutine and returns its answer, or
// errNotInTime as soon as ctx is done, whichever comes first. The select
// is what keeps the admission on time even when fn ignores ctx; the
// recover is what keeps a panicking dependency from taking the server
// down. wg counts the goroutine until fn really returns, so the caller can
// hold its concurrency slot for work that outlives the admission.
func guarded[T any](ctx context.Context, wg *sync.WaitGroup, fn func(context.Context) (T, error)) (T, error) {
	type answer struct {
		value T
		err   error
	}
	// Buffered: a late answer must not block the goroutine forever.
	done := make(chan answer, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			if r := recover(); r != nil {
				done <- answer{err: &panicError{value: r, stack: debug.Stack()}}
			}
		}()
		v, err := fn(ctx)
		done <- answer{value: v, err: err}
	}()
	select {
	case a := <-done:
		return a.value, a.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("%w: %w", errNotInTime, context.Cause(ctx))
	}
}

// limiter bounds how many admissions may be checking at once.
type limiter struct {
	slots chan struct{}
}

func newLimiter(n int) *limiter {
	return &limiter{slots: make(chan struct{}, max(n, 1))}
}

// acquire takes a slot, waiting at most wait (and never past ctx). A false
// answer means the server is saturated: the caller allows unverified rather
// than queueing without bound.
func (l *limiter) acquire(ctx context.Context, wait time.Duration) bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	if wait <= 0 {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// releaseAfter frees the slot once every goroutine counted by wg has
// returned. A Checker that hangs thus keeps its slot, so hung calls
// saturate the limiter (visible as unverified admissions) instead of
// piling up goroutines without bound.
func (l *limiter) releaseAfter(wg *sync.WaitGroup) {
	go func() {
		wg.Wait()
		<-l.slots
	}()
}
