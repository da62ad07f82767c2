package flight

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/singleflight"
)

type ctxKey struct{}

// wrapped is an ended func that says which lookup stopped.
func wrapped(err error) error { return fmt.Errorf("getting the policy: %w", err) }

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	var g singleflight.Group
	var inFlight, fetches atomic.Int32
	var overlapped atomic.Bool
	release := make(chan struct{})
	fetch := func(context.Context) (string, error) {
		fetches.Add(1)
		if inFlight.Add(1) > 1 {
			overlapped.Store(true)
		}
		defer inFlight.Add(-1)
		<-release
		return "policy", nil
	}
	const callers = 8
	var done sync.WaitGroup
	got := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		done.Go(func() {
			got[i], errs[i] = Do(context.Background(), &g, "repo", fetch, nil)
		})
	}
	// singleflight does not say when a caller has joined: give them time.
	// A caller later than that starts a new flight after the release,
	// which is no overlap.
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	done.Wait()
	if overlapped.Load() {
		t.Errorf("two fetches of one key ran at once (%d in all for %d callers), want one shared", fetches.Load(), callers)
	}
	for i := range callers {
		if got[i] != "policy" || errs[i] != nil {
			t.Errorf("caller %d got %q, %v; want policy, nil", i, got[i], errs[i])
		}
	}
	// A flight that ended is not a cache: the next call fetches again.
	if v, err := Do(context.Background(), &g, "repo", func(context.Context) (string, error) { return "newer", nil }, nil); v != "newer" || err != nil {
		t.Errorf("after the flight, Do = %q, %v; want a new fetch's newer, nil", v, err)
	}
}

func TestEndedContextStartsNothing(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	tests := map[string]struct {
		ctx     context.Context
		ended   func(error) error
		wantErr string
		wantIs  error
	}{
		"a canceled caller gets context.Canceled as is without ended": {
			ctx: canceled, wantErr: "context canceled", wantIs: context.Canceled,
		},
		"a caller past its deadline gets DeadlineExceeded as is without ended": {
			ctx: expired, wantErr: "context deadline exceeded", wantIs: context.DeadlineExceeded,
		},
		"ended turns the context's error into the caller's": {
			ctx: canceled, ended: wrapped, wantErr: "getting the policy: context canceled", wantIs: context.Canceled,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var g singleflight.Group
			fetched := false
			v, err := Do(tt.ctx, &g, "repo", func(context.Context) (int, error) { fetched = true; return 7, nil }, tt.ended)
			if fetched {
				t.Error("fetch ran for a caller whose context had ended")
			}
			if v != 0 || err == nil || err.Error() != tt.wantErr || !errors.Is(err, tt.wantIs) {
				t.Errorf("Do = %d, %v; want 0 and %q wrapping %v", v, err, tt.wantErr, tt.wantIs)
			}
		})
	}
}

func TestCallerThatGivesUpDoesNotFailTheOthers(t *testing.T) {
	var g singleflight.Group
	entered, release := make(chan struct{}), make(chan struct{})
	var fetches atomic.Int32
	fetchErr := make(chan error, 1)
	fetch := func(ctx context.Context) (string, error) {
		if fetches.Add(1) > 1 {
			// The second caller came after the flight: a flight of its own.
			return "policy", nil
		}
		close(entered)
		<-release
		// The first caller has given up by now: its cancellation must not
		// reach the fetch, its values must.
		if err := ctx.Err(); err != nil {
			fetchErr <- err
		} else if ctx.Value(ctxKey{}) != "first" {
			fetchErr <- errors.New("the caller's values were lost")
		}
		close(fetchErr)
		return "policy", nil
	}

	first, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "first"))
	firstDone := make(chan error)
	go func() {
		_, err := Do(first, &g, "repo", fetch, wrapped)
		firstDone <- err
	}()
	<-entered // the first caller started the flight
	second := make(chan string)
	go func() {
		v, _ := Do(context.Background(), &g, "repo", fetch, nil)
		second <- v
	}()
	// Give the second caller time to join the flight.
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-firstDone:
		if !errors.Is(err, context.Canceled) || err.Error() != "getting the policy: context canceled" {
			t.Errorf("the first caller got %v, want ended(context.Canceled)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first caller still waits after its context ended")
	}
	close(release)
	if v := <-second; v != "policy" {
		t.Errorf("the second caller got %q, want policy: one caller giving up must not fail the others", v)
	}
	for err := range fetchErr {
		t.Errorf("fetch: %v", err)
	}
}

func TestFetchErrorReachesEveryCaller(t *testing.T) {
	var g singleflight.Group
	boom := errors.New("AccessDeniedException")
	v, err := Do(context.Background(), &g, "repo", func(context.Context) ([]string, error) {
		return []string{"partial"}, boom
	}, wrapped)
	if v != nil || !errors.Is(err, boom) || err.Error() != boom.Error() {
		t.Errorf("Do = %q, %v; want nil and the fetch's error unwrapped by ended", v, err)
	}
}
