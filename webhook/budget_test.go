package webhook

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

const notInTime = `container "ui": 1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1 could not be verified: LookupFailed (could not verify in time)`

// hangingModes never answers and ignores its context.
type hangingModes struct{ release chan struct{} }

func (h hangingModes) NamespaceMode(context.Context, string) (string, bool, error) {
	<-h.release
	return "", false, nil
}

func TestTimeBudget(t *testing.T) {
	const budget = 100 * time.Millisecond
	tests := map[string]struct {
		opts         func(o *Options, release chan struct{})
		wantWarnings admission.Warnings
	}{
		"a checker that ignores its context still answers in time, as unknown": {
			opts: func(o *Options, release chan struct{}) {
				o.Checker = &fakeChecker{results: seedResults, block: release}
			},
			wantWarnings: admission.Warnings{notInTime},
		},
		"a namespace lookup that hangs falls back to the default mode": {
			opts: func(o *Options, release chan struct{}) {
				o.NamespaceModes = hangingModes{release: release}
			},
			wantWarnings: nil, // deny mode: the seed image is denied, see wantErr below
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			o := Options{Checker: &fakeChecker{results: seedResults}, Pools: StaticRoles{nodeRole}, Mode: ModeDeny, Timeout: budget}
			tc.opts(&o, release)
			a, err := newAdmitter(o)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			w, err := deploymentValidator(a).ValidateCreate(context.Background(), deployment("ui-private", uiImage))
			if took := time.Since(start); took > budget+200*time.Millisecond {
				t.Errorf("admission took %v, budget %v", took, budget)
			}
			if d := diff(tc.wantWarnings, w); d != "" {
				t.Errorf("warnings:\n%s", d)
			}
			if tc.wantWarnings != nil && err != nil {
				t.Errorf("a timeout must never reject: %v", err)
			}
			if tc.wantWarnings == nil && errString(err) != uiDenial {
				t.Errorf("error %v, want the seed denial", err)
			}
		})
	}
}

// TestSaturation: a hung checker keeps its concurrency slot after its
// admission answered, so later admissions wait briefly and are allowed
// unverified instead of piling up goroutines.
func TestSaturation(t *testing.T) {
	release := make(chan struct{})
	checker := &fakeChecker{results: seedResults, block: release}
	rec := &recorder{}
	a, err := newAdmitter(Options{
		Checker: checker, Pools: StaticRoles{nodeRole}, Mode: ModeDeny, Metrics: rec,
		Timeout: 50 * time.Millisecond, MaxConcurrent: 1, QueueWait: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if w, _ := (deploymentValidator(a)).ValidateCreate(ctx, deployment("ui-private", uiImage)); diff(admission.Warnings{notInTime}, w) != "" {
		t.Fatalf("first admission: %q", w)
	}
	goroutines := runtime.NumGoroutine()
	for i := range 20 {
		// Distinct objects: an identical one would share the check in
		// flight instead of asking for a slot.
		other := fmt.Sprintf("1234567890.dkr.ecr.us-west-2.amazonaws.com/other-%d:1", i)
		w, err := deploymentValidator(a).ValidateCreate(ctx, deployment("other", other))
		if err != nil || diff(admission.Warnings{"ecr-preflight: server busy; 1 image not verified"}, w) != "" {
			t.Fatalf("saturated admission: %q, %v", w, err)
		}
	}
	if got := runtime.NumGoroutine(); got > goroutines+2 {
		t.Errorf("goroutines grew from %d to %d while saturated", goroutines, got)
	}
	if got := len(checker.Calls()); got != 1 {
		t.Errorf("checker called %d times while saturated, want 1", got)
	}
	close(release)
	// Once the hung call returns, its slot frees and checks resume.
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := deploymentValidator(a).ValidateCreate(ctx, deployment("ui-private", uiImage))
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot never freed after the checker returned")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := map[string]Options{
		"no checker":     {Pools: StaticRoles{nodeRole}},
		"no roles":       {Checker: &fakeChecker{}},
		"unknown mode":   {Checker: &fakeChecker{}, Pools: StaticRoles{nodeRole}, Mode: "audit"},
		"negative limit": {Checker: &fakeChecker{}, Pools: StaticRoles{nodeRole}, MaxConcurrent: -1},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := newAdmitter(o); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestStaticRolesAreCopied(t *testing.T) {
	s := StaticRoles{nodeRole}
	got, _ := s.Placement(context.Background(), nodepools.Template{})
	got.Candidates[0].RoleARN = "changed"
	if s[0] != nodeRole {
		t.Error("caller changed the provider's roles")
	}
}
