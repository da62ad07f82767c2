package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ecr-preflight/ecr-preflight/certs"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// ServeOptions are the flags of ecr-preflight serve.
type ServeOptions struct {
	// Serving.
	BindAddress string
	Port        int
	CertDir     string
	EnableHTTP2 bool

	// Certificates issued in-process (--cert-rotation).
	CertRotation             bool
	CertSecretName           string
	CertSecretNamespace      string // "": $POD_NAMESPACE
	CertDNSNames             []string
	WebhookConfigurationName string

	// Admission.
	Mode                    webhook.Mode
	DenyOnAnyPool           bool
	AdmissionTimeout        time.Duration
	AllowSkipAnnotation     *bool // nil: allowed in warn mode only
	MaxConcurrentAdmissions int
	MaxImagesPerObject      int

	// Continuous audit.
	AuditInterval      time.Duration
	AuditLeaseName     string
	AuditPolicyReports bool

	// Operations.
	Standalone             bool
	Kubeconfig             string
	MetricsBindAddress     string
	HealthProbeBindAddress string
	ShutdownDelay          time.Duration
	LogFormat              logFormat
	Verbosity              int

	// Pools say where node pools come from.
	Pools PoolOptions
	// Engine configures the preflight engine and its AWS clients.
	Engine EngineOptions

	rejected rejectedValues
}

// NewServeOptions returns the defaults.
func NewServeOptions() *ServeOptions {
	return &ServeOptions{
		Port:                     9443,
		CertDir:                  "/tmp/k8s-webhook-server/serving-certs",
		CertSecretName:           "ecr-preflight-tls",
		WebhookConfigurationName: "ecr-preflight",
		Mode:                     webhook.ModeWarn,
		AdmissionTimeout:         webhook.DefaultTimeout,
		MaxConcurrentAdmissions:  webhook.DefaultMaxConcurrent,
		MaxImagesPerObject:       webhook.DefaultMaxImages,
		MetricsBindAddress:       ":8080",
		HealthProbeBindAddress:   ":8081",
		ShutdownDelay:            5 * time.Second,
		LogFormat:                logJSON,
		Engine:                   NewEngineOptions(),
		Pools:                    NewPoolOptions(),
		AuditLeaseName:           "ecr-preflight-audit",
		AuditPolicyReports:       true,
	}
}

func newServeCommand(s Streams) *cobra.Command {
	return newServeCommandWithDeps(s, serveDeps{})
}

// newServeCommandWithDeps lets tests inject a Checker until, and instead
// of, the real engine.
func newServeCommandWithDeps(s Streams, deps serveDeps) *cobra.Command {
	o := NewServeOptions()
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the validating admission webhook",
		Long: `Run the validating admission webhook for Deployments, StatefulSets, DaemonSets,
ReplicaSets, Jobs, CronJobs and Pods. Each workload's images are checked for the
node pools its pods can be scheduled onto (their IAM roles and platforms); the
mode decides whether findings warn, deny, or are only logged.

Node pools are discovered from Nodes and Karpenter NodePools (--discover-nodes),
EKS managed node groups and Fargate profiles (--cluster-name), and configured
statically (--node-role-arn, --node-pools-config). ecr-preflight pools shows
what discovery finds.

By default the webhook runs inside a controller-runtime manager, which reads the
` + webhook.ModeLabel + ` label of namespaces through the API server. With
--standalone it serves admission with only its certificate files and static node
pools: no API server access, so namespace labels are ignored and Nodes are not
discovered.

The serving certificate is tls.crt and tls.key in --cert-dir, reloaded when they
change (a Secret mounted there by cert-manager or by hand), or, with
--cert-rotation, issued in-process: a CA and a certificate kept in a Secret,
renewed by the elected replica, the CA injected into the webhook configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return usageError("%s", joinLines(err))
			}
			log := newLogger(s.Err, o.LogFormat, o.Verbosity)
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
			defer signal.Stop(sigs)
			ctx, stop := onShutdownSignal(cmd.Context(), sigs, func(sig os.Signal) {
				log.Info("second signal; exiting at once", "signal", sig.String())
				os.Exit(ExitFail)
			})
			defer stop()
			if err := runServe(ctx, o, deps, log); err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			return nil
		},
	}
	groupedFlags(cmd, o.flagGroups()...)
	return cmd
}

// onShutdownSignal returns a context that ends at the first signal on sigs:
// serve then drains (see drain). A second signal calls exit, for an operator
// who will not wait for the drain. stop ends the watch.
func onShutdownSignal(parent context.Context, sigs <-chan os.Signal, exit func(os.Signal)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	stopped := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	go func() {
		// A signal that arrives with stop wins nothing: select picks at
		// random among ready cases, so stop is checked after each one.
		select {
		case <-sigs:
		case <-done:
			return
		}
		if stopped() {
			return
		}
		cancel()
		select {
		case sig := <-sigs:
			if !stopped() {
				exit(sig)
			}
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			close(done)
			cancel()
		})
	}
}

func (o *ServeOptions) flagGroups() []flagGroup {
	serving := newFlagSet("serving")
	serving.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "address the webhook listens on (default: all)")
	serving.IntVar(&o.Port, "port", o.Port, "port the webhook serves HTTPS on")
	serving.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory with tls.crt and tls.key; reloaded when they change")
	serving.BoolVar(&o.EnableHTTP2, "enable-http2", o.EnableHTTP2, "serve HTTP/2 too (off: HTTP/2 stream attacks such as rapid reset)")
	serving.BoolVar(&o.CertRotation, "cert-rotation", o.CertRotation,
		"issue the serving certificate in-process: a CA and a certificate kept in --cert-secret-name and renewed before expiry by the elected "+
			"replica, written by every replica into --cert-dir (which must be writable), the CA injected as caBundle into --webhook-configuration-name; "+
			"not ready until then. Needs the Kubernetes API")
	serving.StringVar(&o.CertSecretName, "cert-secret-name", o.CertSecretName, "with --cert-rotation: the Secret holding the CA and the serving certificate (created if missing)")
	serving.StringVar(&o.CertSecretNamespace, "cert-secret-namespace", o.CertSecretNamespace,
		"with --cert-rotation: namespace of that Secret and of the leader-election Lease <cert-secret-name>-rotation (default: $"+podNamespaceEnv+")")
	serving.StringArrayVar(&o.CertDNSNames, "cert-dns-name", o.CertDNSNames,
		"with --cert-rotation: a DNS name of the serving certificate, e.g. SERVICE.NAMESPACE.svc (repeatable; required)")
	serving.StringVar(&o.WebhookConfigurationName, "webhook-configuration-name", o.WebhookConfigurationName,
		"with --cert-rotation: the ValidatingWebhookConfiguration whose webhooks all get the CA as caBundle")

	adm := newFlagSet("admission")
	o.rejected.varP(adm, (*modeFlag)(&o.Mode), "mode", "", "what findings do: warn (allow with warnings), deny (reject pulls that fail), dryrun (log only)")
	adm.BoolVar(&o.DenyOnAnyPool, "deny-on-any-pool", o.DenyOnAnyPool,
		"in deny mode, reject an image that any candidate node pool cannot pull (default: only when none can; the rest are warnings)")
	adm.DurationVar(&o.AdmissionTimeout, "admission-timeout", o.AdmissionTimeout,
		"budget of one admission; images not checked in time are warned about, never rejected. Keep it below the webhook's timeoutSeconds")
	optionalBoolVar(adm, &o.AllowSkipAnnotation, "allow-skip-annotation",
		"honour "+webhook.SkipAnnotation+`: "true" on workloads (default: true in warn mode, false otherwise)`)
	adm.IntVar(&o.MaxConcurrentAdmissions, "max-concurrent-admissions", o.MaxConcurrentAdmissions,
		"distinct admissions checked at once (identical ones share one check); beyond it requests wait briefly, then are allowed with a warning")
	adm.IntVar(&o.MaxImagesPerObject, "max-images-per-object", o.MaxImagesPerObject,
		"distinct images checked in one object; the rest are named in a warning, not checked")

	pools := newFlagSet("node pools")
	o.Pools.AddFlags(pools, &o.rejected)

	aud := newFlagSet("audit")
	aud.DurationVar(&o.AuditInterval, "audit-interval", o.AuditInterval,
		"audit every running workload this often (0: never): the elected replica emits Events (ImageNotPullable, ImagePullable, ImageExpiring) on workloads, "+
			"exports per-container gauges and writes PolicyReports. Needs the Kubernetes API")
	aud.StringVar(&o.AuditLeaseName, "audit-lease-name", o.AuditLeaseName,
		"the Lease that elects the auditing replica, in --cert-secret-namespace ($"+podNamespaceEnv+"); with --cert-rotation its Lease elects it instead")
	aud.BoolVar(&o.AuditPolicyReports, "audit-policy-reports", o.AuditPolicyReports,
		"write the audit as wgpolicyk8s.io/v1alpha2 PolicyReports (one per namespace) when that CRD is installed")

	ops := newFlagSet("operations")
	ops.BoolVar(&o.Standalone, "standalone", o.Standalone, "serve without the Kubernetes API: static node pools, EKS and certificate files only; namespace mode labels are ignored")
	ops.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file (default: in-cluster, then $KUBECONFIG and ~/.kube/config)")
	ops.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, `address of the Prometheus /metrics endpoint; "0" disables it`)
	ops.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, `address of /healthz and /readyz; "0" disables them`)
	ops.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay,
		"on SIGTERM, keep serving this long while reporting not ready, so endpoints drain before the server stops; "+
			"then admissions in flight finish (at most --admission-timeout + 1s). A second signal exits at once")
	choiceVar(&o.rejected, ops, &o.LogFormat, "log-format", "", "log format: json or text", logJSON, logText)
	ops.IntVarP(&o.Verbosity, "verbosity", "v", o.Verbosity, "log verbosity; 1 logs every admission")

	engine := newFlagSet("engine")
	o.Engine.AddFlags(engine)

	return []flagGroup{
		{"Serving flags", serving},
		{"Admission flags", adm},
		{"Node pool flags", pools},
		{"Audit flags", aud},
		{"Operation flags", ops},
		{"Engine and AWS flags", engine},
	}
}

// Validate checks every flag and reports all problems at once.
func (o *ServeOptions) Validate() error {
	errs := slices.Clone(o.rejected)
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d is not a TCP port", o.Port))
	}
	if o.CertDir == "" {
		errs = append(errs, errors.New("--cert-dir is required"))
	}
	errs = append(errs, o.Pools.Validate(!o.Standalone)...)
	// The API server waits at most 30s for a webhook; the budget must end
	// before the caller gives up.
	if o.AdmissionTimeout <= 0 || o.AdmissionTimeout >= 30*time.Second {
		errs = append(errs, fmt.Errorf("--admission-timeout %v must be above 0 and below 30s", o.AdmissionTimeout))
	}
	if o.MaxConcurrentAdmissions < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-admissions %d must be at least 1", o.MaxConcurrentAdmissions))
	}
	if o.MaxImagesPerObject < 1 {
		errs = append(errs, fmt.Errorf("--max-images-per-object %d must be at least 1", o.MaxImagesPerObject))
	}
	if o.ShutdownDelay < 0 || o.ShutdownDelay > 5*time.Minute {
		errs = append(errs, fmt.Errorf("--shutdown-delay %v must be between 0 and 5m", o.ShutdownDelay))
	}
	for flag, addr := range map[string]string{"--metrics-bind-address": o.MetricsBindAddress, "--health-probe-bind-address": o.HealthProbeBindAddress} {
		if addr == "0" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf(`%s %q: want host:port, :port or "0"`, flag, addr))
		}
	}
	if o.MetricsBindAddress != "0" && o.MetricsBindAddress == o.HealthProbeBindAddress {
		errs = append(errs, errors.New("--metrics-bind-address and --health-probe-bind-address must differ"))
	}
	if o.Standalone && o.Kubeconfig != "" {
		errs = append(errs, errors.New("--kubeconfig has no use with --standalone, which never talks to the API server"))
	}
	if o.CertRotation {
		errs = append(errs, o.validateCertRotation()...)
	}
	errs = append(errs, o.validateAudit()...)
	if o.Verbosity < 0 {
		errs = append(errs, errors.New("-v must not be negative"))
	}
	if err := o.Engine.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// podNamespaceEnv names the pod's namespace (the downward API), the
// default of --cert-secret-namespace.
const podNamespaceEnv = "POD_NAMESPACE"

// validateCertRotation checks the flags of --cert-rotation.
func (o *ServeOptions) validateCertRotation() []error {
	var errs []error
	if o.Standalone {
		errs = append(errs, errors.New("--cert-rotation needs the Kubernetes API (a Secret, a Lease, the webhook configuration): it has no use with --standalone"))
	}
	r := o.rotationOptions()
	for _, n := range []struct{ flag, name string }{{"--cert-secret-name", r.SecretName}, {"--webhook-configuration-name", r.WebhookConfigurationName}} {
		if msgs := validation.IsDNS1123Subdomain(n.name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: %s", n.flag, n.name, strings.Join(msgs, "; ")))
		}
	}
	switch {
	case r.SecretNamespace == "":
		errs = append(errs, fmt.Errorf("--cert-secret-namespace is required with --cert-rotation when $%s is unset", podNamespaceEnv))
	case len(validation.IsDNS1123Label(r.SecretNamespace)) > 0:
		errs = append(errs, fmt.Errorf("--cert-secret-namespace %q is not a namespace name", r.SecretNamespace))
	}
	if len(r.DNSNames) == 0 {
		errs = append(errs, errors.New("--cert-dns-name is required with --cert-rotation (the Service's name, e.g. ecr-preflight.ecr-preflight.svc)"))
	}
	for _, name := range r.DNSNames {
		if err := certs.CheckDNSName(name); err != nil {
			errs = append(errs, fmt.Errorf("--cert-dns-name: %w", err))
		}
	}
	return errs
}

// validateAudit checks the flags of the continuous audit.
func (o *ServeOptions) validateAudit() []error {
	switch {
	case o.AuditInterval < 0:
		return []error{fmt.Errorf("--audit-interval %s: must not be negative", o.AuditInterval)}
	case o.AuditInterval == 0:
		return nil
	case o.AuditInterval < 10*time.Second:
		return []error{fmt.Errorf("--audit-interval %s: at least 10s (answers are cached for minutes anyway)", o.AuditInterval)}
	case o.Standalone:
		return []error{errors.New("--audit-interval needs the Kubernetes API (workloads, Events, a Lease): it has no use with --standalone")}
	}
	var errs []error
	if !o.CertRotation {
		if msgs := validation.IsDNS1123Subdomain(o.AuditLeaseName); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--audit-lease-name %q: %s", o.AuditLeaseName, strings.Join(msgs, "; ")))
		}
		if o.rotationOptions().SecretNamespace == "" {
			errs = append(errs, fmt.Errorf("--audit-interval needs a namespace for its Lease: --cert-secret-namespace, or $%s", podNamespaceEnv))
		}
	}
	return errs
}

// leaderElection says whether a replica is elected, and by which Lease: the
// certificate rotation's, or with the audit alone, the audit's.
func (o *ServeOptions) leaderElection() (on bool, lease, namespace string) {
	rot := o.rotationOptions()
	switch {
	case o.CertRotation:
		return true, rot.LeaseName(), rot.SecretNamespace
	case o.AuditInterval > 0:
		return true, o.AuditLeaseName, rot.SecretNamespace
	}
	return false, "", ""
}

// rotationOptions are the --cert-rotation settings the flags describe.
func (o *ServeOptions) rotationOptions() certs.RotationOptions {
	ns := o.CertSecretNamespace
	if ns == "" {
		ns = os.Getenv(podNamespaceEnv)
	}
	return certs.RotationOptions{
		SecretName:               o.CertSecretName,
		SecretNamespace:          ns,
		DNSNames:                 o.CertDNSNames,
		WebhookConfigurationName: o.WebhookConfigurationName,
	}
}

// webhookOptions are the admission settings the flags describe.
func (o *ServeOptions) webhookOptions(checker webhook.Checker, metrics webhook.Metrics) webhook.Options {
	return webhook.Options{
		Checker:       checker,
		Pools:         webhook.StaticRoles(o.Pools.NodeRoles),
		DenyOnAnyPool: o.DenyOnAnyPool,
		Mode:          o.Mode,
		AllowSkip:     o.AllowSkipAnnotation,
		Timeout:       o.AdmissionTimeout,
		MaxConcurrent: o.MaxConcurrentAdmissions,
		MaxImages:     o.MaxImagesPerObject,
		Metrics:       metrics,
	}
}
