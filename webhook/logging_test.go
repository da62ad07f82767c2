package webhook

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// jsonLogger logs JSON lines with their source and without their time, so
// two loggers' lines can be compared.
func jsonLogger(buf *bytes.Buffer) logr.Logger {
	return logr.FromSlogHandler(slog.NewJSONHandler(buf, &slog.HandlerOptions{
		AddSource: true,
		Level:     slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// countedValue counts how often a handler formats it.
type countedValue struct{ n *int }

func (c countedValue) MarshalJSON() ([]byte, error) {
	*c.n++
	return []byte(`"counted"`), nil
}

// exercise logs through log as admit and controller-runtime do, the same
// lines for every logger given.
func exercise(log logr.Logger) {
	log = log.WithValues("kind", "Deployment", "operation", "CREATE")
	log.V(1).Info("not checked", "reason", "owned")
	log = log.WithName("admit").WithValues("mode", ModeDeny, "odd")
	log.Info("denied", "reason", "a\nb")
	log.V(1).Info("allowed", "images", []string{"a", "b"})
	log.V(2).Info("never written")
	log.Error(errors.New("boom"), "checking images", "images", []string{"c"})
}

// TestLazyValuesLogTheSame: deferring WithValues changes nothing in what
// reaches the log, callers' source lines included, and formats no value
// for a line that is not written.
func TestLazyValuesLogTheSame(t *testing.T) {
	var eager, lazy bytes.Buffer
	exercise(jsonLogger(&eager))
	exercise(lazyLogger(jsonLogger(&lazy), nil))
	if eager.String() != lazy.String() {
		t.Errorf("lazy values log\n%s\nwhere eager values log\n%s", lazy.String(), eager.String())
	}
	if !strings.Contains(eager.String(), "logging_test.go") {
		t.Errorf("no source line in %s", eager.String())
	}

	var formatted int
	var out bytes.Buffer
	log := lazyLogger(jsonLogger(&out), nil).WithValues("value", countedValue{&formatted})
	log.V(1).WithValues("more", 1).Enabled()
	if formatted != 0 {
		t.Errorf("a value was formatted %d times before any line was written", formatted)
	}
	log.Info("written")
	if formatted != 1 || !strings.Contains(out.String(), `"value":"counted"`) {
		t.Errorf("formatted %d times, logged %s", formatted, out.String())
	}
}

// TestRequestLoggersAddTheDefaultValues: the validators' loggers carry the
// values controller-runtime's default constructors add, built only when a
// line is written.
func TestRequestLoggersAddTheDefaultValues(t *testing.T) {
	req := &admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "req-1", Namespace: namespace, Name: "ui-private",
		Resource: metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		UserInfo: authenticationv1.UserInfo{Username: "alice"},
	}}
	var eager, lazy bytes.Buffer
	exercise(admission.DefaultLogConstructor(jsonLogger(&eager), req))
	exercise(requestLogger(jsonLogger(&lazy), req))
	if eager.String() != lazy.String() {
		t.Errorf("requestLogger logs\n%s\nwhere the default constructor logs\n%s", lazy.String(), eager.String())
	}

	var out bytes.Buffer
	gvk := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	builderRequestLogger(gvk)(jsonLogger(&out), req).Info("denied")
	for _, want := range []string{`"webhookGroup":"apps"`, `"webhookKind":"Deployment"`, `"Deployment":{"name":"ui-private","namespace":"retail"}`,
		`"namespace":"retail"`, `"name":"ui-private"`, `"user":"alice"`, `"requestID":"req-1"`, `"resource":{"group":"apps","version":"v1","resource":"deployments"}`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("builder request logger line %s lacks %s", out.String(), want)
		}
	}
}
