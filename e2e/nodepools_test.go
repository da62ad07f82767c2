package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
)

// testNodePools runs a webhook of its own (deny mode) that discovers its
// node pools from Nodes: two managed node groups whose nodes are EC2
// instances in moto, spot-arm (arm64, the seed's role, which the seed's
// repository policy denies) and general (amd64, a role it does not). A
// Deployment pinned to spot-arm is rejected naming that pool; the same
// Deployment pinned to general is accepted; an amd64-only image (an OCI
// index) pinned to spot-arm is rejected with PlatformNotAvailable.
func (s *suite) testNodePools(t *testing.T) {
	const ns = "node-pools"
	ctx := caseContext(t)
	seed := s.env.Seed
	a := seed.Account
	amdRole, err := a.CreateRole(ctx, "NodeRoleAmd64", []string{awsseed.ReadOnlyPolicyARN}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.PushIndex(ctx, "platform-demo", "amd64-only", awsseed.Platform{OS: "linux", Architecture: "amd64"}); err != nil {
		t.Fatal(err)
	}
	c := s.env.Client(t, nil)
	for _, n := range []struct{ name, group, arch, role string }{
		{"arm-1", "spot-arm", "arm64", awsseed.SeedRoleName},
		{"amd-1", "general", "amd64", "NodeRoleAmd64"},
	} {
		providerID, err := a.RunNode(ctx, "us-west-2a", n.role)
		if err != nil {
			t.Fatal(err)
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{
				"kubernetes.io/arch": n.arch, "kubernetes.io/os": "linux", "eks.amazonaws.com/nodegroup": n.group,
			}},
			Spec: corev1.NodeSpec{ProviderID: providerID},
		}
		if err := c.Create(ctx, node); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(ctx, node) })
	}

	s.env.CreateNamespace(t, ns, "", map[string]string{instanceLabel: ns})
	wh := s.env.Serve(t, harness.ServeOptions{Mode: "deny", NoSeedRole: true, Args: []string{"--platform-check=index"}})
	s.env.Register(t, harness.Hook{
		Name:              "ecr-preflight-" + ns,
		Webhook:           wh,
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{instanceLabel: ns}},
	})
	if err := s.env.AwaitMode(ctx, ns, "deny"); err != nil {
		t.Fatal(err)
	}
	if pools := s.pools(t); !strings.Contains(pools, "spot-arm") || !strings.Contains(pools, amdRole) {
		t.Fatalf("ecr-preflight pools does not show both node groups:\n%s", pools)
	}

	pinned := func(name, image, arch string) error {
		d := harness.Deployment(ns, name, image)
		d.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/arch": arch}
		return c.Create(ctx, d)
	}
	err = pinned("ui-arm", seed.Image, "arm64")
	if err == nil {
		t.Fatal("the seed pinned to the arm64 node group was admitted")
	}
	wantAll(t, "the rejection", err.Error(), "node group spot-arm", "RepositoryPolicyDenies", `statement "new policy"`, seed.RoleARN)
	if strings.Contains(err.Error(), "general") {
		t.Errorf("the rejection names the amd64 group, which the pod cannot run on:\n%v", err)
	}

	if err := pinned("ui-amd", seed.Image, "amd64"); err != nil {
		t.Errorf("the seed pinned to the amd64 node group (role %s, not denied): %v", amdRole, err)
	}

	err = pinned("amd64-only-on-arm", a.Image("platform-demo", "amd64-only"), "arm64")
	if err == nil {
		t.Fatal("an amd64-only image pinned to the arm64 node group was admitted")
	}
	wantAll(t, "the rejection", err.Error(), "PlatformNotAvailable", "node group spot-arm", "linux/arm64", "linux/amd64")
}

// pools runs `ecr-preflight pools` against the suite's cluster and moto.
func (s *suite) pools(t *testing.T) string {
	t.Helper()
	res := s.env.Run(caseContext(t), "pools", "--kubeconfig", s.env.Kubeconfig)
	if res.Err != nil {
		t.Fatalf("ecr-preflight pools: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	return res.Stdout
}
