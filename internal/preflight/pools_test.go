package preflight

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

const armRole = "arn:aws:iam::1234567890:role/NodeRoleArm"

var (
	amd64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = ocispec.Platform{OS: "linux", Architecture: "arm64"}
)

// fakePlatforms answers every image with the same platforms, or err.
type fakePlatforms struct {
	image imageplatform.Image
	err   error
	calls atomic.Int32
}

func (f *fakePlatforms) Platforms(context.Context, awsclient.Repository, string, string) (imageplatform.Image, error) {
	f.calls.Add(1)
	return f.image, f.err
}

// poolLookups is the seed with a second, arm64 node role that the
// repository policy does not deny.
func poolLookups() *fakeLookups {
	f := seedLookups()
	f.roles[armRole] = awsclient.RolePolicies{RoleARN: armRole,
		Attached: []awsclient.Policy{{Name: "AmazonEC2ContainerRegistryReadOnly", Document: readOnly}}}
	return f
}

var (
	amdGroup = nodepools.Pool{Name: "general", Kind: nodepools.KindManagedNodeGroup, RoleARN: seedRole, Platforms: []ocispec.Platform{amd64}}
	armGroup = nodepools.Pool{Name: "spot-arm", Kind: nodepools.KindManagedNodeGroup, RoleARN: armRole, Platforms: []ocispec.Platform{arm64}}
)

func TestCheckPools(t *testing.T) {
	amdOnly := imageplatform.Image{Platforms: []ocispec.Platform{amd64}, Index: true, Known: true}
	tests := map[string]struct {
		lookups   func() *fakeLookups
		platforms *fakePlatforms
		pl        nodepools.Placement
		image     string
		verdict   Verdict
		pools     []Verdict
		codes     []Code
		// message is a fragment of the first finding's message.
		message string
	}{
		"a pool whose role is denied and one that may pull: partly pullable, the denied pool named": {
			lookups: poolLookups, pl: nodepools.Placement{Candidates: []nodepools.Pool{amdGroup, armGroup}},
			image: seedImage, verdict: VerdictPartlyPullable, pools: []Verdict{VerdictNotPullable, VerdictPullable},
			codes:   []Code{CodeRepositoryPolicyDenies},
			message: `node group general (role EksNodeGroupRole) cannot pull: statement "new policy"`,
		},
		"the only candidate denied: not pullable": {
			lookups: poolLookups, pl: nodepools.Placement{Candidates: []nodepools.Pool{amdGroup}},
			image: seedImage, verdict: VerdictNotPullable, pools: []Verdict{VerdictNotPullable},
			codes: []Code{CodeRepositoryPolicyDenies},
		},
		"every candidate denied but discovery incomplete: unknown": {
			lookups: poolLookups, pl: nodepools.Placement{Candidates: []nodepools.Pool{amdGroup}, Incomplete: []string{"eks node groups: AccessDenied"}},
			image: seedImage, verdict: VerdictUnknown, pools: []Verdict{VerdictNotPullable},
			codes: []Code{CodeRepositoryPolicyDenies, CodeLookupFailed},
		},
		"a missing image fails on every pool, discovery incomplete or not": {
			lookups: poolLookups, pl: nodepools.Placement{Candidates: []nodepools.Pool{armGroup}, Incomplete: []string{"nodes"}},
			image: strings.Replace(seedImage, "1.2.1", "9.9.9", 1), verdict: VerdictNotPullable, pools: []Verdict{VerdictNotPullable},
			codes: []Code{CodeImageNotFound},
		},
		"an amd64-only image on the arm64 pool: PlatformNotAvailable": {
			lookups: poolLookups, platforms: &fakePlatforms{image: amdOnly},
			pl:    nodepools.Placement{Candidates: []nodepools.Pool{armGroup}},
			image: seedImage, verdict: VerdictNotPullable, pools: []Verdict{VerdictNotPullable},
			codes:   []Code{CodePlatformNotAvailable},
			message: "node group spot-arm runs linux/arm64, and the image has no variant for it (it has linux/amd64)",
		},
		"a pool running both platforms, the image one: a warning for that pool": {
			lookups: poolLookups, platforms: &fakePlatforms{image: amdOnly},
			pl: nodepools.Placement{Candidates: []nodepools.Pool{{Name: "default", Kind: nodepools.KindKarpenter, RoleARN: armRole,
				Platforms: []ocispec.Platform{amd64, arm64}}}},
			image: seedImage, verdict: VerdictUnknown, pools: []Verdict{VerdictUnknown},
			codes:   []Code{CodePlatformNotAvailable},
			message: "pods placed on linux/arm64 nodes of Karpenter NodePool default will not start",
		},
		"a manifest that cannot be read is a warning, never a rejection": {
			lookups: poolLookups, platforms: &fakePlatforms{err: errors.New("boom")},
			pl:    nodepools.Placement{Candidates: []nodepools.Pool{armGroup}},
			image: seedImage, verdict: VerdictUnknown, pools: []Verdict{VerdictUnknown},
			codes: []Code{CodeLookupFailed},
		},
		"a single-platform image whose platform is not known is not judged": {
			lookups: poolLookups, platforms: &fakePlatforms{image: imageplatform.Image{}},
			pl:    nodepools.Placement{Candidates: []nodepools.Pool{armGroup}},
			image: seedImage, verdict: VerdictPullable, pools: []Verdict{VerdictPullable},
		},
		"bare --node-role-arn pools keep the engine's words": {
			lookups: poolLookups, pl: nodepools.Placement{Candidates: nodepools.RolePools([]string{seedRole})},
			image: seedImage, verdict: VerdictNotPullable, pools: []Verdict{VerdictNotPullable},
			codes:   []Code{CodeRepositoryPolicyDenies},
			message: `statement "new policy" of the repository policy of retail-sample-app-ui denies`,
		},
		"a pool whose role is not known is unknown": {
			lookups: poolLookups, pl: nodepools.Placement{Candidates: []nodepools.Pool{{Name: "legacy", Kind: nodepools.KindSelfManaged}}},
			image: seedImage, verdict: VerdictUnknown, pools: []Verdict{VerdictUnknown},
			codes: []Code{CodeLookupFailed},
		},
		"one pool denied and one whose role is unknown: unknown, not partly pullable": {
			lookups: poolLookups, pl: nodepools.Placement{Candidates: []nodepools.Pool{amdGroup, {Name: "legacy", Kind: nodepools.KindSelfManaged}}},
			image: seedImage, verdict: VerdictUnknown, pools: []Verdict{VerdictNotPullable, VerdictUnknown},
			codes: []Code{CodeRepositoryPolicyDenies, CodeLookupFailed},
		},
		"no candidate while discovery is not ready: unknown": {
			lookups: poolLookups, pl: nodepools.Placement{Incomplete: []string{"discovery not ready"}},
			image: seedImage, verdict: VerdictUnknown, codes: []Code{CodeLookupFailed},
			message: "node pool discovery is incomplete (1 problem)",
		},
		"no candidate pool: existence only": {
			lookups: poolLookups, pl: nodepools.Placement{},
			image: seedImage, verdict: VerdictPullable,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := Options{Lookups: tc.lookups()}
			if tc.platforms != nil {
				o.Platforms = tc.platforms
			}
			e, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			r := e.CheckPools(t.Context(), []string{tc.image}, tc.pl)[0]
			if r.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s (findings %+v)", r.Verdict, tc.verdict, r.Findings)
			}
			var pools []Verdict
			for _, p := range r.Pools {
				pools = append(pools, p.Verdict)
			}
			if !slices.Equal(pools, tc.pools) {
				t.Errorf("pool verdicts %v, want %v", pools, tc.pools)
			}
			if got := codes(r); !slices.Equal(got, tc.codes) {
				t.Errorf("codes %v, want %v", got, tc.codes)
			}
			if tc.message != "" && (len(r.Findings) == 0 || !strings.Contains(r.Findings[0].Message, tc.message)) {
				t.Errorf("first message %+v, want it to contain %q", r.Findings, tc.message)
			}
		})
	}
}

// TestCheckPoolsNamesEveryPoolOfADeniedRole: two pools sharing a denied
// role are each named, and each finding carries its pool.
func TestCheckPoolsNamesEveryPoolOfADeniedRole(t *testing.T) {
	e := newTestEngine(t, poolLookups())
	other := amdGroup
	other.Name = "general-b"
	r := e.CheckPools(t.Context(), []string{seedImage}, nodepools.Placement{Candidates: []nodepools.Pool{amdGroup, other}})[0]
	var named []string
	for _, f := range r.Findings {
		if f.Pool == nil || f.Pool.Kind != string(nodepools.KindManagedNodeGroup) {
			t.Fatalf("finding %+v has no pool", f)
		}
		named = append(named, f.Pool.Name)
	}
	if !slices.Equal(named, []string{"general", "general-b"}) {
		t.Errorf("findings name pools %v", named)
	}
}

// TestCheckPoolsCachesPullableAnswers: a pullable answer for a placement
// is reused without a lookup, and CachedPools finds it; another placement
// is not served from it.
func TestCheckPoolsCachesPullableAnswers(t *testing.T) {
	l := poolLookups()
	plat := &fakePlatforms{image: imageplatform.Image{Platforms: []ocispec.Platform{arm64}, Index: true, Known: true}}
	e, err := New(Options{Lookups: l, Platforms: plat})
	if err != nil {
		t.Fatal(err)
	}
	pl := nodepools.Placement{Candidates: []nodepools.Pool{armGroup}}
	if _, ok := e.CachedPools([]string{seedImage}, pl); ok {
		t.Fatal("CachedPools answered before any check")
	}
	if r := e.CheckPools(t.Context(), []string{seedImage}, pl)[0]; r.Verdict != VerdictPullable {
		t.Fatalf("verdict %s, want pullable: %+v", r.Verdict, r.Findings)
	}
	calls, platCalls := l.calls.Load(), plat.calls.Load()
	if r := e.CheckPools(t.Context(), []string{seedImage}, pl)[0]; r.Verdict != VerdictPullable {
		t.Fatalf("second verdict %s", r.Verdict)
	}
	if l.calls.Load() != calls || plat.calls.Load() != platCalls {
		t.Error("a cached pullable answer made lookups")
	}
	if r, ok := e.CachedPools([]string{seedImage}, pl); !ok || r[0].Verdict != VerdictPullable {
		t.Errorf("CachedPools = %v, %v", r, ok)
	}
	if _, ok := e.CachedPools([]string{seedImage}, nodepools.Placement{Candidates: []nodepools.Pool{amdGroup}}); ok {
		t.Error("another placement was answered from this one's cache")
	}
}
