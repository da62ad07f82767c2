package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/certs/certstest"
	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools/discover"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/loopback"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

// chartSuite is TestChart's shared state: one API server (RBAC on, as
// envtest runs it), one moto with the seed, the binary, and helm.
type chartSuite struct {
	env         *harness.Env
	helm        *harness.Helm
	kubeVersion string
	// release is the README's installation, once installed.
	release *chartRelease
	// dir outlives the cases: the release's files (certificates,
	// kubeconfig) serve several of them.
	dir string
}

// TestChart installs charts/ecr-preflight for real. The chart is linted,
// rendered in each certificate mode and with every value set, and each
// object is created with server-side dry-run; then the README's
// `helm install` runs against the API server, `ecr-preflight serve` runs
// exactly as the chart's Deployment runs it, with the chart's RBAC
// (impersonating its ServiceAccount), issues its certificate into the
// chart's Secret and injects the CA, and the seed's Deployment is warned
// about through the chart's own ValidatingWebhookConfiguration; `helm
// upgrade` to deny mode rejects it, and `helm uninstall` leaves nothing.
func TestChart(t *testing.T) {
	start := time.Now()
	env := harness.Start(t, harness.Options{})
	s := &chartSuite{env: env, helm: harness.NewHelm(t, env.Kubeconfig), kubeVersion: serverVersion(t, env), dir: t.TempDir()}
	installStubCRDs(t, env)
	t.Logf("environment ready in %s (Kubernetes %s)", time.Since(start).Round(time.Millisecond), s.kubeVersion)

	t.Run("helm lint --strict passes with every values file in ci/", s.testLint)
	t.Run("a misspelt value fails helm template and helm install with a schema error naming the key", s.testTypo)
	t.Run("values the webhook cannot work with fail the render, naming the value", s.testBadCombinations)
	t.Run("every serve flag is a chart value, and the maximal values parse as flags", s.testEveryServeFlag)
	t.Run("node pools: the values become serve's flags, a ConfigMap serve loads, and RBAC only with discovery", s.testNodePools)
	for _, r := range chartRenders() {
		t.Run("server-side dry-run of every object: "+r.name, func(t *testing.T) { s.testDryRun(t, r) })
	}
	t.Run("the pods meet the restricted Pod Security Standard", s.testRestricted)
	if !t.Run("README install: serve with the chart's RBAC issues its certificate, and the seed is warned about through the chart's webhook", s.testInstall) {
		return
	}
	t.Run("helm upgrade to deny mode keeps the certificate and rejects the seed", s.testUpgrade)
	t.Run("helm uninstall leaves nothing behind", s.testUninstall)
}

// ---- lint, schema, flags ----

func (s *chartSuite) testLint(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(s.helm.Dir, chartDir, "ci", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/ci: %v", chartDir, err)
	}
	for _, f := range files {
		res := s.helm.Run(caseContext(t), "lint", "--strict", chartDir, "-f", f, "--kube-version", s.kubeVersion)
		if res.Err != nil || !strings.Contains(res.Stdout, "0 chart(s) failed") {
			t.Errorf("%s: %v\n%s", res.Command, res.Err, res.Output)
		}
	}
}

func (s *chartSuite) testTypo(t *testing.T) {
	ctx := caseContext(t)
	res := s.helm.Run(ctx, "template", "typo", chartDir, "--kube-version", s.kubeVersion,
		"--set", "nodeRoleArns[0]="+s.env.Seed.RoleARN, "--set", "webhook.timeoutSecond=3")
	if res.Err == nil {
		t.Errorf("%s succeeded, want a schema error", res.Command)
	}
	wantAll(t, res.Command+" stderr", res.Stderr, "schema", "timeoutSecond")

	// A nested typo in a values file, through helm install: nothing is
	// installed.
	values := filepath.Join(t.TempDir(), "typo.yaml")
	writeFile(t, values, "nodeRoleArns: ["+s.env.Seed.RoleARN+"]\ncertificates:\n  mod: provided\n")
	s.env.CreateNamespace(t, "chart-typo", "", nil)
	res = s.helm.Run(ctx, "install", "typo", chartDir, "-n", "chart-typo", "-f", values)
	if res.Err == nil {
		t.Fatalf("%s succeeded, want a schema error", res.Command)
	}
	wantAll(t, res.Command+" stderr", res.Stderr, "schema", "/certificates", "'mod'")
	if list := s.helm.Run(ctx, "list", "-n", "chart-typo", "-q"); list.Err != nil || strings.TrimSpace(list.Stdout) != "" {
		t.Errorf("%s after the failed install: %q (%v), want no release", list.Command, list.Stdout, list.Err)
	}
}

func (s *chartSuite) testBadCombinations(t *testing.T) {
	role := "nodeRoleArns[0]=" + s.env.Seed.RoleARN
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"nodePools.discoverNodes=false"}, "node pools: nothing says which IAM roles pull the images"},
		{[]string{"nodePools.static[0].name=gpu", "nodePools.static[0].role=" + s.env.Seed.RoleARN,
			"nodePools.static[1].name=gpu", "nodePools.static[1].role=" + s.env.Seed.RoleARN}, `nodePools.static[1]: name "gpu" is also the name of nodePools.static[0]`},
		{[]string{"nodePools.static[0].name=arm", "nodePools.static[0].role=" + s.env.Seed.RoleARN, "nodePools.static[0].platforms[0]=arm64"}, "/nodePools/static/0/platforms/0"},
		{[]string{"nodePools.refreshInterval=0s"}, "/nodePools/refreshInterval"},
		{[]string{"nodePools.platformCheck=manifest"}, "/nodePools/platformCheck"},
		{[]string{role, "admission.timeoutSeconds=5"}, "admission.timeoutSeconds (5) must be below webhook.timeoutSeconds (5)"},
		{[]string{role, "terminationGracePeriodSeconds=9"}, "terminationGracePeriodSeconds (9) must exceed"},
		{[]string{role, "certificates.mode=provided"}, "certificates.provided.secretName is required"},
		{[]string{role, "certificates.mode=provided", "certificates.provided.secretName=tls"}, "certificates.provided.caBundle (PEM) is required"},
		{[]string{role, "webhook.url=https://127.0.0.1:8443"}, "webhook.url"},
		{[]string{role, "webhook.kinds.deployments=false", "webhook.kinds.statefulSets=false", "webhook.kinds.daemonSets=false",
			"webhook.kinds.replicaSets=false", "webhook.kinds.jobs=false", "webhook.kinds.cronJobs=false", "webhook.kinds.pods=false"}, "every kind is off"},
	} {
		args := []string{"template", "bad", chartDir, "--kube-version", s.kubeVersion}
		for _, kv := range c.set {
			args = append(args, "--set", kv)
		}
		res := s.helm.Run(caseContext(t), args...)
		if res.Err == nil {
			t.Errorf("%s succeeded, want an error saying %q", res.Command, c.want)
			continue
		}
		wantAll(t, res.Command+" stderr", res.Stderr, c.want)
	}
}

// chartFlagsNotValues are the serve flags a chart cannot or need not set.
var chartFlagsNotValues = map[string]string{
	"kubeconfig":            "in a pod the in-cluster configuration is used",
	"standalone":            "the chart's webhook always reads namespace labels through the API",
	"cert-secret-namespace": "defaults to $POD_NAMESPACE, which the Deployment sets from the downward API",
	"help":                  "",
}

func (s *chartSuite) testEveryServeFlag(t *testing.T) {
	ctx := caseContext(t)
	help, err := exec.CommandContext(ctx, s.env.Binary, "serve", "--help").Output()
	if err != nil {
		t.Fatalf("serve --help: %v", err)
	}
	flagRe := regexp.MustCompile(`(?m)^\s+(?:-[a-z], )?--([a-z0-9-]+)`)
	var flags []string
	for _, m := range flagRe.FindAllStringSubmatch(string(help), -1) {
		flags = append(flags, m[1])
	}
	if len(flags) < 30 {
		t.Fatalf("found only %d flags in serve --help:\n%s", len(flags), help)
	}

	rendered := map[string]bool{}
	var maximalArgs []string
	for _, r := range chartRenders() {
		dep := deploymentOf(t, s.render(t, "flags", "chart-flags", r.args...))
		args := dep.Spec.Template.Spec.Containers[0].Args
		if r.name == "maximal values" {
			maximalArgs = args
		}
		for _, a := range args[1:] {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			rendered[name] = true
		}
	}
	for _, f := range flags {
		if _, skip := chartFlagsNotValues[f]; skip {
			continue
		}
		if !rendered[f] {
			t.Errorf("serve --%s is set by no chart value (or add it to chartFlagsNotValues with the reason)", f)
		}
	}
	for f := range rendered {
		if !slices.Contains(flags, f) {
			t.Errorf("the chart passes --%s, which serve does not have", f)
		}
	}
	// Every rendered flag and value parses (cobra parses all flags before
	// it looks at --help).
	out, err := exec.CommandContext(ctx, s.env.Binary, append(slices.Clone(maximalArgs), "--help")...).CombinedOutput()
	if err != nil {
		t.Errorf("serve with the maximal values' arguments does not parse: %v\n%s", err, out)
	}
}

// ---- node pools ----

// testNodePools renders the node pool values three ways: the defaults
// (discovery only), EKS without discovery, and the maximal values' static
// pools, which serve's own loader must read back from the ConfigMap as
// they were written in the values.
func (s *chartSuite) testNodePools(t *testing.T) {
	const ns = "chart-pools"
	ci := filepath.Join(chartDir, "ci")

	objs := s.render(t, "pools", ns, "-f", filepath.Join(ci, "default-values.yaml"))
	args := deploymentOf(t, objs).Spec.Template.Spec.Containers[0].Args
	wantArgs(t, "defaults", args, map[string]string{"discover-nodes": "true", "node-pools-refresh": "30s", "platform-check": "index"},
		"node-role-arn", "node-pools-config", "cluster-name", "deny-on-any-pool")
	if n := len(find(objs, "ConfigMap")); n != 0 {
		t.Errorf("defaults: %d ConfigMaps, want none without nodePools.static", n)
	}
	checkDiscoveryRBAC(t, "defaults", objs, true)

	objs = s.render(t, "pools", ns, "--set", "nodePools.discoverNodes=false", "--set", "nodePools.clusterName=prod")
	args = deploymentOf(t, objs).Spec.Template.Spec.Containers[0].Args
	wantArgs(t, "EKS only", args, map[string]string{"discover-nodes": "false", "cluster-name": "prod"}, "node-pools-config")
	checkDiscoveryRBAC(t, "EKS only", objs, false)

	maximal := filepath.Join(ci, "maximal-values.yaml")
	objs = s.render(t, "pools", ns, "-f", maximal)
	dep := deploymentOf(t, objs)
	args = dep.Spec.Template.Spec.Containers[0].Args
	wantArgs(t, "maximal", args, map[string]string{"deny-on-any-pool": "", "discover-nodes": "false", "platform-check": "full", "node-pools-refresh": "2m30s"})
	checkDiscoveryRBAC(t, "maximal", objs, false)
	file := staticPoolsFile(t, dep, convert[corev1.ConfigMap](t, one(t, objs, "ConfigMap")))
	pools, err := discover.LoadStaticPools(file)
	if err != nil {
		t.Fatalf("serve cannot load the chart's static pools: %v", err)
	}
	var values struct {
		NodePools struct {
			Static []struct {
				Name, Role       string
				Platforms        []string
				Labels           map[string]string
				Taints           []corev1.Taint
				FargateSelectors []nodepools.FargateSelector
			}
		}
	}
	if err := yaml.Unmarshal(repoFile(t, maximal), &values); err != nil {
		t.Fatal(err)
	}
	if len(pools) != len(values.NodePools.Static) || len(pools) < 2 {
		t.Fatalf("serve loads %d static pools, the values have %d (want at least 2)", len(pools), len(values.NodePools.Static))
	}
	for i, v := range values.NodePools.Static {
		p := pools[i]
		if p.Name != v.Name || p.Kind != nodepools.KindStatic || p.RoleARN != v.Role || (len(p.Platforms) > 0) != (len(v.Platforms) > 0) ||
			!maps.Equal(p.Labels, v.Labels) || !reflect.DeepEqual(p.Taints, v.Taints) || !reflect.DeepEqual(p.Fargate, v.FargateSelectors) {
			t.Errorf("static pool %d: serve loads %+v from the values %+v", i, p, v)
		}
	}

	// serve reads the file once: a change of the pools changes the pod
	// template, so the pods roll.
	changed := deploymentOf(t, s.render(t, "pools", ns, "-f", maximal, "--set", "nodePools.static[0].role=arn:aws:iam::111122223333:role/Other"))
	before, after := dep.Spec.Template.Annotations["checksum/node-pools"], changed.Spec.Template.Annotations["checksum/node-pools"]
	if before == "" || before == after {
		t.Errorf("checksum/node-pools is %q, then %q after a change of nodePools.static: want a checksum that changes", before, after)
	}
}

// wantArgs checks serve flags: each of want with its value ("" for a bare
// boolean), and none of absent.
func wantArgs(t *testing.T, what string, args []string, want map[string]string, absent ...string) {
	t.Helper()
	for flag, value := range want {
		if got, ok := argValue(args, flag); !ok || got != value {
			t.Errorf("%s: --%s is %q (set: %v), want %q", what, flag, got, ok, value)
		}
	}
	for _, flag := range absent {
		if got, ok := argValue(args, flag); ok {
			t.Errorf("%s: --%s=%s is passed, want it absent", what, flag, got)
		}
	}
}

// staticPoolsFile writes the ConfigMap's pools file to a temporary file,
// after checking that the Deployment mounts it where --node-pools-config
// points.
func staticPoolsFile(t *testing.T, dep *appsv1.Deployment, cm *corev1.ConfigMap) string {
	t.Helper()
	keys := slices.Collect(maps.Keys(cm.Data))
	if len(keys) != 1 {
		t.Fatalf("ConfigMap %s has keys %v, want one pools file", cm.Name, keys)
	}
	key := keys[0]
	pod := dep.Spec.Template.Spec
	var volume string
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
			volume = v.Name
		}
	}
	var mountPath string
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.Name == volume && m.ReadOnly {
			mountPath = m.MountPath
		}
	}
	config, _ := argValue(pod.Containers[0].Args, "node-pools-config")
	if volume == "" || mountPath == "" || config != mountPath+"/"+key {
		t.Fatalf("ConfigMap %s: volume %q mounted read-only at %q, --node-pools-config=%s: want the flag to name its key %s there",
			cm.Name, volume, mountPath, config, key)
	}
	path := filepath.Join(t.TempDir(), key)
	writeFile(t, path, cm.Data[key])
	return path
}

// checkDiscoveryRBAC: with node discovery the ClusterRole reads Nodes,
// Karpenter NodePools and EC2NodeClasses (get, list, watch, of any name);
// without it, none of them.
func checkDiscoveryRBAC(t *testing.T, what string, objs []*unstructured.Unstructured, discovery bool) {
	t.Helper()
	role := convert[rbacv1.ClusterRole](t, one(t, objs, "ClusterRole"))
	want := map[string]bool{"/nodes": false, "karpenter.sh/nodepools": false, "karpenter.k8s.aws/ec2nodeclasses": false}
	for _, rule := range role.Rules {
		for _, g := range rule.APIGroups {
			for _, r := range rule.Resources {
				if _, ok := want[g+"/"+r]; !ok {
					continue
				}
				want[g+"/"+r] = true
				if !discovery {
					t.Errorf("%s: the ClusterRole grants %v on %s/%s without nodePools.discoverNodes", what, rule.Verbs, g, r)
				}
				if !slices.Equal(rule.Verbs, []string{"get", "list", "watch"}) || len(rule.ResourceNames) != 0 {
					t.Errorf("%s: the ClusterRole grants %v on %s/%s (names %v), want get, list, watch", what, rule.Verbs, g, r, rule.ResourceNames)
				}
			}
		}
	}
	for res, granted := range want {
		if discovery && !granted {
			t.Errorf("%s: the ClusterRole does not grant %s, which node pool discovery reads", what, res)
		}
	}
}

// ---- rendering and dry-run ----

// chartRender is one way of rendering the chart.
type chartRender struct {
	name string
	mode string // certificates.mode
	args []string
}

func chartRenders() []chartRender {
	ci := func(name string) string { return filepath.Join(chartDir, "ci", name) }
	return []chartRender{
		{name: "selfManaged (default)", mode: "selfManaged", args: []string{"-f", ci("default-values.yaml")}},
		{name: "certManager", mode: "certManager", args: []string{"-f", ci("certmanager-values.yaml")}},
		{name: "provided", mode: "provided", args: []string{"-f", ci("default-values.yaml"),
			"--set", "certificates.mode=provided", "--set", "certificates.provided.secretName=my-webhook-tls",
			"--set-file", "certificates.provided.caBundle=" + providedCA()}},
		{name: "maximal values", mode: "selfManaged", args: []string{"-f", ci("maximal-values.yaml")}},
	}
}

var providedCAFile string

// providedCA is a CA certificate file for the provided mode, made once.
func providedCA() string {
	if providedCAFile != "" {
		return providedCAFile
	}
	dir, err := os.MkdirTemp("", "ecr-preflight-chart-ca-")
	if err != nil {
		panic(err)
	}
	if _, err := certstest.Write(dir, "my-webhook-ca"); err != nil {
		panic(err)
	}
	providedCAFile = filepath.Join(dir, "tls.crt")
	return providedCAFile
}

// render runs helm template and decodes every object.
func (s *chartSuite) render(t *testing.T, release, namespace string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	full := append([]string{"template", release, chartDir, "-n", namespace, "--kube-version", s.kubeVersion}, args...)
	res := s.helm.Run(caseContext(t), full...)
	if res.Err != nil {
		t.Fatalf("%s: %v\n%s", res.Command, res.Err, res.Stderr)
	}
	return decodeObjects(t, res.Stdout)
}

func decodeObjects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decoding the rendered manifest: %v\n%s", err, manifest)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func one(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	found := find(objs, kind)
	if len(found) != 1 {
		t.Fatalf("the chart rendered %d %s objects, want 1", len(found), kind)
	}
	return found[0]
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("converting %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

func deploymentOf(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	return convert[appsv1.Deployment](t, one(t, objs, "Deployment"))
}

func webhooksOf(t *testing.T, objs []*unstructured.Unstructured) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	return convert[admissionregistrationv1.ValidatingWebhookConfiguration](t, one(t, objs, "ValidatingWebhookConfiguration"))
}

// argValue is the value of --name= in args ("" and false if absent).
func argValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "", true
		}
	}
	return "", false
}

// dryRun creates every object with server-side dry-run: the API server
// validates it fully (schemas, CEL of matchConditions, RBAC rules, the
// stub CRDs' kinds) and stores nothing.
func (s *chartSuite) dryRun(t *testing.T, objs []*unstructured.Unstructured, warnings *harness.Warnings) {
	t.Helper()
	c := s.env.Client(t, warnings)
	for _, o := range objs {
		if err := c.Create(caseContext(t), o.DeepCopy(), client.DryRunAll); err != nil {
			t.Errorf("server-side dry-run of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

func (s *chartSuite) testDryRun(t *testing.T, r chartRender) {
	ns := "chart-" + strings.ToLower(strings.Fields(r.name)[0])
	s.env.CreateNamespace(t, ns, "", nil)
	objs := s.render(t, "dryrun", ns, r.args...)
	s.dryRun(t, objs, nil)

	dep := deploymentOf(t, objs)
	vwc := webhooksOf(t, objs)
	pod := dep.Spec.Template.Spec
	args := pod.Containers[0].Args
	_, rotation := argValue(args, "cert-rotation")
	var certVolume *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "certs" {
			certVolume = &pod.Volumes[i]
		}
	}
	if certVolume == nil {
		t.Fatal("the Deployment has no certs volume")
	}
	switch r.mode {
	case "selfManaged":
		// The process fills the chart's Secret and holds the chart's Lease,
		// named as serve derives them; the certificate goes to an emptyDir.
		secret, _ := argValue(args, "cert-secret-name")
		vwcName, _ := argValue(args, "webhook-configuration-name")
		if !rotation || secret == "" || vwcName != vwc.Name || certVolume.EmptyDir == nil {
			t.Errorf("selfManaged: args %q, volume %+v: want --cert-rotation, --cert-secret-name, --webhook-configuration-name=%s and an emptyDir", args, certVolume, vwc.Name)
		}
		if got := one(t, objs, "Secret").GetName(); got != secret {
			t.Errorf("the chart's Secret is %s, serve writes %s", got, secret)
		}
		if got := one(t, objs, "Lease").GetName(); got != secret+"-rotation" {
			t.Errorf("the chart's Lease is %s, serve elects with %s-rotation", got, secret)
		}
		role := convert[struct {
			Rules []struct {
				Resources, ResourceNames, Verbs []string
			}
		}](t, one(t, objs, "Role"))
		for _, rule := range role.Rules {
			if slices.Contains(rule.Verbs, "create") && !slices.Contains(rule.Resources, "events") {
				t.Errorf("the Role may create %v: the chart creates the Secret and the Lease itself", rule.Resources)
			}
			if rule.Resources[0] != "events" && len(rule.ResourceNames) != 1 {
				t.Errorf("the Role's rule on %v is not limited to one name: %v", rule.Resources, rule.ResourceNames)
			}
		}
		for _, wh := range vwc.Webhooks {
			if len(wh.ClientConfig.CABundle) != 0 {
				t.Errorf("webhook %s has a caBundle in selfManaged mode; the process injects it", wh.Name)
			}
		}
	case "certManager":
		// The two cert-manager objects were created against stub CRDs
		// (kind and scope only): their shape is checked here.
		cert := one(t, objs, "Certificate")
		issuer := one(t, objs, "Issuer")
		secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
		dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		issuerRef, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "issuerRef")
		_, selfSigned, _ := unstructured.NestedMap(issuer.Object, "spec", "selfSigned")
		svc := one(t, objs, "Service").GetName()
		if rotation || certVolume.Secret == nil || certVolume.Secret.SecretName != secretName {
			t.Errorf("certManager: args %q, volume %+v: want no --cert-rotation and the Certificate's Secret %s mounted", args, certVolume, secretName)
		}
		if !slices.Contains(dnsNames, svc+"."+ns+".svc") {
			t.Errorf("Certificate dnsNames %v lack the Service's %s.%s.svc", dnsNames, svc, ns)
		}
		if issuerRef["name"] != issuer.GetName() || issuerRef["kind"] != "Issuer" || !selfSigned {
			t.Errorf("Certificate issuerRef %v, Issuer %s (selfSigned %v): want the chart's self-signed Issuer", issuerRef, issuer.GetName(), selfSigned)
		}
		if got, want := vwc.Annotations["cert-manager.io/inject-ca-from"], ns+"/"+cert.GetName(); got != want {
			t.Errorf("cert-manager.io/inject-ca-from = %q, want %q", got, want)
		}
		if len(find(objs, "Role")) != 0 || len(find(objs, "Secret")) != 0 {
			t.Error("certManager mode renders a Role or a Secret: the process needs no Secret access")
		}
	case "provided":
		ca, err := os.ReadFile(providedCA())
		if err != nil {
			t.Fatal(err)
		}
		if rotation || certVolume.Secret == nil || certVolume.Secret.SecretName != "my-webhook-tls" {
			t.Errorf("provided: args %q, volume %+v: want the user's Secret my-webhook-tls mounted", args, certVolume)
		}
		for _, wh := range vwc.Webhooks {
			if !bytes.Equal(wh.ClientConfig.CABundle, ca) {
				t.Errorf("webhook %s caBundle is not the CA given", wh.Name)
			}
		}
	}
	if r.name == "maximal values" {
		for _, kind := range []string{"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget"} {
			one(t, objs, kind)
		}
		if !pod.HostNetwork || pod.PriorityClassName != "system-cluster-critical" {
			t.Errorf("maximal: hostNetwork %v, priorityClassName %q", pod.HostNetwork, pod.PriorityClassName)
		}
		for _, wh := range vwc.Webhooks {
			if wh.ClientConfig.URL == nil || !strings.HasPrefix(*wh.ClientConfig.URL, "https://ecr-preflight.example.com:8443/validate-") {
				t.Errorf("maximal: webhook %s clientConfig %+v, want webhook.url and the kind's path", wh.Name, wh.ClientConfig)
			}
		}
		if names := argValues(args, "cert-dns-name"); !slices.Contains(names, "ecr-preflight.example.com") {
			t.Errorf("maximal: --cert-dns-name %v lacks the host of webhook.url", names)
		}
	} else {
		s.checkWebhooks(t, vwc, ns)
		s.checkPodDefaults(t, dep)
	}
}

func argValues(args []string, name string) []string {
	var out []string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// checkWebhooks: the defaults the issue sets for the webhook
// configuration, and the paths the binary serves.
func (s *chartSuite) checkWebhooks(t *testing.T, vwc *admissionregistrationv1.ValidatingWebhookConfiguration, ns string) {
	t.Helper()
	paths := map[string]string{}
	for _, wh := range vwc.Webhooks {
		if wh.ClientConfig.Service == nil || wh.ClientConfig.Service.Path == nil {
			t.Errorf("webhook %s: no Service path", wh.Name)
			continue
		}
		paths[wh.Name] = *wh.ClientConfig.Service.Path
		ok := *wh.FailurePolicy == admissionregistrationv1.Ignore && *wh.SideEffects == admissionregistrationv1.SideEffectClassNone &&
			*wh.TimeoutSeconds == 5 && *wh.MatchPolicy == admissionregistrationv1.Equivalent &&
			slices.Equal(wh.AdmissionReviewVersions, []string{"v1"}) && len(wh.MatchConditions) == 1 &&
			len(wh.Rules) == 1 && slices.Equal(wh.Rules[0].Operations, []admissionregistrationv1.OperationType{"CREATE", "UPDATE"})
		if !ok {
			t.Errorf("webhook %s: %+v; want Ignore, None, 5s, Equivalent, v1, one matchCondition, CREATE and UPDATE", wh.Name, wh)
		}
		excluded := wh.NamespaceSelector.MatchExpressions[0]
		if excluded.Key != "kubernetes.io/metadata.name" || !slices.Contains(excluded.Values, "kube-system") || !slices.Contains(excluded.Values, ns) {
			t.Errorf("webhook %s namespaceSelector %+v: want kube-system and %s excluded", wh.Name, wh.NamespaceSelector, ns)
		}
	}
	want := map[string]string{
		"deployments.ecr-preflight.io": "/validate-apps-v1-deployment", "statefulsets.ecr-preflight.io": "/validate-apps-v1-statefulset",
		"daemonsets.ecr-preflight.io": "/validate-apps-v1-daemonset", "replicasets.ecr-preflight.io": "/validate-apps-v1-replicaset",
		"jobs.ecr-preflight.io": "/validate-batch-v1-job", "cronjobs.ecr-preflight.io": "/validate-batch-v1-cronjob",
		"pods.ecr-preflight.io": "/validate--v1-pod",
	}
	if fmt.Sprint(paths) != fmt.Sprint(want) {
		t.Errorf("webhook paths %v, want %v", paths, want)
	}
	for _, wh := range vwc.Webhooks {
		if wh.Name == "pods.ecr-preflight.io" && !slices.Equal(wh.Rules[0].Resources, []string{"pods", "pods/ephemeralcontainers"}) {
			t.Errorf("the Pod webhook's resources are %v, want pods and pods/ephemeralcontainers", wh.Rules[0].Resources)
		}
	}
}

// checkPodDefaults: HA and shutdown defaults of the Deployment.
func (s *chartSuite) checkPodDefaults(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	if *dep.Spec.Replicas != 2 || dep.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 || len(pod.TopologySpreadConstraints) != 2 {
		t.Errorf("replicas %d, rolling update %+v, %d topology spread constraints: want 2, maxUnavailable 0, zones and nodes",
			*dep.Spec.Replicas, dep.Spec.Strategy.RollingUpdate, len(pod.TopologySpreadConstraints))
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe.HTTPGet.Port.String() != "health" || c.ReadinessProbe.HTTPGet.Port.String() != "health" {
		t.Errorf("probes %+v / %+v: want /healthz and /readyz on the health port", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet)
	}
	health, _ := argValue(c.Args, "health-probe-bind-address")
	for _, p := range c.Ports {
		if p.Name == "health" && ":"+strconv.Itoa(int(p.ContainerPort)) != health {
			t.Errorf("the health port %d is not --health-probe-bind-address %s", p.ContainerPort, health)
		}
	}
	delay, _ := argValue(c.Args, "shutdown-delay")
	budget, _ := argValue(c.Args, "admission-timeout")
	d, err1 := time.ParseDuration(delay)
	b, err2 := time.ParseDuration(budget)
	if err1 != nil || err2 != nil || pod.TerminationGracePeriodSeconds == nil ||
		time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= d+b+time.Second {
		t.Errorf("terminationGracePeriodSeconds %v, --shutdown-delay %s, --admission-timeout %s: want the grace period above delay + budget + 1s",
			pod.TerminationGracePeriodSeconds, delay, budget)
	}
	if b >= 5*time.Second {
		t.Errorf("--admission-timeout %s is not below timeoutSeconds 5", budget)
	}
	var podNamespace bool
	for _, e := range c.Env {
		podNamespace = podNamespace || (e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace")
	}
	if !podNamespace {
		t.Error("POD_NAMESPACE is not set from the downward API")
	}
}

// testRestricted dry-runs the Deployment into a namespace that warns
// about the restricted Pod Security Standard, and a Pod of its template
// into one that enforces it.
func (s *chartSuite) testRestricted(t *testing.T) {
	const ns = "chart-restricted"
	s.env.CreateNamespace(t, ns, "", map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted",
	})
	objs := s.render(t, "pss", ns, "-f", filepath.Join(chartDir, "ci", "default-values.yaml"))
	warnings := &harness.Warnings{}
	s.dryRun(t, find(objs, "Deployment"), warnings)
	if w := warnings.List(); len(w) > 0 {
		t.Errorf("the Deployment violates the restricted Pod Security Standard: %q", w)
	}
	dep := deploymentOf(t, objs)
	pod := &corev1.Pod{ObjectMeta: dep.Spec.Template.ObjectMeta, Spec: dep.Spec.Template.Spec}
	pod.Name, pod.Namespace = "pss-probe", ns
	if err := s.env.Client(t, nil).Create(caseContext(t), pod, client.DryRunAll); err != nil {
		t.Errorf("a Pod of the chart's template is refused where restricted is enforced: %v", err)
	}
}

// ---- the README's installation ----

// chartRelease is the README's installation and the process serving it.
type chartRelease struct {
	namespace, name string
	// ports of the process: webhook, metrics, health.
	port, metricsPort, healthPort int
	certDir                       string
	kubeconfig                    string // impersonates the chart's ServiceAccount
	wh                            *harness.Webhook
	manifest                      []*unstructured.Unstructured
}

// readmeInstall is the README's `helm install` command, as words, with the
// example node role replaced by the seed's.
func (s *chartSuite) readmeInstall(t *testing.T) []string {
	t.Helper()
	words := installCommand(t, "README.md")
	if chart := installCommand(t, chartDir+"/README.md"); !slices.Equal(chart, words) {
		t.Errorf("the chart's README installs with %q, the README with %q: keep them the same", chart, words)
	}
	const exampleRole = "arn:aws:iam::111122223333:role/EksNodeGroupRole"
	found := false
	for i, w := range words {
		if strings.Contains(w, exampleRole) {
			words[i] = strings.ReplaceAll(w, exampleRole, s.env.Seed.RoleARN)
			found = true
		}
	}
	if !found {
		t.Fatalf("the README's helm install %q does not set the example node role %s", words, exampleRole)
	}
	return words
}

// installCommand finds `helm install ...` (with its continuation lines) in
// a Markdown file and splits it into words as a shell would.
func installCommand(t *testing.T, file string) []string {
	t.Helper()
	var cmd strings.Builder
	in := false
	for line := range strings.Lines(string(repoFile(t, file))) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "helm install ecr-preflight ") {
			in = true
		}
		if !in {
			continue
		}
		more := strings.HasSuffix(line, "\\")
		cmd.WriteString(strings.TrimSuffix(line, "\\") + " ")
		if !more {
			break
		}
	}
	if cmd.Len() == 0 {
		t.Fatalf("%s has no `helm install ecr-preflight ...` command", file)
	}
	words, err := shellWords(cmd.String())
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return words
}

// shellWords splits s into words: blanks separate, single quotes and
// backslashes quote.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			if c == '\'' {
				quoted = false
			} else {
				w.WriteByte(c)
			}
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '"' || c == '$' || c == '`':
			return nil, fmt.Errorf("the install command uses %q: keep it to plain words and single quotes", c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote in the install command")
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func (s *chartSuite) testInstall(t *testing.T) {
	ctx := caseContext(t)
	words := s.readmeInstall(t)
	if len(words) < 4 || words[0] != "helm" || words[1] != "install" {
		t.Fatalf("the README's install command is %q", words)
	}
	r := &chartRelease{name: words[2], certDir: filepath.Join(s.dir, "certs")}
	for i, w := range words {
		if (w == "-n" || w == "--namespace") && i+1 < len(words) {
			r.namespace = words[i+1]
		}
	}
	if r.namespace == "" {
		t.Fatalf("the README's install command %q names no namespace", words)
	}
	for _, p := range []*int{&r.port, &r.metricsPort, &r.healthPort} {
		*p = loopback.Port(t)
	}
	// What this API server lacks and a cluster has: no pod network, so the
	// API server reaches the process through webhook.url on loopback
	// ("localhost": a certificate names hosts, not IP addresses), on free
	// ports, with a temporary certificate directory. The admission budget
	// is roomier for a cold moto under -race (as the harness's), and the
	// process is stopped by the test, with no endpoints to drain.
	testOnly := []string{
		"--set", "webhook.url=https://localhost:" + strconv.Itoa(r.port),
		"--set", "webhook.port=" + strconv.Itoa(r.port),
		"--set", "metrics.port=" + strconv.Itoa(r.metricsPort),
		"--set", "healthProbe.port=" + strconv.Itoa(r.healthPort),
		"--set", "certificates.certDir=" + r.certDir,
		"--set", "webhook.timeoutSeconds=" + strconv.Itoa(harness.HookTimeoutSeconds),
		"--set", "shutdownDelaySeconds=0",
		"--set", "logging.format=text",
		"--set", "logging.verbosity=1",
	}
	res := s.helm.Run(ctx, append(words[1:], testOnly...)...)
	t.Logf("$ %s\n%s", res.Command, res.Output)
	if res.Err != nil {
		t.Fatalf("%v\n%s", res.Err, res.Output)
	}
	s.release = r
	t.Cleanup(func() {
		// A failed case must not leave the webhook configuration pointing
		// at a stopped process for the cases after it.
		if t.Failed() {
			_ = s.helm.Run(context.Background(), "uninstall", r.name, "-n", r.namespace)
		}
	})
	wantAll(t, "the NOTES of helm install", res.Stdout, "Mode: warn", "Certificates: selfManaged", "kubectl apply --dry-run=server")

	s.startServe(t, r)

	// The certificate: issued into the chart's Secret, its CA injected
	// into every webhook of the chart's configuration.
	dep := deploymentOf(t, r.manifest)
	args := dep.Spec.Template.Spec.Containers[0].Args
	secretName, _ := argValue(args, "cert-secret-name")
	c := s.env.Client(t, nil)
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: secretName}, secret); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if len(secret.Data[key]) == 0 {
			t.Errorf("Secret %s has no %s", secretName, key)
		}
	}
	if secret.Annotations["meta.helm.sh/release-name"] != r.name {
		t.Errorf("Secret %s is not the chart's (annotations %v)", secretName, secret.Annotations)
	}
	vwc := webhooksOf(t, r.manifest)
	live := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: vwc.Name}, live); err != nil {
		t.Fatal(err)
	}
	for _, wh := range live.Webhooks {
		if !bytes.Equal(wh.ClientConfig.CABundle, secret.Data["ca.crt"]) {
			t.Errorf("webhook %s: caBundle is not the CA of Secret %s", wh.Name, secretName)
		}
	}
	all := &admissionregistrationv1.ValidatingWebhookConfigurationList{}
	if err := c.List(ctx, all); err != nil || len(all.Items) != 1 {
		t.Fatalf("webhook configurations: %d (%v), want only the chart's", len(all.Items), err)
	}
	lease := &coordinationv1.Lease{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: secretName + "-rotation"}, lease); err != nil {
		t.Error(err)
	} else if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("the chart's Lease %s has no holder: the process did not elect itself with it", lease.Name)
	}

	t.Run("the process has the chart's RBAC: its own objects, by name, and nothing else", func(t *testing.T) {
		s.checkRBAC(t, r, dep.Spec.Template.Spec.ServiceAccountName, secretName, vwc.Name)
	})
	t.Run("kubectl apply of the seed is warned about through the chart's webhook configuration", func(t *testing.T) {
		const ns = "chart-seed-warn"
		s.env.CreateNamespace(t, ns, "", nil)
		if err := s.env.AwaitMode(caseContext(t), ns, "warn"); err != nil {
			t.Fatal(err)
		}
		apply := s.env.Kubectl(caseContext(t), "apply", "-f", harness.ManifestFile, "-n", ns)
		t.Logf("$ %s  (exit: %v)\n%s", apply.Command, apply.Err, apply.Output)
		accepted(t, apply, "deployment.apps/ui-private created")
		wantAll(t, apply.Command+" warnings", strings.Join(apply.Warnings(), "\n"),
			`statement "new policy"`, "RepositoryPolicyDenies", s.env.Seed.Image)
	})
	t.Run("the one-line test of NOTES.txt shows the warning", func(t *testing.T) { s.runNotesTest(t, res.Stdout) })
	t.Run("matchConditions: only objects with an ECR image reach the webhook, ephemeral containers included", func(t *testing.T) {
		s.testMatchConditions(t, r)
	})
	noForbidden(t, r.wh)
}

// noForbidden fails t if the process was refused anything by the API
// server: the chart's RBAC must be all it needs.
func noForbidden(t *testing.T, wh *harness.Webhook) {
	t.Helper()
	for line := range strings.Lines(wh.Logs()) {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			t.Errorf("the process was refused something with the chart's RBAC: %s", line)
		}
	}
}

// testMatchConditions creates (server-side dry-run) Deployments with
// images in and out of ECR, and counts the admissions the webhook saw:
// the API server's CEL decides what is sent.
func (s *chartSuite) testMatchConditions(t *testing.T, r *chartRelease) {
	const ns = "chart-match"
	s.env.CreateNamespace(t, ns, "", nil)
	ctx := caseContext(t)
	c := s.env.Client(t, nil)
	admissions := func(kind string) float64 {
		t.Helper()
		v, err := r.wh.Counter(ctx, "ecr_preflight_admissions_total", map[string]string{"kind": kind})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const acct = awsseed.SeedAccount
	for i, tc := range []struct {
		image, initImage string
		sent             bool
	}{
		{image: "nginx:1.27"},
		{image: "public.ecr.aws/nginx/nginx:1.27"},
		{image: "ghcr.io/acme/ecr/app:1"},
		{image: acct + ".dkr.ecr.us-west-2.amazonaws.com/app:1", sent: true},
		{image: acct + ".DKR.ECR.US-WEST-2.AMAZONAWS.COM/app:1", sent: true},
		{image: acct + ".dkr.ecr-fips.us-gov-west-1.amazonaws.com/app:1", sent: true},
		{image: acct + ".dkr-ecr.us-west-2.on.aws/app:1", sent: true},
		{image: acct + ".dkr.ecr.cn-north-1.amazonaws.com.cn/app:1", sent: true},
		{image: acct + ".dkr.ecr.eusc-de-east-1.amazonaws.eu/app:1", sent: true},
		{image: "nginx:1.27", initImage: acct + ".dkr.ecr.us-west-2.amazonaws.com/init:1", sent: true},
	} {
		d := harness.Deployment(ns, "match-"+strconv.Itoa(i), tc.image)
		if tc.initImage != "" {
			d.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: tc.initImage}}
		}
		before := admissions("Deployment")
		if err := c.Create(ctx, d, client.DryRunAll); err != nil {
			t.Errorf("creating a Deployment of %s (init %q): %v", tc.image, tc.initImage, err)
			continue
		}
		if sent := admissions("Deployment") > before; sent != tc.sent {
			t.Errorf("a Deployment of %s (init %q) reached the webhook: %v, want %v", tc.image, tc.initImage, sent, tc.sent)
		}
	}

	// kubectl debug: a Pod without an ECR image is not sent; adding an
	// ephemeral container with one (the pods/ephemeralcontainers
	// subresource) is.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "debug-me"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
	before := admissions("Pod")
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if admissions("Pod") != before {
		t.Error("a Pod without an ECR image reached the webhook")
	}
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debugger", Image: acct + ".dkr.ecr.us-west-2.amazonaws.com/debug-tools:1", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}}}
	if err := c.SubResource("ephemeralcontainers").Update(ctx, pod); err != nil {
		t.Fatalf("adding an ephemeral container: %v", err)
	}
	if admissions("Pod") != before+1 {
		t.Error("adding an ephemeral container with an ECR image did not reach the webhook")
	}
}

// startServe reads the release's manifest and runs serve as its
// Deployment would: the container's arguments and environment (the
// downward API resolved), plus a kubeconfig impersonating the chart's
// ServiceAccount, and AWS through moto.
func (s *chartSuite) startServe(t *testing.T, r *chartRelease) {
	t.Helper()
	res := s.helm.Run(caseContext(t), "get", "manifest", r.name, "-n", r.namespace)
	if res.Err != nil {
		t.Fatalf("%v\n%s", res.Err, res.Output)
	}
	r.manifest = decodeObjects(t, res.Stdout)
	dep := deploymentOf(t, r.manifest)
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	if len(ctr.Command) != 0 || len(ctr.Args) == 0 || ctr.Args[0] != "serve" {
		t.Fatalf("container command %q args %q: want the image's entrypoint (the binary) with serve ...", ctr.Command, ctr.Args)
	}
	env := s.env.AWSEnv()
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env = append(env, e.Name+"="+dep.Namespace)
		default:
			t.Fatalf("env %s: %+v is not something this test can resolve", e.Name, e.ValueFrom)
		}
	}
	if r.kubeconfig == "" {
		r.kubeconfig = s.impersonating(t, "system:serviceaccount:"+dep.Namespace+":"+pod.ServiceAccountName, dep.Namespace, s.dir)
	}
	args := append(slices.Clone(ctr.Args), "--kubeconfig="+r.kubeconfig)
	r.wh = s.env.StartServe(t, harness.ServeProcess{
		Args:       args,
		Env:        env,
		URL:        "https://localhost:" + strconv.Itoa(r.port),
		HealthPort: r.healthPort,
		MetricsURL: "http://127.0.0.1:" + strconv.Itoa(r.metricsPort) + "/metrics",
	})
	t.Logf("serving as the chart's Deployment does: %q", r.wh.Args)
}

// impersonating writes a copy of the admin kubeconfig that acts as user
// (a ServiceAccount, with the groups the API server gives one).
func (s *chartSuite) impersonating(t *testing.T, user, namespace, dir string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(s.env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	}
	path := filepath.Join(dir, "serviceaccount.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkRBAC asks the API server what the chart's ServiceAccount may do:
// its own objects, by name, and nothing else.
func (s *chartSuite) checkRBAC(t *testing.T, r *chartRelease, serviceAccount, secret, vwc string) {
	t.Helper()
	c := s.env.Client(t, nil)
	user := "system:serviceaccount:" + r.namespace + ":" + serviceAccount
	for _, q := range []struct {
		verb, group, resource, namespace, name string
		allowed                                bool
	}{
		{"list", "", "namespaces", "", "", true},
		{"watch", "", "namespaces", "", "", true},
		{"get", "", "secrets", r.namespace, secret, true},
		{"update", "", "secrets", r.namespace, secret, true},
		{"get", "", "secrets", r.namespace, "another-secret", false},
		{"list", "", "secrets", r.namespace, "", false},
		{"create", "", "secrets", r.namespace, "", false},
		{"get", "", "secrets", "default", secret, false},
		{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", vwc, true},
		{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "another-webhook", false},
		{"list", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", false},
		{"create", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", false},
		{"update", "coordination.k8s.io", "leases", r.namespace, secret + "-rotation", true},
		{"create", "coordination.k8s.io", "leases", r.namespace, "", false},
		{"update", "coordination.k8s.io", "leases", r.namespace, "another-lease", false},
		// Node pool discovery (nodePools.discoverNodes, on by default):
		// read only.
		{"list", "", "nodes", "", "", true},
		{"watch", "", "nodes", "", "", true},
		{"get", "", "nodes", "", "ip-10-0-1-2.ec2.internal", true},
		{"update", "", "nodes", "", "ip-10-0-1-2.ec2.internal", false},
		{"patch", "", "nodes", "", "ip-10-0-1-2.ec2.internal", false},
		{"list", "karpenter.sh", "nodepools", "", "", true},
		{"watch", "karpenter.sh", "nodepools", "", "", true},
		{"update", "karpenter.sh", "nodepools", "", "default", false},
		{"list", "karpenter.k8s.aws", "ec2nodeclasses", "", "", true},
		{"create", "karpenter.k8s.aws", "ec2nodeclasses", "", "", false},
		{"list", "karpenter.sh", "nodeclaims", "", "", false},
		{"list", "", "pods", "", "", false},
		{"get", "apps", "deployments", r.namespace, "", false},
		{"get", "", "configmaps", r.namespace, "", false},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + r.namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: q.verb, Group: q.group, Resource: q.resource, Namespace: q.namespace, Name: q.name,
			},
		}}
		if err := c.Create(caseContext(t), sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != q.allowed {
			t.Errorf("%s may %s %s %q in %q: %v, want %v", serviceAccount, q.verb, q.resource, q.name, q.namespace, sar.Status.Allowed, q.allowed)
		}
	}
}

// runNotesTest runs the test command NOTES.txt printed, with the
// placeholders filled: the seed's repository, moto's region.
func (s *chartSuite) runNotesTest(t *testing.T, notes string) {
	t.Helper()
	var line string
	for l := range strings.Lines(notes) {
		if strings.Contains(l, "kubectl apply --dry-run=server") {
			line = strings.TrimSpace(l)
		}
	}
	line = strings.ReplaceAll(line, "REPOSITORY", awsseed.SeedRepository)
	line = strings.ReplaceAll(line, "REGION", moto.Region)
	if !strings.Contains(line, awsseed.SeedAccount+".dkr.ecr."+moto.Region) {
		t.Fatalf("NOTES' test %q does not name the node role's account %s", line, awsseed.SeedAccount)
	}
	ctx := caseContext(t)
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", line)
	cmd.Env = append(s.env.AWSEnv(), "KUBECONFIG="+s.env.Kubeconfig, "HOME="+t.TempDir(),
		"PATH="+filepath.Dir(s.env.Kube.ControlPlane.KubectlPath)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s\n%s", line, out)
	if err != nil {
		t.Fatalf("NOTES' test failed: %v", err)
	}
	wantAll(t, "NOTES' test output", string(out), "Warning:", "ImageNotFound", "deployment.apps/ecr-preflight-test created (server dry run)")
}

func (s *chartSuite) testUpgrade(t *testing.T) {
	r := s.release
	ctx := caseContext(t)
	c := s.env.Client(t, nil)
	dep := deploymentOf(t, r.manifest)
	secretName, _ := argValue(dep.Spec.Template.Spec.Containers[0].Args, "cert-secret-name")
	before := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: secretName}, before); err != nil {
		t.Fatal(err)
	}

	res := s.helm.Run(ctx, "upgrade", r.name, chartDir, "-n", r.namespace, "--reuse-values", "--set", "mode=deny")
	t.Logf("$ %s\n%s", res.Command, res.Output)
	if res.Err != nil {
		t.Fatalf("%v\n%s", res.Err, res.Output)
	}
	wantAll(t, "the NOTES of helm upgrade", res.Stdout, "Mode: deny")
	// The chart never sets the Secret's data nor the caBundle: the upgrade
	// keeps what the process wrote.
	after := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: secretName}, after); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Data["ca.crt"], after.Data["ca.crt"]) || !bytes.Equal(before.Data["tls.crt"], after.Data["tls.crt"]) {
		t.Error("helm upgrade changed the certificate in the Secret")
	}
	live := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: webhooksOf(t, r.manifest).Name}, live); err != nil {
		t.Fatal(err)
	}
	for _, wh := range live.Webhooks {
		if !bytes.Equal(wh.ClientConfig.CABundle, after.Data["ca.crt"]) {
			t.Errorf("after helm upgrade, webhook %s lost its caBundle", wh.Name)
		}
	}

	// The rollout: the new pod replaces the old one (here on the same
	// ports, so the old one stops first; a cluster surges a new pod
	// first, which maxUnavailable 0 asks for).
	r.wh.Stop()
	s.startServe(t, r)
	if !slices.Contains(r.wh.Args, "--mode=deny") {
		t.Fatalf("after the upgrade serve runs %q, want --mode=deny", r.wh.Args)
	}

	const ns = "chart-seed-deny"
	s.env.CreateNamespace(t, ns, "", nil)
	if err := s.env.AwaitMode(ctx, ns, "deny"); err != nil {
		t.Fatal(err)
	}
	apply := s.env.Kubectl(ctx, "apply", "-f", harness.ManifestFile, "-n", ns)
	t.Logf("$ %s  (exit: %v)\n%s", apply.Command, apply.Err, apply.Output)
	rejected(t, apply)
	wantAll(t, apply.Command+" stderr", apply.Stderr, "RepositoryPolicyDenies", `statement "new policy"`)
	noForbidden(t, r.wh)
}

func (s *chartSuite) testUninstall(t *testing.T) {
	r := s.release
	ctx := caseContext(t)
	// The pods go first (helm deletes the Deployment; the kubelet stops
	// them), so nothing can write the Secret or the Lease again.
	r.wh.Stop()
	res := s.helm.Run(ctx, "uninstall", r.name, "-n", r.namespace, "--wait")
	t.Logf("$ %s\n%s", res.Command, res.Output)
	if res.Err != nil {
		t.Fatalf("%v\n%s", res.Err, res.Output)
	}
	c := s.env.Client(t, nil)
	for _, o := range r.manifest {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(o.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKeyFromObject(o), u)
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s %s/%s is still there after helm uninstall (err %v)", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	// Nothing the process made on its own either.
	left := map[string]client.ObjectList{
		"Secrets": &corev1.SecretList{}, "Leases": &coordinationv1.LeaseList{},
		"ServiceAccounts": &corev1.ServiceAccountList{},
	}
	for what, list := range left {
		if err := c.List(ctx, list, client.InNamespace(r.namespace)); err != nil {
			t.Fatal(err)
		}
		if n := len(mustItems(t, list)); n != 0 {
			t.Errorf("%d %s left in namespace %s", n, what, r.namespace)
		}
	}
	vwcs := &admissionregistrationv1.ValidatingWebhookConfigurationList{}
	if err := c.List(ctx, vwcs); err != nil || len(vwcs.Items) != 0 {
		t.Errorf("%d webhook configurations left (%v)", len(vwcs.Items), err)
	}
}

func mustItems(t *testing.T, list client.ObjectList) []runtime.Object {
	t.Helper()
	items, err := meta.ExtractList(list)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// ---- environment ----

// serverVersion is the API server's version, for helm template's
// --kube-version (helm install reads it from the server itself).
func serverVersion(t *testing.T, env *harness.Env) string {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(v.GitVersion, "v")
}

// stubCRDs are the custom resources the chart may create whose operators
// this API server lacks: cert-manager's Issuer and Certificate, the
// Prometheus Operator's ServiceMonitor. The stubs give the kinds, versions
// and scope only (any spec is accepted), so a dry-run proves the objects'
// kind, apiVersion and namespace; the tests check their spec themselves.
//
// Karpenter's NodePool and EC2NodeClass (cluster-scoped, empty) are there
// so that the process's node pool discovery really lists them with the
// chart's RBAC, as in a cluster with Karpenter, rather than skipping kinds
// the API server does not know.
var stubCRDs = []struct {
	group, kind, plural string
	cluster             bool
}{
	{group: "cert-manager.io", kind: "Issuer", plural: "issuers"},
	{group: "cert-manager.io", kind: "Certificate", plural: "certificates"},
	{group: "monitoring.coreos.com", kind: "ServiceMonitor", plural: "servicemonitors"},
	{group: "karpenter.sh", kind: "NodePool", plural: "nodepools", cluster: true},
	{group: "karpenter.k8s.aws", kind: "EC2NodeClass", plural: "ec2nodeclasses", cluster: true},
}

func installStubCRDs(t *testing.T, env *harness.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := env.Client(t, nil)
	for _, crd := range stubCRDs {
		version, scope := "v1", "Namespaced"
		if crd.cluster {
			scope = "Cluster"
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1",
			"kind":       "CustomResourceDefinition",
			"metadata":   map[string]any{"name": crd.plural + "." + crd.group},
			"spec": map[string]any{
				"group": crd.group,
				"scope": scope,
				"names": map[string]any{"kind": crd.kind, "plural": crd.plural, "singular": strings.ToLower(crd.kind), "listKind": crd.kind + "List"},
				"versions": []any{map[string]any{
					"name": version, "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{
						"type": "object", "x-kubernetes-preserve-unknown-fields": true,
					}},
				}},
			},
		}}
		if err := c.Create(ctx, u); err != nil {
			t.Fatalf("creating the stub CRD %s: %v", u.GetName(), err)
		}
	}
	// Established and served: a dry-run create of each kind goes through.
	for _, crd := range stubCRDs {
		for {
			probe := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": crd.group + "/v1", "kind": crd.kind,
				"metadata": map[string]any{"name": "probe"},
			}}
			if !crd.cluster {
				probe.SetNamespace("default")
			}
			err := env.Client(t, nil).Create(ctx, probe, client.DryRunAll)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("stub CRD %s.%s not served: %v", crd.plural, crd.group, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
