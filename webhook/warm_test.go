package webhook

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// memoryChecker is a fakeChecker that also answers from memory for the
// images in cached, or panics there when cachedPanics.
type memoryChecker struct {
	fakeChecker
	cached       map[string]preflight.Result
	cachedPanics bool

	cacheMu     sync.Mutex
	cachedCalls [][]string
}

var _ CachedChecker = (*memoryChecker)(nil)

func (m *memoryChecker) CachedPools(images []string, pl nodepools.Placement) ([]preflight.Result, bool) {
	m.cacheMu.Lock()
	m.cachedCalls = append(m.cachedCalls, rolesOf(pl))
	m.cacheMu.Unlock()
	if m.cachedPanics {
		panic("cache exploded")
	}
	out := make([]preflight.Result, len(images))
	for i, img := range images {
		r, ok := m.cached[img]
		if !ok {
			return nil, false
		}
		out[i] = r
	}
	return out, true
}

// dynamicRoles is a PoolProvider that cannot answer from memory.
type dynamicRoles struct{ calls *int }

func (d dynamicRoles) Placement(ctx context.Context, t nodepools.Template) (nodepools.Placement, error) {
	*d.calls++
	return StaticRoles{nodeRole}.Placement(ctx, t)
}

// TestWarmAdmissions: an answer the Checker has in memory is taken as it
// is, without a Check, a concurrency slot or a deadline; anything else
// goes through the guarded check as before.
func TestWarmAdmissions(t *testing.T) {
	warm := map[string]preflight.Result{uiImage: seedResults[uiImage], okImage: seedResults[okImage]}
	admitWith := func(t *testing.T, c Checker, roles PoolProvider, images ...string) (admission.Warnings, error) {
		t.Helper()
		a, err := newAdmitter(Options{Checker: c, Pools: roles, Mode: ModeDeny})
		if err != nil {
			t.Fatal(err)
		}
		return deploymentValidator(a).ValidateCreate(t.Context(), deployment("ui-private", images...))
	}

	t.Run("a warm answer is judged as a checked one, without a Check", func(t *testing.T) {
		c := &memoryChecker{fakeChecker: fakeChecker{results: seedResults}, cached: warm}
		_, err := admitWith(t, c, StaticRoles{nodeRole}, uiImage, okImage)
		if errString(err) != uiDenial {
			t.Errorf("error %v, want the seed denial", err)
		}
		if calls := c.Calls(); len(calls) != 0 {
			t.Errorf("Check called for a warm answer: %q", calls)
		}
		if len(c.cachedCalls) != 1 || !slices.Equal(c.cachedCalls[0], []string{nodeRole}) {
			t.Errorf("Cached asked for roles %q, want the static roles once", c.cachedCalls)
		}
	})
	t.Run("one image not in memory sends the object to Check", func(t *testing.T) {
		c := &memoryChecker{fakeChecker: fakeChecker{results: seedResults}, cached: warm}
		w, err := admitWith(t, c, StaticRoles{nodeRole}, okImage, vpcImage)
		if err != nil || len(w) != 1 || !strings.Contains(w[0], "Undetermined") {
			t.Errorf("got %q, %v; want the checked warning", w, err)
		}
		if calls := c.Calls(); len(calls) != 1 || len(calls[0]) != 2 {
			t.Errorf("Check calls %q, want one for both images", calls)
		}
	})
	t.Run("a panic in Cached is logged and falls back to the guarded Check", func(t *testing.T) {
		c := &memoryChecker{fakeChecker: fakeChecker{results: seedResults}, cached: warm, cachedPanics: true}
		a, err := newAdmitter(Options{Checker: c, Pools: StaticRoles{nodeRole}, Mode: ModeDeny})
		if err != nil {
			t.Fatal(err)
		}
		logs := &logBuffer{}
		_, err = deploymentValidator(a).ValidateCreate(logs.context(t.Context()), deployment("ui-private", uiImage))
		if errString(err) != uiDenial {
			t.Errorf("error %v, want the seed denial from Check", err)
		}
		if calls := c.Calls(); len(calls) != 1 {
			t.Errorf("Check calls %q, want one", calls)
		}
		if l := logs.String(); !strings.Contains(l, "reading cached answers panicked") || !strings.Contains(l, "cache exploded") {
			t.Errorf("the panic was not logged: %s", l)
		}
	})
	t.Run("roles that are not a list in memory are looked up under the guard", func(t *testing.T) {
		c := &memoryChecker{fakeChecker: fakeChecker{results: seedResults}, cached: warm}
		var lookups int
		if _, err := admitWith(t, c, dynamicRoles{&lookups}, uiImage); errString(err) != uiDenial {
			t.Errorf("error %v, want the seed denial", err)
		}
		if lookups != 1 || len(c.Calls()) != 1 || len(c.cachedCalls) != 0 {
			t.Errorf("%d role lookups, %d checks, %d cache reads; want 1, 1, 0", lookups, len(c.Calls()), len(c.cachedCalls))
		}
	})
	t.Run("a warm admission is answered while every slot is held", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		c := &memoryChecker{fakeChecker: fakeChecker{results: seedResults, block: release}, cached: warm}
		a, err := newAdmitter(Options{Checker: c, Pools: StaticRoles{nodeRole}, Mode: ModeDeny,
			Timeout: 50 * time.Millisecond, MaxConcurrent: 1, QueueWait: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// A cold image hangs in Check, holding the only slot past its answer.
		if w, _ := deploymentValidator(a).ValidateCreate(t.Context(), deployment("cold", vpcImage)); len(w) != 1 {
			t.Fatalf("cold admission: %q", w)
		}
		_, err = deploymentValidator(a).ValidateCreate(t.Context(), deployment("ui-private", uiImage))
		if errString(err) != uiDenial {
			t.Errorf("warm admission while saturated: %v, want the seed denial", err)
		}
	})
}
