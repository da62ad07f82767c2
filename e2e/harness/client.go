package harness

import (
	"context"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Warnings collects the warnings the API server returns, admission
// warnings among them. Install it with Env.Client.
type Warnings struct {
	mu   sync.Mutex
	list []string
}

var _ rest.WarningHandlerWithContext = (*Warnings)(nil)

// HandleWarningHeaderWithContext implements rest.WarningHandlerWithContext.
func (w *Warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// List returns the warnings so far.
func (w *Warnings) List() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

// Reset forgets the warnings so far.
func (w *Warnings) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = nil
}

// Client returns an admin controller-runtime client whose warnings go to
// warnings (nil: the default logger).
func (e *Env) Client(t testing.TB, warnings *Warnings) client.Client {
	t.Helper()
	c, err := e.newClient(warnings)
	if err != nil {
		t.Fatalf("creating a client: %v", err)
	}
	return c
}

func (e *Env) newClient(warnings *Warnings) (client.Client, error) {
	cfg := rest.CopyConfig(e.Config)
	if warnings != nil {
		cfg.WarningHandlerWithContext = warnings
	}
	return client.New(cfg, client.Options{})
}
