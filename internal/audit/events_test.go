package audit

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// TestEventWriterWritesEveryEvent: two events of one reason on one object
// are two Events, each with its own note (client-go's recorders would
// fold the second into the first's series and keep the first note).
func TestEventWriterWritesEveryEvent(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	w := NewEventWriter(c, "ecr-preflight-0", nil)
	ref := &corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: "shop", Name: "web", UID: "u1"}
	w.Eventf(ref, nil, corev1.EventTypeWarning, ReasonImageNotPullable, eventAction, "%s", "ImageNotFound")
	w.Eventf(ref, nil, corev1.EventTypeWarning, ReasonImageNotPullable, eventAction, "%s", strings.Repeat("x", 2000))

	var list eventsv1.EventList
	if err := c.List(context.Background(), &list, client.InNamespace("shop")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("%d Events, want 2", len(list.Items))
	}
	notes := map[string]bool{}
	for _, ev := range list.Items {
		notes[ev.Note[:min(len(ev.Note), 13)]] = true
		// The fake client does not validate; the API server does.
		if msgs := validation.IsDNS1123Subdomain(ev.Name); len(msgs) > 0 || ev.GenerateName != "" {
			t.Errorf("event name %q (generateName %q): %v", ev.Name, ev.GenerateName, msgs)
		}
		if ev.Regarding.Name != "web" || ev.Reason != ReasonImageNotPullable || ev.Action != eventAction ||
			ev.ReportingController != reportingController || ev.ReportingInstance != "ecr-preflight-0" || len(ev.Note) > maxNote || ev.EventTime.IsZero() {
			t.Errorf("event %+v", ev)
		}
	}
	if !notes["ImageNotFound"] {
		t.Errorf("notes %v: the first event's note was lost", notes)
	}
}

func TestEventWriterReportsFailures(t *testing.T) {
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
			return errors.New("forbidden")
		},
	}).Build()
	var got []error
	w := NewEventWriter(c, "", func(err error) { got = append(got, err) })
	w.Eventf(&corev1.ObjectReference{Kind: "Deployment", Namespace: "shop", Name: "web"}, nil, corev1.EventTypeNormal, ReasonImagePullable, eventAction, "ok")
	w.Eventf(&corev1.Pod{}, nil, corev1.EventTypeNormal, ReasonImagePullable, eventAction, "not a reference")
	if len(got) != 2 || !strings.Contains(got[0].Error(), "writing event ImagePullable on Deployment shop/web: forbidden") {
		t.Errorf("errors %v", got)
	}
}
