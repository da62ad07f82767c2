package audit

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// EventWriter is an EventRecorder that writes every event it is given as
// a new events.k8s.io/v1 Event. client-go's recorders aggregate events of
// one reason on one object into a series that keeps the first note and
// holds later ones back for minutes: right for a controller's retries,
// wrong for the audit, whose events are already one per change of state
// and whose note names the cause (ImageNotFound, then
// RepositoryPolicyDenies).
type EventWriter struct {
	c client.Client
	// instance is the reporting instance: the replica (its pod name).
	instance string
	// timeout bounds one write; the audit goes on without the event.
	timeout time.Duration
	// onError is told of a write that failed.
	onError func(error)
}

// reportingController names ecr-preflight's audit in its Events.
const reportingController = "ecr-preflight.io/audit"

// maxNote is events.k8s.io's limit on an Event's note, in bytes.
const maxNote = 1024

// NewEventWriter writes Events with c as instance (e.g. the pod's name;
// at most 128 characters). onError, if set, is told of failed writes.
func NewEventWriter(c client.Client, instance string, onError func(error)) *EventWriter {
	if len(instance) > 128 {
		instance = instance[:128]
	}
	if instance == "" {
		instance = "ecr-preflight"
	}
	return &EventWriter{c: c, instance: instance, timeout: 10 * time.Second, onError: onError}
}

var _ EventRecorder = (*EventWriter)(nil)

// Eventf writes one Event about regarding, which must be a
// *corev1.ObjectReference (what the audit passes); related is ignored.
func (w *EventWriter) Eventf(regarding, _ runtime.Object, eventtype, reason, action, note string, args ...any) {
	ref, ok := regarding.(*corev1.ObjectReference)
	if !ok {
		w.fail(fmt.Errorf("event %s: regarding is %T, want an object reference", reason, regarding))
		return
	}
	text := fmt.Sprintf(note, args...)
	if len(text) > maxNote {
		text = truncate(text, maxNote)
	}
	now := time.Now()
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			// As client-go names events: the object and the time, which
			// makes a valid, unique name (a generateName may not end in
			// the dot).
			Name:      fmt.Sprintf("%s.%x", prefix(ref.Name, 200), now.UnixNano()),
			Namespace: ref.Namespace,
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: reportingController,
		ReportingInstance:   w.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Note:                text,
		Type:                eventtype,
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	if err := w.c.Create(ctx, ev); err != nil {
		w.fail(fmt.Errorf("writing event %s on %s %s/%s: %w", reason, ref.Kind, ref.Namespace, ref.Name, err))
	}
}

// prefix is s cut to at most n bytes (object names are ASCII).
func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (w *EventWriter) fail(err error) {
	if w.onError != nil {
		w.onError(err)
	}
}
