package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// awaitTimeout bounds AwaitMode. The API server picks up a new webhook
// configuration, and the webhook's cache a namespace label, within
// milliseconds; seconds mean something is broken.
const awaitTimeout = 15 * time.Second

// probeName names the Deployment AwaitMode dry-runs; it is never stored.
const probeName = "ecr-preflight-probe"

// AwaitMode waits until a Deployment created in namespace is answered in
// mode (warn or deny) by a webhook: the barrier after registering a
// webhook configuration or changing a namespace's mode label, both of which
// the API server and the webhook learn through watches, a moment later.
//
// It asks with server-side dry-run creates of the seed's repository at a
// missing tag, which is not pullable whatever the seed's policy says:
// rejected with ImageNotFound in deny mode, allowed with an ImageNotFound
// warning in warn mode. Dry-run stores nothing, but admission webhooks
// with sideEffects None are called as for a real create.
func (e *Env) AwaitMode(ctx context.Context, namespace, mode string) error {
	ctx, cancel := context.WithTimeout(ctx, awaitTimeout)
	defer cancel()
	warnings := &Warnings{}
	c, err := e.newClient(warnings)
	if err != nil {
		return err
	}
	probe := Deployment(namespace, probeName, e.Seed.MissingTagImage())
	var last string
	for {
		warnings.Reset()
		err := c.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		got := answeredMode(err, warnings.List())
		if got == mode {
			return nil
		}
		last = fmt.Sprintf("answered as %q (error: %v, warnings: %q)", got, err, warnings.List())
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s: a Deployment of a missing image was not answered in %s mode within %s; last %s",
				namespace, mode, awaitTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// answeredMode tells, from the answer to a create of a missing image, the
// mode the webhook applied: "deny", "warn", "none" (allowed silently: no
// webhook, or dryrun mode) or "error".
func answeredMode(err error, warnings []string) string {
	const code = "ImageNotFound"
	switch {
	case err == nil && anyContains(warnings, code):
		return "warn"
	case err == nil:
		return "none"
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), code):
		return "deny"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "error"
	}
}

func anyContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
