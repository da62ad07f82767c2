package webhook

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

const armRole = "arn:aws:iam::1234567890:role/NodeRoleArm"

// armDenied is the seed's denial for the spot-arm node group's role.
var armDenied = preflight.Finding{
	Code: preflight.CodeRepositoryPolicyDenies, Severity: preflight.SeverityError, Role: armRole,
	Action: "ecr:BatchGetImage", Statement: "new policy",
	Pool:    &preflight.PoolRef{Name: "spot-arm", Kind: string(nodepools.KindManagedNodeGroup)},
	Message: `node group spot-arm (role NodeRoleArm) cannot pull: statement "new policy" of the repository policy of retail-sample-app-ui denies ecr:BatchGetImage to role NodeRoleArm`,
	Fix:     deniedFix,
}

func poolResult(v preflight.Verdict, fs ...preflight.Finding) map[string]preflight.Result {
	return map[string]preflight.Result{uiImage: {Image: uiImage, Verdict: v, Findings: fs}}
}

// snapshotPools is a PoolProvider over fixed pools, recording templates.
type snapshotPools struct {
	pools     []nodepools.Pool
	templates *[]nodepools.Template
}

func (s snapshotPools) Placement(ctx context.Context, t nodepools.Template) (nodepools.Placement, error) {
	*s.templates = append(*s.templates, t)
	return Pools{Snapshot: func(context.Context) nodepools.Snapshot { return nodepools.Snapshot{Pools: s.pools} }}.Placement(ctx, t)
}

func TestAdmitWithNodePools(t *testing.T) {
	partly := poolResult(preflight.VerdictPartlyPullable, armDenied)
	none := poolResult(preflight.VerdictNotPullable, armDenied)
	tests := map[string]struct {
		results   map[string]preflight.Result
		denyOnAny bool
		wantErr   string
		// wantWarning is a fragment of the only warning.
		wantWarning string
	}{
		"an image some pools cannot pull is a warning naming the pool": {
			results:     partly,
			wantWarning: `retail-sample-app-ui:1.2.1 will not pull on node group spot-arm: RepositoryPolicyDenies (statement "new policy", role NodeRoleArm)`,
		},
		"--deny-on-any-pool rejects it": {
			results: partly, denyOnAny: true,
			wantErr: `uses images that will not pull where it can run:`,
		},
		"an image no candidate pool can pull is rejected, the pool named": {
			results: none,
			wantErr: `node group spot-arm (role NodeRoleArm) cannot pull: statement "new policy"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, err := newAdmitter(Options{Checker: &fakeChecker{results: tc.results}, Pools: StaticRoles{armRole}, Mode: ModeDeny, DenyOnAnyPool: tc.denyOnAny})
			if err != nil {
				t.Fatal(err)
			}
			warnings, err := deploymentValidator(a).ValidateCreate(t.Context(), deployment("ui", uiImage))
			if !strings.Contains(errString(err), tc.wantErr) || (tc.wantErr == "") != (err == nil) {
				t.Errorf("error %q, want it to contain %q", errString(err), tc.wantErr)
			}
			if tc.wantWarning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.wantWarning)) {
				t.Errorf("warnings %q, want one containing %q", warnings, tc.wantWarning)
			}
		})
	}
}

// TestAdmitPlacesTheTemplate: the provider sees the pod template's
// namespace and labels, the checker only the candidates, and a template
// no pool can run gets a warning of its own.
func TestAdmitPlacesTheTemplate(t *testing.T) {
	gpu := nodepools.Pool{Name: "gpu", Kind: nodepools.KindManagedNodeGroup, RoleARN: nodeRole,
		Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}}
	batch := nodepools.Pool{Name: "batch", Kind: nodepools.KindFargate, RoleARN: otherRole,
		Fargate: []nodepools.FargateSelector{{Namespace: namespace, Labels: map[string]string{"team": "batch"}}}}
	var templates []nodepools.Template
	checker := &fakeChecker{}
	a, err := newAdmitter(Options{Checker: checker, Pools: snapshotPools{pools: []nodepools.Pool{gpu, batch}, templates: &templates}})
	if err != nil {
		t.Fatal(err)
	}

	d := deployment("jobs", okImage)
	d.Spec.Template.Labels = map[string]string{"team": "batch"}
	if warnings, err := deploymentValidator(a).ValidateCreate(t.Context(), d); err != nil || len(warnings) != 0 {
		t.Fatalf("Fargate-selected template: warnings %q, error %v", warnings, err)
	}
	if len(templates) != 1 || templates[0].Namespace != namespace || templates[0].Labels["team"] != "batch" {
		t.Errorf("provider saw %+v, want the template's namespace and labels", templates)
	}
	if got := checker.roles; len(got) != 1 || len(got[0]) != 1 || got[0][0] != otherRole {
		t.Errorf("checked for roles %q, want only the Fargate profile's", got)
	}

	warnings, err := deploymentValidator(a).ValidateCreate(t.Context(), deployment("web", okImage))
	want := admission.Warnings{`ecr-preflight: no node pool can run this pod template, its pods will stay Pending: node group gpu: taint nvidia.com/gpu=true:NoSchedule is not tolerated; Fargate profile batch: no selector matches namespace retail and the pod's labels`}
	if err != nil || diff(want, warnings) != "" {
		t.Errorf("unschedulable template: error %v, warnings (-want +got):\n%s", err, diff(want, warnings))
	}
}

// TestAdmitBeforeDiscoveryIsReady: discovery that has no snapshot yet
// (say its watches are forbidden) holds an admission for at most a
// quarter of the budget; then its static pools are checked, with the
// placement marked incomplete, instead of the whole budget running out.
func TestAdmitBeforeDiscoveryIsReady(t *testing.T) {
	notReady := Pools{
		Snapshot: func(ctx context.Context) nodepools.Snapshot {
			<-ctx.Done()
			return nodepools.Snapshot{Pools: nodepools.RolePools([]string{nodeRole}), Incomplete: []string{"discovery not ready"}}
		},
		Ready: func() bool { return false },
	}
	var placements []nodepools.Placement
	checker := &placementChecker{seen: &placements}
	a, err := newAdmitter(Options{Checker: checker, Pools: notReady, Mode: ModeDeny, Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := deploymentValidator(a).ValidateCreate(t.Context(), deployment("ui", okImage))
	if err != nil || len(warnings) != 0 {
		t.Errorf("warnings %q, error %v; want the static pool's answer", warnings, err)
	}
	if len(placements) != 1 || len(placements[0].Candidates) != 1 || placements[0].Candidates[0].RoleARN != nodeRole ||
		len(placements[0].Incomplete) == 0 {
		t.Errorf("checked placements %+v, want the static pool, marked incomplete", placements)
	}
}

// placementChecker answers pullable and records each placement.
type placementChecker struct{ seen *[]nodepools.Placement }

func (c *placementChecker) CheckPools(_ context.Context, images []string, pl nodepools.Placement) []preflight.Result {
	*c.seen = append(*c.seen, pl)
	out := make([]preflight.Result, len(images))
	for i, img := range images {
		out[i] = preflight.Result{Image: img, Verdict: preflight.VerdictPullable}
	}
	return out
}

// TestAdmitWarnsOfLifecycleExpiry: an image a lifecycle rule will expire
// pulls today: deny mode admits it, with a warning that says what will
// happen rather than "could not be verified".
func TestAdmitWarnsOfLifecycleExpiry(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	expiring := preflight.Finding{
		Code: preflight.CodeImageExpiring, Severity: preflight.SeverityWarning,
		Lifecycle: &preflight.LifecycleRef{Priority: 2, Action: "expire", At: &at},
		Message:   `lifecycle rule 2 of repository retail-sample-app-ui will expire the image on 2026-12-03 12:00 UTC (30 days since it was pushed)`,
	}
	a, err := newAdmitter(Options{Checker: &fakeChecker{results: poolResult(preflight.VerdictPullable, expiring)}, Pools: StaticRoles{nodeRole}, Mode: ModeDeny})
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := deploymentValidator(a).ValidateCreate(t.Context(), deployment("ui", uiImage))
	if err != nil {
		t.Fatalf("denied: %v", err)
	}
	want := admission.Warnings{`container "ui": ` + uiImage + ` will be removed by a lifecycle rule: ImageExpiring (rule 2, on 2026-12-03)`}
	if diff := diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
