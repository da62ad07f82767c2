package webhook

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// hook is one kind's validator, ready for either way of serving it.
type hook struct {
	obj runtime.Object
	// complete registers through controller-runtime's builder.
	complete func(manager.Manager) error
	// webhook builds the bare admission webhook for a webhook.Server.
	webhook func(*runtime.Scheme) *admission.Webhook
}

func hookFor[T runtime.Object](obj T, v admission.Validator[T]) hook {
	return hook{
		obj: obj,
		complete: func(mgr manager.Manager) error {
			gvk, err := apiutil.GVKForObject(obj, mgr.GetScheme())
			if err != nil {
				return err
			}
			return builder.WebhookManagedBy(mgr, obj).WithValidator(v).
				WithLogConstructor(builderRequestLogger(gvk)).Complete()
		},
		webhook: func(scheme *runtime.Scheme) *admission.Webhook {
			wh := admission.WithValidator(scheme, v)
			wh.LogConstructor = requestLogger
			return wh
		},
	}
}

// hooks lists every validated kind. All share one admitter, so the
// concurrency bound holds across kinds.
func hooks(a *admitter) []hook {
	return []hook{
		hookFor(&appsv1.Deployment{}, deploymentValidator(a)),
		hookFor(&appsv1.StatefulSet{}, statefulSetValidator(a)),
		hookFor(&appsv1.DaemonSet{}, daemonSetValidator(a)),
		hookFor(&appsv1.ReplicaSet{}, replicaSetValidator(a)),
		hookFor(&batchv1.Job{}, jobValidator(a)),
		hookFor(&batchv1.CronJob{}, cronJobValidator(a)),
		hookFor(&corev1.Pod{}, podValidator(a)),
	}
}

// Register adds a validating webhook for every checked kind to the
// manager's webhook server, each at controller-runtime's default path
// (see Paths).
func Register(mgr manager.Manager, o Options) error {
	a, err := newAdmitter(o)
	if err != nil {
		return err
	}
	for _, h := range hooks(a) {
		if err := h.complete(mgr); err != nil {
			return fmt.Errorf("registering the %T validator: %w", h.obj, err)
		}
	}
	return nil
}

// RegisterWithServer adds the same webhooks, at the same paths, to a bare
// webhook.Server: serving without a manager or an API server to talk to.
func RegisterWithServer(srv crwebhook.Server, o Options) error {
	a, err := newAdmitter(o)
	if err != nil {
		return err
	}
	scheme, err := newScheme()
	if err != nil {
		return err
	}
	for _, h := range hooks(a) {
		gvk, err := apiutil.GVKForObject(h.obj, scheme)
		if err != nil {
			return fmt.Errorf("finding the kind of %T: %w", h.obj, err)
		}
		srv.Register(ValidatePath(gvk), h.webhook(scheme))
	}
	return nil
}

// Paths lists the paths the validators are served at, for webhook
// configurations and tests.
func Paths() []string {
	scheme, err := newScheme()
	if err != nil {
		return nil
	}
	var out []string
	for _, h := range hooks(nil) {
		if gvk, err := apiutil.GVKForObject(h.obj, scheme); err == nil {
			out = append(out, ValidatePath(gvk))
		}
	}
	return out
}

// ValidatePath is controller-runtime's default path for a validating
// webhook of gvk, e.g. /validate-apps-v1-deployment or /validate--v1-pod
// (the core group is empty). Standalone serving uses it so one webhook
// configuration fits both ways of serving.
func ValidatePath(gvk schema.GroupVersionKind) string {
	return "/validate-" + strings.ReplaceAll(gvk.Group, ".", "-") + "-" + gvk.Version + "-" + strings.ToLower(gvk.Kind)
}

// newScheme knows exactly the kinds the webhook decodes.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building the admission scheme: %w", err)
		}
	}
	return s, nil
}
