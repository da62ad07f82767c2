package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ecr-preflight/ecr-preflight/certs"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools/discover"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// runManager serves admission from a controller-runtime manager, which
// adds what needs the API server: namespace mode labels and node pools
// (Nodes, Karpenter NodePools) from its cache. discovery sets up node
// pools with the reader to discover them through (nil: none).
func runManager(ctx context.Context, o *ServeOptions, wopts webhook.Options, files *certs.Files, d *drain, discovery func(client.Reader) (*discover.Provider, error), log logr.Logger) error {
	cfg, err := o.restConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	rot := o.rotationOptions()
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                 scheme,
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		WebhookServer:          newWebhookServer(o, files, d, log),
		// The webhook server bounds its own stop at d.grace; the extra
		// second covers stopping the caches and the other runnables first.
		GracefulShutdownTimeout: ptr.To(d.grace + time.Second),
		// Every replica serves. Only --cert-rotation needs a leader: the
		// one replica that writes the certificate Secret and the caBundle.
		// Losing the lease stops the process (controller-runtime), so a
		// restarted pod campaigns afresh; the others serve meanwhile.
		LeaderElection:                o.CertRotation,
		LeaderElectionID:              rot.LeaseName(),
		LeaderElectionNamespace:       rot.SecretNamespace,
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
	// manager's watch-backed cache.
	if err := mgr.Add(pools); err != nil {
		return fmt.Errorf("adding node pool discovery: %w", err)
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
