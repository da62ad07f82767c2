package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Mode says what the webhook does with what it finds.
type Mode string

const (
	// ModeWarn allows every workload and attaches one warning per finding.
	ModeWarn Mode = "warn"
	// ModeDeny rejects a workload when one of its new images is
	// not-pullable; findings that are only unknown stay warnings.
	ModeDeny Mode = "deny"
	// ModeDryRun allows silently and only logs and counts what warn or deny
	// would have done: a way to measure before enforcing.
	ModeDryRun Mode = "dryrun"
)

// Modes lists every mode, in the order help text shows them.
var Modes = []Mode{ModeWarn, ModeDeny, ModeDryRun}

const (
	// ModeLabel on a Namespace overrides the mode for workloads in it.
	ModeLabel = "ecr-preflight.io/mode"
	// SkipAnnotation set to "true" on a workload skips its check, where
	// skipping is allowed (see Options.AllowSkip).
	SkipAnnotation = "ecr-preflight.io/skip"
)

// ParseMode turns a flag or label value into a Mode.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown mode %q (want warn, deny or dryrun)", s)
}

// LabelModes reads the ModeLabel of namespaces through a controller-runtime
// reader, normally the manager's cached client. It asks only for metadata,
// so the cache holds namespace metadata rather than whole objects.
type LabelModes struct {
	Reader client.Reader
}

var _ NamespaceModes = LabelModes{}

// NamespaceMode implements NamespaceModes.
func (l LabelModes) NamespaceMode(ctx context.Context, namespace string) (string, bool, error) {
	if namespace == "" || l.Reader == nil {
		return "", false, nil
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := l.Reader.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return "", false, fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	v, ok := ns.GetLabels()[ModeLabel]
	return v, ok, nil
}
