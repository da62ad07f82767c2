package webhook

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
	"github.com/ecr-preflight/ecr-preflight/internal/workloads"
)

const (
	uiWarning  = `container "ui": 1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1 will not pull: RepositoryPolicyDenies (statement "new policy")`
	vpcWarning = `container "sidecar": 1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-cart:1.2.1 could not be verified: Undetermined (statement "vpce only")`
	uiDenial   = `ecr-preflight: Deployment retail/ui-private uses images the node role cannot pull:` + "\n" +
		`- container "ui": 1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1: RepositoryPolicyDenies: ` + deniedText +
		` (role arn:aws:iam::1234567890:role/EksNodeGroupRole). Fix: ` + deniedFix
)

func boolPtr(b bool) *bool { return &b }

// call runs one validator method against an admitter.
type call func(ctx context.Context, a *admitter) (admission.Warnings, error)

func create[T runtime.Object](v func(*admitter) admission.Validator[T], obj T) call {
	return func(ctx context.Context, a *admitter) (admission.Warnings, error) {
		return v(a).ValidateCreate(ctx, obj)
	}
}

func update[T runtime.Object](v func(*admitter) admission.Validator[T], old, obj T) call {
	return func(ctx context.Context, a *admitter) (admission.Warnings, error) {
		return v(a).ValidateUpdate(ctx, old, obj)
	}
}

func deployments(a *admitter) admission.Validator[*appsv1.Deployment] { return deploymentValidator(a) }
func pods(a *admitter) admission.Validator[*corev1.Pod]               { return podValidator(a) }

func TestAdmit(t *testing.T) {
	tests := map[string]struct {
		opts         func(*Options)
		call         call
		wantWarnings admission.Warnings
		wantErr      string
		wantChecked  [][]string
		wantDecision string
	}{
		"warn mode allows the seed Deployment with one warning naming container, image and statement": {
			call:         create(deployments, deployment("ui-private", uiImage)),
			wantWarnings: admission.Warnings{uiWarning},
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE warn warn",
		},
		"deny mode rejects the seed Deployment with the full story": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         create(deployments, deployment("ui-private", uiImage)),
			wantErr:      uiDenial,
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE deny deny",
		},
		"deny mode keeps unknown findings as warnings alongside a denial": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         create(deployments, deployment("ui-private", uiImage, vpcImage)),
			wantWarnings: admission.Warnings{vpcWarning},
			wantErr:      uiDenial,
			wantChecked:  [][]string{{uiImage, vpcImage}},
			wantDecision: "Deployment CREATE deny deny",
		},
		"deny mode allows unknown-only images with warnings": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         create(deployments, deployment("cart", okImage, vpcImage)),
			wantWarnings: admission.Warnings{vpcWarning},
			wantChecked:  [][]string{{okImage, vpcImage}},
			wantDecision: "Deployment CREATE deny warn",
		},
		"pullable and non-ECR images say nothing": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         create(deployments, deployment("fine", okImage, hubImage)),
			wantChecked:  [][]string{{okImage, hubImage}},
			wantDecision: "Deployment CREATE deny allow",
		},
		"dryrun mode allows silently and counts what deny would have done": {
			opts:         func(o *Options) { o.Mode = ModeDryRun },
			call:         create(deployments, deployment("ui-private", uiImage)),
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE dryrun would-deny",
		},
		"dryrun mode counts unknowns as would-warn": {
			opts:         func(o *Options) { o.Mode = ModeDryRun },
			call:         create(deployments, deployment("cart", vpcImage)),
			wantChecked:  [][]string{{vpcImage}},
			wantDecision: "Deployment CREATE dryrun would-warn",
		},
		"a namespace labelled deny overrides the warn default": {
			opts:         func(o *Options) { o.NamespaceModes = fakeModes{labels: map[string]string{namespace: "deny"}} },
			call:         create(deployments, deployment("ui-private", uiImage)),
			wantErr:      uiDenial,
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE deny deny",
		},
		"a namespace labelled dryrun overrides the deny default": {
			opts: func(o *Options) {
				o.Mode = ModeDeny
				o.NamespaceModes = fakeModes{labels: map[string]string{namespace: "dryrun"}}
			},
			call:         create(deployments, deployment("ui-private", uiImage)),
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE dryrun would-deny",
		},
		"a label for another namespace changes nothing": {
			opts:         func(o *Options) { o.NamespaceModes = fakeModes{labels: map[string]string{"other": "deny"}} },
			call:         create(deployments, deployment("ui-private", uiImage)),
			wantWarnings: admission.Warnings{uiWarning},
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE warn warn",
		},
		"a namespace label with a typo keeps the default and says so": {
			opts:         func(o *Options) { o.NamespaceModes = fakeModes{labels: map[string]string{namespace: "Deny\n"}} },
			call:         create(deployments, deployment("ui-private", uiImage)),
			wantWarnings: admission.Warnings{`ecr-preflight: namespace label ecr-preflight.io/mode="Deny\n" is not warn, deny or dryrun; using warn`, uiWarning},
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE warn warn",
		},
		"a namespace that cannot be read keeps the default mode": {
			opts: func(o *Options) {
				o.Mode = ModeDeny
				o.NamespaceModes = fakeModes{err: errors.New("forbidden")}
			},
			call:         create(deployments, deployment("ui-private", uiImage)),
			wantErr:      uiDenial,
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE deny deny",
		},
		"the skip annotation is honoured in warn mode by default, with a warning": {
			call:         create(deployments, annotated(deployment("ui-private", uiImage), SkipAnnotation, "true")),
			wantWarnings: admission.Warnings{"ecr-preflight: check skipped by annotation ecr-preflight.io/skip"},
			wantDecision: "Deployment CREATE warn skip",
		},
		"the skip annotation is ignored in deny mode by default": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         create(deployments, annotated(deployment("ui-private", uiImage), SkipAnnotation, "true")),
			wantWarnings: admission.Warnings{"ecr-preflight: annotation ecr-preflight.io/skip ignored: skipping is not allowed in deny mode"},
			wantErr:      uiDenial,
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE deny deny",
		},
		"the skip annotation is honoured in deny mode when allowed": {
			opts:         func(o *Options) { o.Mode, o.AllowSkip = ModeDeny, boolPtr(true) },
			call:         create(deployments, annotated(deployment("ui-private", uiImage), SkipAnnotation, "true")),
			wantWarnings: admission.Warnings{"ecr-preflight: check skipped by annotation ecr-preflight.io/skip"},
			wantDecision: "Deployment CREATE deny skip",
		},
		"the skip annotation is ignored in warn mode when not allowed": {
			opts: func(o *Options) { o.AllowSkip = boolPtr(false) },
			call: create(deployments, annotated(deployment("ui-private", uiImage), SkipAnnotation, "true")),
			wantWarnings: admission.Warnings{
				"ecr-preflight: annotation ecr-preflight.io/skip ignored: skipping is not allowed in warn mode", uiWarning},
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE warn warn",
		},
		"a skip annotation other than true is no skip": {
			call:         create(deployments, annotated(deployment("ui-private", uiImage), SkipAnnotation, "yes")),
			wantWarnings: admission.Warnings{uiWarning},
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE warn warn",
		},
		"dryrun mode skips silently": {
			opts:         func(o *Options) { o.Mode, o.AllowSkip = ModeDryRun, boolPtr(true) },
			call:         create(deployments, annotated(deployment("ui-private", uiImage), SkipAnnotation, "true")),
			wantDecision: "Deployment CREATE dryrun skip",
		},
		"an UPDATE that keeps a bad image (scale, restart) is warned about, never blocked": {
			opts: func(o *Options) { o.Mode = ModeDeny },
			call: update(deployments, deployment("ui-private", uiImage),
				annotated(deployment("ui-private", uiImage), "kubectl.kubernetes.io/restartedAt", "now")),
			wantWarnings: admission.Warnings{uiWarning},
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment UPDATE deny warn",
		},
		"an UPDATE that introduces a bad image is rejected": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         update(deployments, deployment("ui-private", okImage), deployment("ui-private", uiImage)),
			wantErr:      uiDenial,
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment UPDATE deny deny",
		},
		"an UPDATE moving a bad image to another container does not count as new": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         update(deployments, deployment("ui-private", okImage, uiImage), deployment("ui-private", uiImage)),
			wantWarnings: admission.Warnings{uiWarning},
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment UPDATE deny warn",
		},
		"an object being deleted is not checked": {
			opts: func(o *Options) { o.Mode = ModeDeny },
			call: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				d := deployment("ui-private", uiImage)
				d.DeletionTimestamp = &metav1.Time{Time: time.Now()}
				return deploymentValidator(a).ValidateUpdate(ctx, deployment("ui-private", okImage), d)
			},
			wantDecision: "Deployment UPDATE deny skip",
		},
		"init, regular and ephemeral containers are all checked, each image once": {
			call: create(pods, func() *corev1.Pod {
				p := pod("debugged", okImage, uiImage)
				p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: uiImage}}
				p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: vpcImage}}}
				return p
			}()),
			wantWarnings: admission.Warnings{
				`containers "init", "sidecar": 1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1 will not pull: RepositoryPolicyDenies (statement "new policy")`,
				`container "debug": 1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-cart:1.2.1 could not be verified: Undetermined (statement "vpce only")`,
			},
			wantChecked:  [][]string{{uiImage, okImage, vpcImage}},
			wantDecision: "Pod CREATE warn warn",
		},
		"a pod owned by a ReplicaSet is skipped: its owner was checked": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         create(pods, controlledBy(pod("ui-abc", uiImage), "apps/v1", "ReplicaSet")),
			wantDecision: "Pod CREATE deny allow",
		},
		"an owned pod still has its new ephemeral containers checked": {
			opts: func(o *Options) { o.Mode = ModeDeny },
			call: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				old := controlledBy(pod("ui-abc", okImage), "apps/v1", "ReplicaSet")
				p := old.DeepCopy()
				p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: uiImage}}}
				return podValidator(a).ValidateUpdate(ctx, old, p)
			},
			wantErr:      strings.Replace(strings.Replace(uiDenial, "Deployment retail/ui-private", "Pod retail/ui-abc", 1), `container "ui"`, `container "debug"`, 1),
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Pod UPDATE deny deny",
		},
		"a pod owned by a controller this webhook does not check is checked": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         create(pods, controlledBy(pod("rollout-abc", okImage), "example.com/v1", "Widget")),
			wantChecked:  [][]string{{okImage}},
			wantDecision: "Pod CREATE deny allow",
		},
		"a mirror pod is not checked": {
			opts:         func(o *Options) { o.Mode = ModeDeny },
			call:         create(pods, annotated(pod("kube-proxy-node1", uiImage), workloads.MirrorPodAnnotation, "abc")),
			wantDecision: "Pod CREATE deny skip",
		},
		"a ReplicaSet owned by a Deployment is skipped": {
			opts: func(o *Options) { o.Mode = ModeDeny },
			call: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return replicaSetValidator(a).ValidateCreate(ctx, controlledBy(replicaSet("ui-abc", uiImage), "apps/v1", "Deployment"))
			},
			wantDecision: "ReplicaSet CREATE deny skip",
		},
		"a Job owned by a CronJob is skipped": {
			opts: func(o *Options) { o.Mode = ModeDeny },
			call: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				return jobValidator(a).ValidateCreate(ctx, controlledBy(job("nightly-123", uiImage), "batch/v1", "CronJob"))
			},
			wantDecision: "Job CREATE deny skip",
		},
		"a warning beside a deny on the same image stays a warning": {
			opts: func(o *Options) {
				o.Mode = ModeDeny
				undecided := seedResults[vpcImage].Findings[0]
				undecided.Role = otherRole
				r := seedResults[uiImage]
				r.Findings = append([]preflight.Finding{undecided}, r.Findings...)
				o.Checker = &fakeChecker{results: map[string]preflight.Result{uiImage: r}}
			},
			call: create(deployments, deployment("ui-private", uiImage)),
			wantWarnings: admission.Warnings{
				`container "ui": 1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1 could not be verified: Undetermined (statement "vpce only", role GpuNodeRole)`},
			wantErr:      uiDenial,
			wantDecision: "Deployment CREATE deny deny",
		},
		"findings for several candidate roles name the role": {
			opts: func(o *Options) {
				f := seedResults[uiImage].Findings[0]
				g := f
				g.Role = otherRole
				o.Checker = &fakeChecker{results: map[string]preflight.Result{uiImage: {Image: uiImage, Verdict: preflight.VerdictNotPullable, Findings: []preflight.Finding{f, g}}}}
			},
			call: create(deployments, deployment("ui-private", uiImage)),
			wantWarnings: admission.Warnings{
				uiWarning[:len(uiWarning)-1] + `, role EksNodeGroupRole)`,
				uiWarning[:len(uiWarning)-1] + `, role GpuNodeRole)`,
			},
			wantDecision: "Deployment CREATE warn warn",
		},
		"the namespace comes from the request when the object has none": {
			opts: func(o *Options) { o.NamespaceModes = fakeModes{labels: map[string]string{"from-url": "dryrun"}} },
			call: func(ctx context.Context, a *admitter) (admission.Warnings, error) {
				ctx = admission.NewContextWithRequest(ctx, admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Namespace: "from-url"}})
				d := deployment("ui-private", uiImage)
				d.Namespace = ""
				return deploymentValidator(a).ValidateCreate(ctx, d)
			},
			wantChecked:  [][]string{{uiImage}},
			wantDecision: "Deployment CREATE dryrun would-deny",
		},
		"node pools that cannot be found leave every image unknown": {
			opts: func(o *Options) { o.Mode, o.Pools = ModeDeny, failingRoles{} },
			call: create(deployments, deployment("ui-private", uiImage)),
			wantWarnings: admission.Warnings{
				`container "ui": 1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1 could not be verified: LookupFailed (could not determine node pools)`},
			wantDecision: "Deployment CREATE deny warn",
		},
		"a checker that panics costs a warning, not the server": {
			opts: func(o *Options) { o.Mode, o.Checker = ModeDeny, &fakeChecker{panics: true} },
			call: create(deployments, deployment("ui-private", uiImage)),
			wantWarnings: admission.Warnings{
				`container "ui": 1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:1.2.1 could not be verified: LookupFailed (internal error while checking)`},
			wantDecision: "Deployment CREATE deny warn",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			checker := &fakeChecker{results: seedResults}
			rec := &recorder{}
			o := Options{Checker: checker, Pools: StaticRoles{nodeRole}, Metrics: rec}
			if tc.opts != nil {
				tc.opts(&o)
			}
			a, err := newAdmitter(o)
			if err != nil {
				t.Fatal(err)
			}
			warnings, err := tc.call(context.Background(), a)
			if diff := diff(tc.wantWarnings, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if got := errString(err); got != tc.wantErr {
				t.Errorf("error:\n got %q\nwant %q", got, tc.wantErr)
			}
			if c, ok := o.Checker.(*fakeChecker); ok && c == checker {
				if diff := diff(tc.wantChecked, checker.Calls()); diff != "" {
					t.Errorf("images checked (-want +got):\n%s", diff)
				}
			}
			if diff := diff([]string{tc.wantDecision}, rec.admissions); diff != "" {
				t.Errorf("recorded admission (-want +got):\n%s", diff)
			}
			assertCleanWarnings(t, warnings)
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// assertCleanWarnings holds every warning to what the API server keeps.
func assertCleanWarnings(t *testing.T, ws admission.Warnings) {
	t.Helper()
	if len(ws) > maxWarnings {
		t.Errorf("%d warnings, want at most %d", len(ws), maxWarnings)
	}
	for _, w := range ws {
		if len(w) > warningMax {
			t.Errorf("warning of %d bytes, want at most %d: %q", len(w), warningMax, w)
		}
		for _, r := range w {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u202e' || r == '\ufffd' {
				t.Errorf("warning contains control character %U: %q", r, w)
			}
		}
	}
}

// diff is "" when want and got are deeply equal, else both, one per line.
func diff(want, got any) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return fmt.Sprintf("- %#v\n+ %#v", want, got)
}
