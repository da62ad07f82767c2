package ecrstub

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

const (
	// targetPrefix starts the X-Amz-Target header of every ECR request.
	targetPrefix = "AmazonEC2ContainerRegistry_V20150921."
	// jsonContentType is the content type of ECR's (and moto's) answers.
	jsonContentType = "application/x-amz-json-1.1"
	// RegistryPolicyScope is the account setting awsclient reads for the
	// registry policy scope; its value is "V1" or "V2".
	RegistryPolicyScope = "REGISTRY_POLICY_SCOPE"
)

// Stub is a running proxy in front of a moto server. Its setters are safe
// to call while requests are served.
type Stub struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL string
	// Moto is the server requests are forwarded to.
	Moto *moto.Server

	proxy  *httputil.ReverseProxy
	server *http.Server

	mu       sync.Mutex
	rules    []Rule
	settings map[string]string
	statuses map[imageKey]ecrtypes.ImageStatus
	blobs    map[imageKey]blob
	failures map[string]*Failure
	calls    map[string]int
}

// Start starts a stub in front of m on a free loopback port and stops it
// when the test ends.
func Start(t testing.TB, m *moto.Server) *Stub {
	t.Helper()
	upstream, err := url.Parse(m.URL)
	if err != nil {
		t.Fatalf("parsing moto's URL %q: %v", m.URL, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on loopback for the ECR stub: %v", err)
	}
	s := &Stub{
		URL:      "http://" + l.Addr().String(),
		Moto:     m,
		settings: map[string]string{RegistryPolicyScope: "V2"},
		statuses: map[imageKey]ecrtypes.ImageStatus{},
		blobs:    map[imageKey]blob{},
		failures: map[string]*Failure{},
		calls:    map[string]int{},
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(upstream) },
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   proxyError,
	}
	s.server = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.server.Serve(l) }()
	t.Cleanup(s.stop)
	return s
}

// stop closes the listener and waits briefly for requests in flight.
func (s *Stub) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.server.Shutdown(ctx); err != nil {
		_ = s.server.Close()
	}
}

// Config returns the moto server's Config (fake credentials, region
// us-west-2, no retries) with its endpoint at the stub.
func (s *Stub) Config() aws.Config {
	cfg := s.Moto.Config()
	cfg.BaseEndpoint = aws.String(s.URL)
	return cfg
}

// ConfigAs returns Config acting as account, as moto.Server.ConfigAs does.
func (s *Stub) ConfigAs(account string) aws.Config {
	cfg := s.Moto.ConfigAs(account)
	cfg.BaseEndpoint = aws.String(s.URL)
	return cfg
}

// SetAccountSetting makes GetAccountSetting answer value for name, e.g.
// SetAccountSetting(RegistryPolicyScope, "V1").
func (s *Stub) SetAccountSetting(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settings[name] = value
}

// Calls returns how many requests for the ECR operation (e.g.
// "DescribeImages") the stub has received, failed ones included.
func (s *Stub) Calls(operation string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[operation]
}

// ServeHTTP answers or forwards one request.
func (s *Stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, layersPath) {
		s.serveLayer(w, r)
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok {
		s.proxy.ServeHTTP(w, r)
		return
	}
	if f, failed := s.begin(op); failed {
		writeError(w, f.Status, f.Code, f.Message)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "reading the request: "+err.Error())
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	switch op {
	case "DescribePullThroughCacheRules":
		s.describeRules(w, r, body)
	case "GetAccountSetting":
		s.getAccountSetting(w, r, body)
	case "DescribeImages":
		s.describeImages(w, r, body)
	case "GetDownloadUrlForLayer":
		s.getDownloadURL(w, body)
	default:
		s.proxy.ServeHTTP(w, r)
	}
}

// begin counts a request for op and returns the failure to answer it
// with, if one is injected.
func (s *Stub) begin(op string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	return s.takeFailure(op)
}

// getAccountSetting answers the settings the stub holds and forwards the
// others to moto.
func (s *Stub) getAccountSetting(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		Name string `json:"name"`
	}
	if !decode(w, body, &in) {
		return
	}
	s.mu.Lock()
	value, ok := s.settings[in.Name]
	s.mu.Unlock()
	if !ok {
		s.proxy.ServeHTTP(w, r)
		return
	}
	writeJSON(w, map[string]string{"name": in.Name, "value": value})
}

// modifyResponse rewrites moto's answers to the requests that need it.
func (s *Stub) modifyResponse(resp *http.Response) error {
	if in, ok := resp.Request.Context().Value(describeImagesKey{}).(*describeImagesInput); ok {
		return s.rewriteImages(resp, in)
	}
	return nil
}

// proxyError answers a request that could not be forwarded, or whose
// answer could not be rewritten, with a ServerException saying why.
func proxyError(w http.ResponseWriter, _ *http.Request, err error) {
	writeError(w, http.StatusBadGateway, "ServerException", "ecrstub: "+err.Error())
}

// decode parses an ECR request body, answering a SerializationException
// (as ECR does for malformed JSON) when it cannot.
func decode(w http.ResponseWriter, body []byte, v any) bool {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "parsing the request: "+err.Error())
		return false
	}
	return true
}

// writeJSON answers v with HTTP 200, as ECR does.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "ServerException", "encoding the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", jsonContentType)
	_, _ = w.Write(b)
}

// writeError answers an ECR error in the JSON protocol's form, as moto
// does: the code in X-Amzn-Errortype and in the body's __type, with the
// message. An empty code answers the bare status with no body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	if code == "" {
		w.WriteHeader(status)
		return
	}
	b, _ := json.Marshal(map[string]string{"__type": code, "message": message}) // strings always encode
	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
