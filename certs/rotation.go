package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Keys of the rotation Secret besides CertFile and KeyFile (the serving
// certificate and its key), as cert-controller writes them: the CA and its
// key. The CA key never leaves the Secret.
const (
	SecretCA    = "ca.crt"
	SecretCAKey = "ca.key"
)

const (
	// FieldOwner is the field manager of what rotation writes.
	FieldOwner = "ecr-preflight"
	// caName is the CA's common name.
	caName = "ecr-preflight-ca"
	// fileResync re-checks the files against the Secret this often, in
	// addition to every change of the Secret: a failed write is retried,
	// a deleted file restored.
	fileResync = 10 * time.Second
	// setupTimeout bounds the API calls made before the manager starts.
	setupTimeout = 30 * time.Second
)

// RotationOptions configure the selfManaged certificate: a CA and a
// serving certificate that cert-controller issues into a Secret and renews
// before they expire, the CA injected as caBundle into the webhooks of a
// ValidatingWebhookConfiguration.
type RotationOptions struct {
	// SecretName and SecretNamespace name the Secret that holds the CA and
	// the serving certificate (keys ca.crt, ca.key, tls.crt, tls.key). The
	// leader-election Lease (LeaseName) lives in the same namespace.
	SecretName      string
	SecretNamespace string
	// DNSNames are the serving certificate's names; the first is also its
	// common name.
	DNSNames []string
	// WebhookConfigurationName is the ValidatingWebhookConfiguration whose
	// webhooks all get the CA as clientConfig.caBundle.
	WebhookConfigurationName string

	// Zero values take cert-controller's defaults: a CA valid for 10
	// years, a serving certificate valid for 1 year, renewed (the CA too)
	// 90 days before it expires, checked every 12 hours and whenever the
	// Secret changes.
	CAValidity    time.Duration
	CertValidity  time.Duration
	RenewBefore   time.Duration
	CheckInterval time.Duration
	// ControllerName names cert-controller's controller (default
	// "cert-rotator"). controller-runtime wants controller names unique in
	// a process, so only a process running several rotations (tests)
	// needs it.
	ControllerName string
}

// LeaseName is the Lease, in SecretNamespace, that elects the one replica
// that writes the Secret and the webhook configuration.
func (o RotationOptions) LeaseName() string { return o.SecretName + "-rotation" }

// Validate reports every unusable option at once.
func (o RotationOptions) Validate() error {
	var errs []error
	for _, n := range []struct{ what, name string }{{"secret name", o.SecretName}, {"webhook configuration name", o.WebhookConfigurationName}} {
		if msgs := validation.IsDNS1123Subdomain(n.name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: %s", n.what, n.name, strings.Join(msgs, "; ")))
		}
	}
	if o.SecretNamespace == "" {
		errs = append(errs, errors.New("no secret namespace"))
	} else if msgs := validation.IsDNS1123Label(o.SecretNamespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("secret namespace %q: %s", o.SecretNamespace, strings.Join(msgs, "; ")))
	}
	if len(o.DNSNames) == 0 {
		errs = append(errs, errors.New("no DNS name for the serving certificate"))
	}
	for _, name := range o.DNSNames {
		if err := CheckDNSName(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckDNSName says whether name can be a serving certificate's DNS name.
func CheckDNSName(name string) error {
	if net.ParseIP(name) != nil {
		return fmt.Errorf("DNS name %q is an IP address", name)
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("DNS name %q: %s", name, strings.Join(msgs, "; "))
	}
	return nil
}

// Rotation is selfManaged certificates in one replica. The replica elected
// leader runs cert-controller: it creates the CA and the serving
// certificate in the Secret, renews them before they expire, and injects
// the CA into the webhook configuration. Every replica, leader or not,
// writes the Secret's serving certificate into its certificate directory,
// where Files serves it from, and is ready (Check) only once the
// certificate it serves is signed by the Secret's CA for every DNS name
// and that CA is every webhook's caBundle.
//
// Everything is read through caches limited to the one Secret and the one
// webhook configuration, so RBAC may grant them by resourceNames.
type Rotation struct {
	opts   RotationOptions
	files  *Files
	cache  cache.Cache
	log    logr.Logger
	synced atomic.Bool
	// changed wakes the file writer when the Secret changes.
	changed chan struct{}

	mu      sync.Mutex
	lastErr string // last readiness failure logged
}

// SetupRotation adds selfManaged certificates to mgr, which must be
// started with leader election (a Lease named opts.LeaseName() in
// opts.SecretNamespace) so that only one replica writes. files is where the
// serving certificate is written and served from (see AwaitFiles). It
// creates the Secret, empty, if it does not exist yet; give the returned
// Rotation's Check to mgr as a readiness check.
func SetupRotation(ctx context.Context, mgr manager.Manager, files *Files, opts RotationOptions, log logr.Logger) (*Rotation, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	r := &Rotation{opts: opts, files: files, log: log, changed: make(chan struct{}, 1)}
	if err := os.MkdirAll(files.Dir(), 0o700); err != nil {
		return nil, fmt.Errorf("creating the certificate directory: %w", err)
	}
	if err := r.ensureSecret(ctx, mgr); err != nil {
		return nil, err
	}

	// cert-controller, on the leader only. Its own cache would list every
	// Secret of the namespace and every webhook configuration; the
	// scoped config narrows those lists and watches to our two objects.
	cr := &rotator.CertRotator{
		SecretKey:              r.secretKey(),
		CertDir:                files.Dir(),
		CAName:                 caName,
		CAOrganization:         "ecr-preflight",
		DNSName:                opts.DNSNames[0],
		ExtraDNSNames:          opts.DNSNames[1:],
		IsReady:                make(chan struct{}),
		Webhooks:               []rotator.WebhookInfo{{Name: opts.WebhookConfigurationName, Type: rotator.Validating}},
		FieldOwner:             FieldOwner,
		RequireLeaderElection:  true,
		CaCertDuration:         opts.CAValidity,
		ServerCertDuration:     opts.CertValidity,
		LookaheadInterval:      opts.RenewBefore,
		RotationCheckFrequency: opts.CheckInterval,
		ControllerName:         opts.ControllerName,
		// Inject the CA only once the leader has the certificate files,
		// so the API server does not trust a CA nobody serves yet.
		EnableReadinessCheck: true,
	}
	if err := rotator.AddRotator(scopedManager{Manager: mgr, cfg: scopedConfig(mgr.GetConfig(), opts)}, cr); err != nil {
		return nil, fmt.Errorf("adding cert-controller: %w", err)
	}
	if err := mgr.Add(&namesGuard{r: r, reader: mgr.GetAPIReader(), writer: mgr.GetClient()}); err != nil {
		return nil, err
	}

	// Every replica: a cache of the same two objects, to write the files
	// and to answer readiness.
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Namespaces: map[string]cache.Config{opts.SecretNamespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", opts.SecretName),
			},
			&admissionregistrationv1.ValidatingWebhookConfiguration{}: {
				Field: fields.OneTermEqualSelector("metadata.name", opts.WebhookConfigurationName),
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the certificate cache: %w", err)
	}
	r.cache = c
	// Informers now, so that the cache's sync covers both and readiness
	// never creates one.
	secrets, err := c.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return nil, err
	}
	if _, err := secrets.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.notify() },
		UpdateFunc: func(any, any) { r.notify() },
		DeleteFunc: func(any) { r.notify() },
	}); err != nil {
		return nil, err
	}
	if _, err := c.GetInformer(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{}); err != nil {
		return nil, err
	}
	if err := mgr.Add(everyReplicaCache{c}); err != nil {
		return nil, err
	}
	if err := mgr.Add(r); err != nil {
		return nil, err
	}
	return r, nil
}

// everyReplicaCache runs on every replica. A cache with per-object
// settings does not say whether it needs a leader, and controller-runtime
// then starts it on the leader only.
type everyReplicaCache struct{ cache.Cache }

func (everyReplicaCache) NeedLeaderElection() bool { return false }

func (r *Rotation) secretKey() types.NamespacedName {
	return types.NamespacedName{Namespace: r.opts.SecretNamespace, Name: r.opts.SecretName}
}

// ensureSecret creates the Secret, empty, when it does not exist:
// cert-controller only updates it. Every replica may try; one creates it.
// A chart that creates the Secret itself needs no create permission.
func (r *Rotation) ensureSecret(ctx context.Context, mgr manager.Manager) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	key := r.secretKey()
	err := mgr.GetAPIReader().Get(ctx, key, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		if err != nil {
			return fmt.Errorf("reading Secret %s: %w", key, err)
		}
		return nil
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Type:       corev1.SecretTypeOpaque,
	}
	err = mgr.GetClient().Create(ctx, s, client.FieldOwner(FieldOwner))
	switch {
	case err == nil:
		r.log.Info("created the certificate Secret; the leader fills it", "secret", key.String())
	case apierrors.IsAlreadyExists(err):
	default:
		return fmt.Errorf("creating Secret %s (create it beforehand, or allow creating Secrets in %s): %w", key, key.Namespace, err)
	}
	return nil
}

func (r *Rotation) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// NeedLeaderElection is false: every replica writes its own files.
func (r *Rotation) NeedLeaderElection() bool { return false }

// Start writes the Secret's serving certificate into the certificate
// directory whenever it changes, until ctx ends.
func (r *Rotation) Start(ctx context.Context) error {
	if !r.cache.WaitForCacheSync(ctx) {
		return nil // ctx ended
	}
	r.synced.Store(true)
	tick := time.NewTicker(fileResync)
	defer tick.Stop()
	for {
		if err := r.writeFiles(ctx); err != nil {
			r.log.Error(err, "writing the serving certificate; retrying", "dir", r.files.Dir())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.changed:
		case <-tick.C:
		}
	}
}

// writeFiles puts the Secret's tls.crt and tls.key into the directory
// unless they are there already. A Secret without a certificate yet (the
// leader has not issued it) writes nothing.
func (r *Rotation) writeFiles(ctx context.Context) error {
	s := &corev1.Secret{}
	if err := r.cache.Get(ctx, r.secretKey(), s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	crt, key := s.Data[CertFile], s.Data[KeyFile]
	if len(crt) == 0 || len(key) == 0 {
		return nil
	}
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		// The leader replaces a bad pair; keep serving the last good one.
		return fmt.Errorf("secret %s holds no usable certificate: %w", r.secretKey(), err)
	}
	var wrote []string
	// The key first: a reader between the two renames sees a mismatched
	// pair, rejects it and keeps the previous one, then loads the new
	// pair on the certificate's rename.
	for _, f := range []struct {
		name string
		data []byte
	}{{KeyFile, key}, {CertFile, crt}} {
		if cur, err := os.ReadFile(filepath.Join(r.files.Dir(), f.name)); err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		if err := writeAtomic(r.files.Dir(), f.name, f.data); err != nil {
			return err
		}
		wrote = append(wrote, f.name)
	}
	if len(wrote) > 0 {
		r.log.Info("wrote the serving certificate from the Secret", "dir", r.files.Dir(), "files", wrote, "secret", r.secretKey().String())
		r.files.wrote()
	}
	return nil
}

// writeAtomic replaces dir/name in one rename, so a reader never sees a
// half-written file. Private keys: owner-only.
func writeAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// Check is a readiness check (healthz.Checker): it fails until the
// certificate this replica serves is signed by the CA in the Secret and
// valid for every DNS name, and that CA is the caBundle of every webhook
// in the webhook configuration. A configuration that does not exist fails
// it too: a misspelt name would otherwise never get its caBundle.
func (r *Rotation) Check(req *http.Request) error {
	ctx := context.Background()
	if req != nil {
		ctx = req.Context()
	}
	err := r.ready(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && err.Error() != r.lastErr:
		r.log.Info("serving certificate not ready", "reason", err.Error())
		r.lastErr = err.Error()
	case err == nil && r.lastErr != "":
		r.log.Info("serving certificate ready: issued by the Secret's CA, CA injected into the webhook configuration")
		r.lastErr = ""
	}
	return err
}

func (r *Rotation) ready(ctx context.Context) error {
	if !r.synced.Load() {
		return errors.New("waiting for the certificate Secret and webhook configuration to be read")
	}
	s := &corev1.Secret{}
	if err := r.cache.Get(ctx, r.secretKey(), s); err != nil {
		return fmt.Errorf("reading Secret %s: %w", r.secretKey(), err)
	}
	ca, err := ParseCertificatePEM(s.Data[SecretCA])
	if err != nil {
		return fmt.Errorf("no CA in Secret %s yet: %w", r.secretKey(), err)
	}
	served, err := r.files.GetCertificate(nil)
	if err != nil {
		return err
	}
	leaf := served.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(served.Certificate[0]); err != nil {
			return fmt.Errorf("parsing the served certificate: %w", err)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range r.opts.DNSNames {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("the certificate served from %s is not valid for %s under the CA of Secret %s: %w", r.files.Dir(), name, r.secretKey(), err)
		}
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := r.cache.Get(ctx, types.NamespacedName{Name: r.opts.WebhookConfigurationName}, vwc); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("ValidatingWebhookConfiguration %s not found: nothing trusts the CA", r.opts.WebhookConfigurationName)
		}
		return fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", r.opts.WebhookConfigurationName, err)
	}
	for _, wh := range vwc.Webhooks {
		if !bundleHolds(wh.ClientConfig.CABundle, ca) {
			return fmt.Errorf("the caBundle of webhook %s in ValidatingWebhookConfiguration %s does not hold the CA yet", wh.Name, vwc.Name)
		}
	}
	return nil
}

// ParseCertificatePEM parses the first PEM block of pemBytes as an X.509
// certificate.
func ParseCertificatePEM(pemBytes []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// bundleHolds reports whether the PEM bundle contains cert.
func bundleHolds(bundle []byte, cert *x509.Certificate) bool {
	for {
		var b *pem.Block
		b, bundle = pem.Decode(bundle)
		if b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" && bytes.Equal(b.Bytes, cert.Raw) {
			return true
		}
	}
}

// namesGuard makes cert-controller issue a new serving certificate when
// the one in the Secret lacks a DNS name: cert-controller checks only the
// first name, so a name added later (a flag changed on upgrade) would
// otherwise wait for the yearly renewal. It runs once, on the leader, and
// drops the serving certificate from the Secret; cert-controller sees the
// change and issues one for every name under the same CA.
//
// It waits for the certificate file in the leader's directory first:
// cert-controller (EnableReadinessCheck) reconciles a changed Secret only
// once that file exists, and a fresh directory gets it from the Secret's
// certificate, so dropping that certificate earlier would stall both.
type namesGuard struct {
	r      *Rotation
	reader client.Reader
	writer client.Writer
}

func (g *namesGuard) NeedLeaderElection() bool { return true }

func (g *namesGuard) Start(ctx context.Context) error {
	certFile := filepath.Join(g.r.files.Dir(), CertFile)
	if err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		_, err := os.Stat(certFile)
		return err == nil, nil
	}); err != nil {
		return nil // ctx ended
	}
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: time.Second, Factor: 2, Steps: 6, Cap: 30 * time.Second},
		func(ctx context.Context) (bool, error) {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error { return g.dropIfMissingNames(ctx) })
			if err != nil {
				g.r.log.Error(err, "checking the serving certificate's DNS names")
			}
			return err == nil, nil
		})
	if err != nil && ctx.Err() == nil {
		g.r.log.Error(err, "gave up checking the serving certificate's DNS names; it is renewed with every name when it nears expiry")
	}
	return nil
}

func (g *namesGuard) dropIfMissingNames(ctx context.Context) error {
	s := &corev1.Secret{}
	if err := g.reader.Get(ctx, g.r.secretKey(), s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	leaf, err := ParseCertificatePEM(s.Data[CertFile])
	if err != nil {
		return nil // nothing issued yet, or unusable: cert-controller replaces it
	}
	var missing []string
	for _, name := range g.r.opts.DNSNames {
		if leaf.VerifyHostname(name) != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	g.r.log.Info("the serving certificate in the Secret lacks DNS names; dropping it so that a new one is issued", "missing", missing, "secret", g.r.secretKey().String())
	delete(s.Data, CertFile)
	delete(s.Data, KeyFile)
	return g.writer.Update(ctx, s, client.FieldOwner(FieldOwner))
}

// scopedManager is mgr with a config whose list and watch requests for the
// rotation Secret's namespace and for webhook configurations carry a
// metadata.name field selector (see nameScope). cert-controller builds its
// cache from the manager's config, so this is what keeps it from needing
// RBAC on every Secret of the namespace and every webhook configuration.
type scopedManager struct {
	manager.Manager
	cfg *rest.Config
}

func (m scopedManager) GetConfig() *rest.Config { return m.cfg }

func scopedConfig(cfg *rest.Config, o RotationOptions) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return scopedRoundTripper(o, rt) })
	return c
}

func scopedRoundTripper(o RotationOptions, next http.RoundTripper) http.RoundTripper {
	return &nameScope{next: next, names: map[string]string{
		"/api/v1/namespaces/" + o.SecretNamespace + "/secrets":                  o.SecretName,
		"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations": o.WebhookConfigurationName,
	}}
}

// nameScope adds a metadata.name field selector to GET requests on the
// collections it knows (list and watch), limiting them to one object. The
// API server authorizes such requests by resourceNames.
type nameScope struct {
	next http.RoundTripper
	// names maps a collection's path to the one name it is scoped to.
	names map[string]string
}

func (s *nameScope) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return s.next.RoundTrip(req)
	}
	for path, name := range s.names {
		// A suffix: the server URL may have a path of its own.
		if !strings.HasSuffix(req.URL.Path, path) {
			continue
		}
		q := req.URL.Query()
		sel := "metadata.name=" + name
		if prev := q.Get("fieldSelector"); prev != "" {
			sel = prev + "," + sel
		}
		q.Set("fieldSelector", sel)
		req = req.Clone(req.Context())
		req.URL.RawQuery = q.Encode()
		break
	}
	return s.next.RoundTrip(req)
}

// WrappedRoundTripper lets client-go reach the transport underneath.
func (s *nameScope) WrappedRoundTripper() http.RoundTripper { return s.next }
