package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ecr-preflight/ecr-preflight/certs"
	"github.com/ecr-preflight/ecr-preflight/internal/audit"
	"github.com/ecr-preflight/ecr-preflight/internal/metrics"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools/discover"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// runManager serves admission from a controller-runtime manager, which
// adds what needs the API server: namespace mode labels and node pools
// (Nodes, Karpenter NodePools) from its cache. discovery sets up node
// pools with the reader to discover them through (nil: none).
func runManager(ctx context.Context, o *ServeOptions, wopts webhook.Options, files *certs.Files, d *drain, discovery func(client.Reader) (*discover.Provider, error), reg registry, log logr.Logger) error {
	cfg, err := o.restConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	rot := o.rotationOptions()
	elected, lease, leaseNamespace := o.leaderElection()
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                 scheme,
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		WebhookServer:          newWebhookServer(o, files, d, log),
		// The webhook server bounds its own stop at d.grace; the extra
		// second covers stopping the caches and the other runnables first.
		GracefulShutdownTimeout: ptr.To(d.grace + time.Second),
		// Every replica serves. Only --cert-rotation and the audit need a
		// leader: the one replica that writes the certificate Secret and
		// the caBundle, and audits. Losing the lease stops the process
		// (controller-runtime), so a restarted pod campaigns afresh; the
		// others serve meanwhile.
		LeaderElection:                elected,
		LeaderElectionID:              lease,
		LeaderElectionNamespace:       leaseNamespace,
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			// Discovery reads a Node's labels, taints, providerID and
			// nodeInfo; its image list is large and never read.
			ByObject: map[client.Object]cache.ByObject{&corev1.Node{}: {Transform: stripNodeImages}},
		},
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.Add(files); err != nil {
		return fmt.Errorf("adding certificate watcher: %w", err)
	}
	wopts.NamespaceModes = webhook.LabelModes{Reader: mgr.GetClient()}
	var nodes client.Reader
	if o.Pools.nodeDiscovery(true) {
		// The cache, not the client: it serves Nodes and Karpenter's
		// objects (unstructured) from watches.
		nodes = mgr.GetCache()
	}
	pools, err := discovery(nodes)
	if err != nil {
		return err
	}
	wopts.Pools = poolsOf(pools)
	// Every replica keeps its own snapshot of the node pools, from the
	// manager's watch-backed cache, rebuilt soon after what it is made of
	// changes.
	if err := mgr.Add(pools); err != nil {
		return fmt.Errorf("adding node pool discovery: %w", err)
	}
	if nodes != nil {
		if err := mgr.Add(everyReplica{watchPools(mgr, pools, log)}); err != nil {
			return fmt.Errorf("adding node pool watches: %w", err)
		}
	}
	if err := webhook.Register(mgr, wopts); err != nil {
		return err
	}
	if err := mgr.Add(everyReplica{warmNamespaces(mgr, log)}); err != nil {
		return fmt.Errorf("adding namespace cache warm-up: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	// Not ready before the first discovery: admissions would only have
	// static pools. A discovery that fails still ends (its sources marked
	// incomplete), so this never holds readiness for longer than that.
	if err := mgr.AddReadyzCheck("nodepools", func(*http.Request) error {
		if !pools.Ready() {
			return errors.New("node pools not discovered yet")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	if err := mgr.AddReadyzCheck("drain", d.check); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	if o.AuditInterval > 0 {
		if err := addAudit(mgr, o, wopts, reg, log.WithName("audit")); err != nil {
			return err
		}
	}
	if o.CertRotation {
		rotation, err := certs.SetupRotation(ctx, mgr, files, rot, log.WithName("certificates"))
		if err != nil {
			return fmt.Errorf("setting up certificate rotation: %w", err)
		}
		if err := mgr.AddReadyzCheck("certificate", rotation.Check); err != nil {
			return fmt.Errorf("adding readiness check: %w", err)
		}
	}
	return mgr.Start(ctx)
}

// stripNodeImages drops what the cache need not keep of a Node: its
// managed fields and status.images (up to 50 image names and sizes).
func stripNodeImages(obj any) (any, error) {
	obj, err := cache.TransformStripManagedFields()(obj)
	if n, ok := obj.(*corev1.Node); ok {
		n.Status.Images = nil
	}
	return obj, err
}

// poolKinds are the objects node pools are made of, besides Nodes:
// Karpenter's, watched only where its CRDs are installed.
var poolKinds = []schema.GroupVersionKind{
	{Group: "karpenter.sh", Version: "v1", Kind: "NodePool"},
	{Group: "karpenter.k8s.aws", Version: "v1", Kind: "EC2NodeClass"},
}

// watchPools asks discovery for a new snapshot when a Node comes or goes or
// changes what discovery reads (labels, taints, providerID), and when a
// Karpenter NodePool or EC2NodeClass changes: Provider.Invalidate rebuilds
// at most once a second. A kind that cannot be watched (Karpenter not
// installed) is left to the periodic refresh.
func watchPools(mgr manager.Manager, pools *discover.Provider, log logr.Logger) manager.RunnableFunc {
	return func(ctx context.Context) error {
		changed := toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { pools.Invalidate() },
			DeleteFunc: func(any) { pools.Invalidate() },
			UpdateFunc: func(old, obj any) {
				o, isNode := old.(*corev1.Node)
				n, _ := obj.(*corev1.Node)
				if isNode && n != nil && !nodeShapeChanged(o, n) {
					return
				}
				pools.Invalidate()
			},
		}
		if inf, err := mgr.GetCache().GetInformer(ctx, &corev1.Node{}); err != nil {
			log.Error(err, "watching Nodes; node pools are rebuilt on the refresh interval only")
		} else if _, err := inf.AddEventHandler(changed); err != nil {
			log.Error(err, "watching Nodes")
		}
		for _, gvk := range poolKinds {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			inf, err := mgr.GetCache().GetInformer(ctx, u, cache.BlockUntilSynced(false))
			if err != nil {
				log.V(1).Info("not watching; node pools from it are rebuilt on the refresh interval", "kind", gvk.Kind, "reason", err.Error())
				continue
			}
			if _, err := inf.AddEventHandler(changed); err != nil {
				log.Error(err, "watching", "kind", gvk.Kind)
			}
		}
		return nil
	}
}

// nodeShapeChanged says whether an update changed what discovery reads of
// a Node; status heartbeats do not.
func nodeShapeChanged(o, n *corev1.Node) bool {
	return !maps.Equal(o.Labels, n.Labels) || o.Spec.ProviderID != n.Spec.ProviderID ||
		!slices.EqualFunc(o.Spec.Taints, n.Spec.Taints, func(a, b corev1.Taint) bool { return a.MatchTaint(&b) && a.Value == b.Value })
}

// addAudit adds the continuous audit: the elected replica lists the
// workloads and checks them with the webhook's own engine and node pools,
// so its caches keep AWS at one call per distinct lookup per TTL across
// admissions and audits.
func addAudit(mgr manager.Manager, o *ServeOptions, wopts webhook.Options, reg registry, log logr.Logger) error {
	checker, ok := wopts.Checker.(audit.Checker)
	if !ok {
		return fmt.Errorf("the audit needs a Checker that checks for node pools, got %T", wopts.Checker)
	}
	rec, err := metrics.NewAuditRecorder(reg)
	if err != nil {
		return err
	}
	loop, err := audit.NewLoop(audit.LoopOptions{
		// Straight from the API server, a page at a time, each interval:
		// caching every Pod of the cluster in the webhook would cost more
		// memory than the audit saves.
		Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(),
		Checker: checker, Placer: wopts.Pools,
		Interval: o.AuditInterval,
		Recorder: audit.NewEventWriter(mgr.GetClient(), os.Getenv("POD_NAME"), func(err error) {
			log.Error(err, "writing an audit event")
		}),
		Metrics: rec, PolicyReports: o.AuditPolicyReports, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("setting up the audit: %w", err)
	}
	if err := mgr.Add(loop); err != nil {
		return fmt.Errorf("adding the audit: %w", err)
	}
	return nil
}

// everyReplica runs on every replica: a bare RunnableFunc would run on the
// leader only once leader election is on (--cert-rotation).
type everyReplica struct{ manager.RunnableFunc }

func (everyReplica) NeedLeaderElection() bool { return false }

// warmNamespaces starts the namespace-metadata informer at startup, so
// the first admission reads labels from a synced cache instead of paying
// for the sync out of its budget. A failure (say, RBAC) only costs the
// labels: admissions fall back to the default mode, so it is logged, not
// fatal, and readiness does not wait for it.
func warmNamespaces(mgr manager.Manager, log logr.Logger) manager.RunnableFunc {
	return func(ctx context.Context) error {
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		// Blocks until synced; a forbidden list shows in the reflector's logs.
		_, err := mgr.GetCache().GetInformer(ctx, ns)
		switch {
		case err == nil:
			log.Info("namespace mode labels cached")
		case ctx.Err() == nil:
			log.Error(err, "watching namespaces; mode labels are not read until this works")
		}
		return nil
	}
}

// restConfig loads --kubeconfig, or controller-runtime's usual sources.
func (o *ServeOptions) restConfig() (*rest.Config, error) { return loadRESTConfig(o.Kubeconfig) }

// newKubeClient is a client for the built-in kinds (the CLI commands'
// reads and writes: no cache).
func newKubeClient(rc *rest.Config) (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}
	c, err := client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("building the Kubernetes client: %w", err)
	}
	return c, nil
}

// loadRESTConfig loads kubeconfig, or when it is "" controller-runtime's
// usual sources (in-cluster, $KUBECONFIG, ~/.kube/config).
func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return config.GetConfig()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	// Like controller-runtime's loader: rely on API priority and fairness.
	cfg.QPS = -1
	return cfg, nil
}
