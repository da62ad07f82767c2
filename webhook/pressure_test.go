package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// slowChecker answers like fakeChecker after a delay, so that admissions
// overlap.
type slowChecker struct {
	fakeChecker
	delay time.Duration
}

func (s *slowChecker) CheckPools(ctx context.Context, images []string, pl nodepools.Placement) []preflight.Result {
	time.Sleep(s.delay)
	return s.fakeChecker.CheckPools(ctx, images, pl)
}

// TestBurstOfIdenticalAdmissionsIsNeverLetThrough: a burst of copies of a
// denied object, far beyond the concurrency limit, waits for the one check
// in flight instead of being allowed unverified.
func TestBurstOfIdenticalAdmissionsIsNeverLetThrough(t *testing.T) {
	checker := &slowChecker{fakeChecker: fakeChecker{results: seedResults}, delay: 100 * time.Millisecond}
	metrics := &recorder{}
	a, err := newAdmitter(Options{Checker: checker, Pools: StaticRoles{nodeRole}, Mode: ModeDeny,
		MaxConcurrent: 1, QueueWait: 10 * time.Millisecond, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	const burst = 200
	errs := make([]error, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			_, errs[i] = deploymentValidator(a).ValidateCreate(t.Context(), deployment("ui-private", uiImage))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "RepositoryPolicyDenies") {
			t.Fatalf("admission %d: %v, want the denial", i, err)
		}
	}
	if n := len(checker.Calls()); n > 5 {
		t.Errorf("%d checks for %d identical admissions, want a handful", n, burst)
	}
	if len(metrics.unverified) != 0 {
		t.Errorf("unverified admissions counted: %v", metrics.unverified)
	}
}

// TestDistinctOverloadIsAllowedUnverifiedAndCounted: the fail-open stays
// for genuinely distinct work beyond the limit, and is counted.
func TestDistinctOverloadIsAllowedUnverifiedAndCounted(t *testing.T) {
	checker := &slowChecker{fakeChecker: fakeChecker{results: seedResults}, delay: 300 * time.Millisecond}
	metrics := &recorder{}
	a, err := newAdmitter(Options{Checker: checker, Pools: StaticRoles{nodeRole}, Mode: ModeDeny,
		MaxConcurrent: 1, QueueWait: 10 * time.Millisecond, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := deploymentValidator(a).ValidateCreate(t.Context(), deployment("ui-private", uiImage))
		first <- err
	}()
	time.Sleep(50 * time.Millisecond) // the first holds the only slot
	w, err := deploymentValidator(a).ValidateCreate(t.Context(), deployment("other", okImage))
	if err != nil || len(w) != 1 || !strings.Contains(w[0], "server busy; 1 image not verified") {
		t.Fatalf("got %q, %v; want an unverified allow with a warning", w, err)
	}
	if err := <-first; err == nil {
		t.Fatal("the first admission was not denied")
	}
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	if !slices.Contains(metrics.unverified, unverifiedOverload) {
		t.Errorf("unverified = %v, want overload counted", metrics.unverified)
	}
}

func TestImagesBeyondTheBoundAreNamedNotChecked(t *testing.T) {
	checker := &fakeChecker{results: seedResults}
	metrics := &recorder{}
	a, err := newAdmitter(Options{Checker: checker, Pools: StaticRoles{nodeRole}, Mode: ModeWarn, MaxImages: 3, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for i := range 5 {
		images = append(images, fmt.Sprintf("1234567890.dkr.ecr.us-west-2.amazonaws.com/app-%d:1", i))
	}
	w, err := deploymentValidator(a).ValidateCreate(t.Context(), deployment("many", images...))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(w, "ecr-preflight: 2 images not checked: more than 3 distinct images in one object") {
		t.Errorf("warnings %q do not name the unchecked images", w)
	}
	if calls := checker.Calls(); len(calls) != 1 || len(calls[0]) != 3 {
		t.Errorf("checked %v, want the first 3 images", calls)
	}
	if !slices.Contains(metrics.unverified, unverifiedTooMany) {
		t.Errorf("unverified = %v, want too_many_images counted", metrics.unverified)
	}
}
