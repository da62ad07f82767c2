package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ecr-preflight/ecr-preflight/certs/certstest"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/loopback"
)

// noopPath serves a validator that allows everything, the baseline the
// benchmark compares against.
const noopPath = "/validate-noop"

type noopValidator struct{}

func (noopValidator) ValidateCreate(context.Context, *appsv1.Deployment) (admission.Warnings, error) {
	return nil, nil
}

func (noopValidator) ValidateUpdate(context.Context, *appsv1.Deployment, *appsv1.Deployment) (admission.Warnings, error) {
	return nil, nil
}

func (noopValidator) ValidateDelete(context.Context, *appsv1.Deployment) (admission.Warnings, error) {
	return nil, nil
}

// testServer is a real controller-runtime webhook server on loopback TLS.
type testServer struct {
	url    string
	client *http.Client
}

func startServer(tb testing.TB, o Options) *testServer {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := certstest.Write(dir, "ecr-preflight-test"); err != nil {
		tb.Fatal(err)
	}
	port := loopback.Port(tb)
	srv := crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir})
	if err := RegisterWithServer(srv, o); err != nil {
		tb.Fatal(err)
	}
	scheme, err := newScheme()
	if err != nil {
		tb.Fatal(err)
	}
	srv.Register(noopPath, admission.WithValidator[*appsv1.Deployment](scheme, noopValidator{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("server: %v", err)
		}
	})
	ready := srv.StartedChecker()
	deadline := time.Now().Add(5 * time.Second)
	for ready(nil) != nil {
		if time.Now().After(deadline) {
			tb.Fatalf("server not ready: %v", ready(nil))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Self-signed for the test: trust is not what is under test here.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}
	tb.Cleanup(tr.CloseIdleConnections)
	return &testServer{url: "https://127.0.0.1:" + strconv.Itoa(port), client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// review builds an AdmissionReview for obj (and old on UPDATE).
func review(tb testing.TB, op admissionv1.Operation, obj, old runtime.Object) []byte {
	tb.Helper()
	raw := func(o runtime.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			tb.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("req-1"),
			Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			Namespace: namespace, Name: "ui-private", Operation: op,
			Object: raw(obj), OldObject: raw(old),
		},
	}
	b, err := json.Marshal(ar)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func (s *testServer) post(tb testing.TB, path string, body []byte) *admissionv1.AdmissionResponse {
	tb.Helper()
	return s.postAs(tb, path, "application/json", body)
}

// postAs posts body with the given Content-Type.
func (s *testServer) postAs(tb testing.TB, path, contentType string, body []byte) *admissionv1.AdmissionResponse {
	tb.Helper()
	resp, err := s.client.Post(s.url+path, contentType, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &ar); err != nil || ar.Response == nil {
		tb.Fatalf("HTTP %d, not an AdmissionReview response: %v: %s", resp.StatusCode, err, b)
	}
	return ar.Response
}

func TestServeOverHTTPS(t *testing.T) {
	s := startServer(t, Options{Checker: &fakeChecker{results: seedResults}, Pools: StaticRoles{nodeRole}, Mode: ModeDeny})
	path := "/validate-apps-v1-deployment"

	t.Run("the seed Deployment is denied with 403 and the full story", func(t *testing.T) {
		r := s.post(t, path, review(t, admissionv1.Create, deployment("ui-private", uiImage), nil))
		if r.Allowed || r.Result == nil || r.Result.Code != http.StatusForbidden || r.Result.Message != uiDenial || r.UID != "req-1" {
			t.Errorf("response: %+v", r)
		}
	})
	t.Run("an unknown image is allowed with its warning", func(t *testing.T) {
		r := s.post(t, path, review(t, admissionv1.Create, deployment("ui-private", okImage, vpcImage), nil))
		if !r.Allowed || diff([]string{vpcWarning}, r.Warnings) != "" {
			t.Errorf("response: %+v", r)
		}
	})
	t.Run("a scale of a Deployment with a bad image is allowed with a warning", func(t *testing.T) {
		old := deployment("ui-private", uiImage)
		scaled := old.DeepCopy()
		scaled.Spec.Replicas = new(int32(3))
		r := s.post(t, path, review(t, admissionv1.Update, scaled, old))
		if !r.Allowed || diff([]string{uiWarning}, r.Warnings) != "" {
			t.Errorf("response: %+v", r)
		}
	})
	t.Run("a server-side dry run is answered like any other request", func(t *testing.T) {
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(review(t, admissionv1.Create, deployment("ui-private", uiImage), nil), &ar); err != nil {
			t.Fatal(err)
		}
		ar.Request.DryRun = new(true)
		b, _ := json.Marshal(ar)
		if r := s.post(t, path, b); r.Allowed {
			t.Errorf("dry-run request allowed: %+v", r)
		}
	})
	t.Run("every kind is served at controller-runtime's default path", func(t *testing.T) {
		for _, p := range Paths() {
			r := s.post(t, p, []byte(`{}`))
			if r.Result == nil || r.Result.Code != http.StatusBadRequest {
				t.Errorf("%s: %+v", p, r)
			}
		}
	})
}

// TestMalformedReviews: a review controller-runtime cannot decode never
// reaches the checker and is answered allowed: false with HTTP code 400
// and the decoding error, in every mode, warn included. A real API server
// never sends one (it always sends the object, on UPDATE the old object
// too, as application/json); whoever does has a bug to see, not a
// verdict to soften. The README says so.
func TestMalformedReviews(t *testing.T) {
	const path = "/validate-apps-v1-deployment"
	const asJSON = "application/json"
	create := review(t, admissionv1.Create, deployment("ui-private", uiImage), nil)
	malformed := map[string]struct {
		contentType string
		body        []byte
		// says is part of the error the client reads.
		says string
	}{
		"a body that is not JSON": {asJSON, []byte("{not json"), "json"},
		"an AdmissionReview whose object is not a Deployment": {asJSON,
			[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","operation":"CREATE","object":{"spec":{"template":"oops"}}}}`), "json"},
		"an UPDATE without its old object":     {asJSON, review(t, admissionv1.Update, deployment("ui-private", uiImage), nil), "there is no content to decode"},
		"a CREATE without its object":          {asJSON, review(t, admissionv1.Create, nil, nil), "there is no content to decode"},
		"an UPDATE without its object":         {asJSON, review(t, admissionv1.Update, nil, deployment("ui-private", uiImage)), "there is no content to decode"},
		"a review sent as text/plain":          {"text/plain", create, "contentType=text/plain, expected application/json"},
		"a review sent without a content type": {"", create, "expected application/json"},
		"an empty AdmissionReview":             {asJSON, []byte(`{}`), `unknown operation ""`},
	}
	for _, mode := range []Mode{ModeWarn, ModeDeny, ModeDryRun} {
		checker := &fakeChecker{results: seedResults}
		s := startServer(t, Options{Checker: checker, Pools: StaticRoles{nodeRole}, Mode: mode})
		for name, tc := range malformed {
			t.Run(name+" in "+string(mode)+" mode gets a 400", func(t *testing.T) {
				r := s.postAs(t, path, tc.contentType, tc.body)
				if r.Allowed || r.Result == nil || r.Result.Code != http.StatusBadRequest || !strings.Contains(r.Result.Message, tc.says) {
					t.Errorf("response: %+v, want allowed: false, code 400 and a message saying %q", r.Result, tc.says)
				}
			})
		}
		if calls := checker.Calls(); len(calls) != 0 {
			t.Errorf("%s mode: the checker was asked about malformed reviews: %q", mode, calls)
		}
	}
}

func TestPaths(t *testing.T) {
	want := []string{
		"/validate-apps-v1-deployment", "/validate-apps-v1-statefulset", "/validate-apps-v1-daemonset",
		"/validate-apps-v1-replicaset", "/validate-batch-v1-job", "/validate-batch-v1-cronjob", "/validate--v1-pod",
	}
	if d := diff(want, Paths()); d != "" {
		t.Error(d)
	}
}
