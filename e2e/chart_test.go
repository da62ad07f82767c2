package e2e

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
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
	t.Run("audit: the values become serve's flags, the audit Lease and RBAC only where needed, and the RBAC grants what the audit does", s.testAudit)
	t.Run("monitoring: the PrometheusRule alerts on the audit's metrics by labels they have, the dashboard is the chart's file, both dry-run", s.testMonitoring)
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
		{[]string{"audit.interval=9s"}, `audit.interval "9s": at least 10s`},
		{[]string{"audit.interval=9999ms"}, `audit.interval "9999ms": at least 10s`},
		{[]string{"audit.interval=0s"}, "/audit/interval"},
		{[]string{"audit.interval=5"}, "/audit/interval"},
		{[]string{"lifecycle.warnDays=-1"}, "/lifecycle/warnDays"},
		{[]string{"lifecycle.warnPushes=0"}, "/lifecycle/warnPushes"},
		{[]string{"aws.callsPerSecond=-1"}, "/aws/callsPerSecond"},
		{[]string{"metrics.enabled=false", "metrics.prometheusRule.enabled=true"}, "metrics.prometheusRule.enabled: its alerts read the metrics"},
		{[]string{"metrics.enabled=false", "metrics.grafanaDashboard.enabled=true"}, "metrics.grafanaDashboard.enabled: the dashboard reads the metrics"},
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
	var poolsConfigMap *corev1.ConfigMap
	for _, cm := range find(objs, "ConfigMap") {
		if cm.GetLabels()["grafana_dashboard"] == "" { // the maximal values' dashboard is one too
			poolsConfigMap = convert[corev1.ConfigMap](t, cm)
		}
	}
	if poolsConfigMap == nil {
		t.Fatal("maximal: no ConfigMap of static node pools")
	}
	file := staticPoolsFile(t, dep, poolsConfigMap)
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

// ---- continuous audit ----

// testAudit renders the audit values: on by default (electing with the
// rotation's Lease in selfManaged mode, with a Lease of its own
// otherwise), the maximal values' settings, and off. It then creates a
// certManager release's RBAC and Lease for real and asks the API server
// what they allow.
func (s *chartSuite) testAudit(t *testing.T) {
	const ns = "chart-audit"
	ci := filepath.Join(chartDir, "ci")

	objs := s.render(t, "audit", ns, "-f", filepath.Join(ci, "default-values.yaml"))
	args := deploymentOf(t, objs).Spec.Template.Spec.Containers[0].Args
	wantArgs(t, "defaults", args, map[string]string{"audit-interval": "5m", "audit-policy-reports": "true",
		"lifecycle-warn-days": "7", "lifecycle-warn-pushes": "1", "aws-calls-per-second": "0"}, "audit-lease-name")
	checkAuditRBAC(t, "defaults", objs, true, true)
	if leases := find(objs, "Lease"); len(leases) != 1 {
		t.Errorf("defaults: %d Leases, want only the rotation's, which elects the auditor too", len(leases))
	}
	if rules := roleRules(t, objs, "", "events"); len(rules) != 0 {
		t.Errorf("defaults: the Role grants events %v, which the ClusterRole grants in every namespace", rules)
	}

	objs = s.render(t, "audit", ns, "-f", filepath.Join(ci, "certmanager-values.yaml"))
	args = deploymentOf(t, objs).Spec.Template.Spec.Containers[0].Args
	checkAuditLeaseRole(t, "certManager", objs, args)
	checkAuditRBAC(t, "certManager", objs, true, true)

	objs = s.render(t, "audit", ns, "-f", filepath.Join(ci, "maximal-values.yaml"))
	args = deploymentOf(t, objs).Spec.Template.Spec.Containers[0].Args
	wantArgs(t, "maximal", args, map[string]string{"audit-interval": "2m", "audit-policy-reports": "false",
		"lifecycle-warn-days": "14", "lifecycle-warn-pushes": "3", "aws-calls-per-second": "12.5"}, "audit-lease-name")
	checkAuditRBAC(t, "maximal", objs, true, false)

	objs = s.render(t, "audit", ns, "--set", "audit.enabled=false")
	args = deploymentOf(t, objs).Spec.Template.Spec.Containers[0].Args
	wantArgs(t, "audit off", args, map[string]string{"audit-interval": "0"}, "audit-lease-name", "audit-policy-reports")
	checkAuditRBAC(t, "audit off", objs, false, false)
	if rules := roleRules(t, objs, "", "events"); len(rules) != 1 || !slices.Equal(rules[0].Verbs, []string{"create", "patch"}) {
		t.Errorf("audit off: the Role grants events %v, want create and patch for the rotation's leader election", rules)
	}

	objs = s.render(t, "audit", ns, "-f", filepath.Join(ci, "certmanager-values.yaml"), "--set", "audit.enabled=false")
	for _, kind := range []string{"Lease", "Role", "RoleBinding"} {
		if n := len(find(objs, kind)); n != 0 {
			t.Errorf("certManager, audit off: %d %s objects, want none: nothing is elected", n, kind)
		}
	}

	s.checkAuditRBACLive(t)
}

// auditClusterRules are the ClusterRole's rules for the audit, by
// group/resource, with their verbs.
var auditClusterRules = map[string][]string{
	"apps/deployments": {"list"}, "apps/statefulsets": {"list"},
	"apps/daemonsets": {"list"}, "apps/replicasets": {"list"},
	"batch/jobs": {"list"}, "batch/cronjobs": {"list"},
	"/pods":                        {"list"},
	"/events":                      {"create"},
	"events.k8s.io/events":         {"create"},
	"wgpolicyk8s.io/policyreports": {"get", "list", "watch", "create", "update", "patch", "delete"},
}

// checkAuditRBAC: with the audit the ClusterRole grants exactly
// auditClusterRules, of any name (policyreports only with policyReports);
// without it, none of them.
func checkAuditRBAC(t *testing.T, what string, objs []*unstructured.Unstructured, audit, policyReports bool) {
	t.Helper()
	role := convert[rbacv1.ClusterRole](t, one(t, objs, "ClusterRole"))
	granted := map[string]bool{}
	for _, rule := range role.Rules {
		for _, g := range rule.APIGroups {
			for _, r := range rule.Resources {
				verbs, ok := auditClusterRules[g+"/"+r]
				if !ok {
					continue
				}
				granted[g+"/"+r] = true
				if !slices.Equal(rule.Verbs, verbs) || len(rule.ResourceNames) != 0 {
					t.Errorf("%s: the ClusterRole grants %v on %s/%s (names %v), want %v", what, rule.Verbs, g, r, rule.ResourceNames, verbs)
				}
			}
		}
	}
	for res := range auditClusterRules {
		want := audit && (res != "wgpolicyk8s.io/policyreports" || policyReports)
		if granted[res] != want {
			t.Errorf("%s: the ClusterRole grants %s: %v, want %v (audit %v, policyReports %v)", what, res, granted[res], want, audit, policyReports)
		}
	}
}

// roleRules are the rules of the chart's Role on group/resource (none
// without a Role).
func roleRules(t *testing.T, objs []*unstructured.Unstructured, group, resource string) []rbacv1.PolicyRule {
	t.Helper()
	var out []rbacv1.PolicyRule
	for _, o := range find(objs, "Role") {
		for _, rule := range convert[rbacv1.Role](t, o).Rules {
			if slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) {
				out = append(out, rule)
			}
		}
	}
	return out
}

// checkAuditLeaseRole: without certificate rotation the chart creates the
// Lease serve's --audit-lease-name names, and a Role granting only that
// Lease, by name, without create.
func checkAuditLeaseRole(t *testing.T, what string, objs []*unstructured.Unstructured, args []string) {
	t.Helper()
	lease := one(t, objs, "Lease")
	if name, ok := argValue(args, "audit-lease-name"); !ok || name != lease.GetName() {
		t.Errorf("%s: the chart's Lease is %s, serve elects the auditor with --audit-lease-name=%s (set: %v)", what, lease.GetName(), name, ok)
	}
	if _, ok := argValue(args, "cert-rotation"); ok {
		t.Errorf("%s: --cert-rotation is set", what)
	}
	role := convert[rbacv1.Role](t, one(t, objs, "Role"))
	want := []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
		ResourceNames: []string{lease.GetName()}, Verbs: []string{"get", "update", "patch"}}}
	if !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("%s: the Role's rules are %+v, want only %+v", what, role.Rules, want)
	}
}

// checkAuditRBACLive creates a certManager release's ServiceAccount,
// RBAC and audit Lease for real and asks the API server what its
// ServiceAccount may do.
func (s *chartSuite) checkAuditRBACLive(t *testing.T) {
	const ns = "chart-audit-rbac"
	s.env.CreateNamespace(t, ns, "", nil)
	objs := s.render(t, "audit-live", ns, "-f", filepath.Join(chartDir, "ci", "certmanager-values.yaml"))
	c := s.env.Client(t, nil)
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Lease":
		default:
			continue
		}
		if err := c.Create(caseContext(t), o.DeepCopy()); err != nil {
			t.Fatalf("creating %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.Delete(ctx, o.DeepCopy()); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		})
	}
	lease := one(t, objs, "Lease").GetName()
	s.checkAccess(t, ns, deploymentOf(t, objs).Spec.Template.Spec.ServiceAccountName, []accessCheck{
		{"get", "coordination.k8s.io", "leases", ns, lease, true},
		{"update", "coordination.k8s.io", "leases", ns, lease, true},
		{"update", "coordination.k8s.io", "leases", ns, "another-lease", false},
		{"create", "coordination.k8s.io", "leases", ns, "", false},
		{"update", "coordination.k8s.io", "leases", "default", lease, false},
		{"list", "apps", "deployments", "", "", true},
		{"list", "", "pods", "", "", true},
		{"watch", "", "pods", "", "", false},
		{"list", "batch", "cronjobs", "shop", "", true},
		{"create", "", "events", "shop", "", true},
		{"create", "events.k8s.io", "events", "default", "", true},
		{"patch", "wgpolicyk8s.io", "policyreports", "shop", "ecr-preflight", true},
		{"get", "", "secrets", ns, "", false},
		{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "audit-live-ecr-preflight", false},
	})
}

// ---- monitoring ----

// testMonitoring renders the PrometheusRule and the Grafana dashboard,
// dry-runs them, and checks the alerts against the metrics ecr-preflight
// exports: each reads chartMetrics by labels they have, and its
// annotations, executed as Prometheus executes them, name the workload.
func (s *chartSuite) testMonitoring(t *testing.T) {
	const ns = "chart-monitoring"
	s.env.CreateNamespace(t, ns, "", nil)
	on := []string{"--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.grafanaDashboard.enabled=true",
		"--set", "metrics.serviceMonitor.enabled=true"}

	objs := s.render(t, "monitoring", ns)
	for _, kind := range []string{"PrometheusRule", "ServiceMonitor", "ConfigMap"} {
		if n := len(find(objs, kind)); n != 0 {
			t.Errorf("defaults: %d %s objects, want none", n, kind)
		}
	}

	objs = s.render(t, "monitoring", ns, on...)
	s.dryRun(t, objs, nil)
	alerts := alertsOf(t, one(t, objs, "PrometheusRule"))
	if got, want := slices.Sorted(maps.Keys(alerts)), []string{"EcrPreflightAdmissionsUnverified", "EcrPreflightAuditStale",
		"EcrPreflightImageExpiring", "EcrPreflightImageNotPullable"}; !slices.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
	workload := map[string]string{"namespace": "shop", "kind": "Deployment", "name": "ui", "container": "app",
		"image": "111122223333.dkr.ecr.us-west-2.amazonaws.com/ui:1.2.3", "verdict": "not-pullable", "code": "ImageExpiring",
		"severity": "warning", "reason": "timeout"}
	for _, c := range []struct {
		alert, selects, duration string
		names                    []string // what the annotations must say, from workload
	}{
		{"EcrPreflightImageNotPullable", `ecr_preflight_workload_image_verdict{verdict=~"not-pullable|partly-pullable"}`, "10m",
			[]string{"shop/ui", "Deployment", "app", workload["image"], "not-pullable"}},
		{"EcrPreflightImageExpiring", `ecr_preflight_workload_image_finding{code=~"ImageExpiring|ImageExpired"}`, "10m",
			[]string{"shop/ui", "Deployment", "app", workload["image"], "ImageExpiring"}},
		{"EcrPreflightAuditStale", "ecr_preflight_audit_last_completion_timestamp_seconds > 0) > 900", "5m", []string{"900s"}},
		{"EcrPreflightAdmissionsUnverified", "rate(ecr_preflight_admissions_unverified_total[", "15m", []string{"timeout"}},
	} {
		a, ok := alerts[c.alert]
		if !ok {
			continue
		}
		kept := checkPromQL(t, c.alert, a.Expr)
		if !strings.Contains(a.Expr, c.selects) || a.For != c.duration || a.Labels["severity"] != "warning" {
			t.Errorf("%s: expr %q, for %q, labels %v: want it to contain %q, for %s, severity warning", c.alert, a.Expr, a.For, a.Labels, c.selects, c.duration)
		}
		for _, key := range []string{"summary", "description"} {
			text := a.Annotations[key]
			// What the alert's labels can name: what its expression keeps.
			for _, m := range regexp.MustCompile(`\$labels\.([A-Za-z_]+)`).FindAllStringSubmatch(text, -1) {
				if !slices.Contains(kept, m[1]) {
					t.Errorf("%s %s names $labels.%s, which %q does not keep", c.alert, key, m[1], a.Expr)
				}
			}
			labels := map[string]string{}
			for _, l := range kept {
				labels[l] = workload[l]
			}
			out := expandAlertTemplate(t, c.alert+" "+key, text, labels)
			if key == "description" || c.alert == "EcrPreflightAuditStale" {
				wantAll(t, c.alert+" "+key, out, c.names...)
			}
		}
		if c.alert == "EcrPreflightImageNotPullable" || c.alert == "EcrPreflightImageExpiring" {
			wantAll(t, c.alert+" summary", expandAlertTemplate(t, c.alert, a.Annotations["summary"], workload), "Deployment shop/ui")
		}
	}

	// The audit interval sets when the audit is stale: 3 intervals, at
	// least 5 minutes.
	for interval, seconds := range map[string]string{"2m": "360", "1h": "10800", "30s": "300"} {
		stale := alertsOf(t, one(t, s.render(t, "monitoring", ns, append(slices.Clone(on), "--set", "audit.interval="+interval)...), "PrometheusRule"))["EcrPreflightAuditStale"]
		wantAll(t, "EcrPreflightAuditStale with audit.interval="+interval, stale.Expr, "> "+seconds+")", "["+seconds+"s:]")
	}
	// Without the audit, only the admission alert: the others would read
	// gauges nobody exports (and AuditStale would fire for ever).
	off := alertsOf(t, one(t, s.render(t, "monitoring", ns, append(slices.Clone(on), "--set", "audit.enabled=false")...), "PrometheusRule"))
	if got := slices.Sorted(maps.Keys(off)); !slices.Equal(got, []string{"EcrPreflightAdmissionsUnverified"}) {
		t.Errorf("audit off: alerts %v, want only EcrPreflightAdmissionsUnverified", got)
	}

	// The ServiceMonitor keeps the gauges' namespace and container labels.
	honor, _, _ := unstructured.NestedSlice(one(t, objs, "ServiceMonitor").Object, "spec", "endpoints")
	if len(honor) != 1 || honor[0].(map[string]any)["honorLabels"] != true {
		t.Errorf("ServiceMonitor endpoints %v: want honorLabels: true, or the audit's namespace label becomes exported_namespace", honor)
	}

	// The dashboard: the chart's file, for Grafana's sidecar.
	cm := convert[corev1.ConfigMap](t, one(t, objs, "ConfigMap"))
	if cm.Labels["grafana_dashboard"] != "1" || cm.Namespace != ns || len(cm.Data) != 1 {
		t.Errorf("dashboard ConfigMap %s/%s labels %v, %d keys: want grafana_dashboard=1 in the release namespace, one file", cm.Namespace, cm.Name, cm.Labels, len(cm.Data))
	}
	file := strings.TrimSpace(string(repoFile(t, chartDir+"/files/grafana-dashboard.json")))
	for key, json := range cm.Data {
		if !strings.HasSuffix(key, ".json") || json != file {
			t.Errorf("dashboard ConfigMap key %s: want a .json key holding files/grafana-dashboard.json as it is", key)
		}
	}
	other := convert[corev1.ConfigMap](t, one(t, s.render(t, "monitoring", ns, append(slices.Clone(on), "--set", "metrics.grafanaDashboard.namespace=grafana")...), "ConfigMap"))
	if other.Namespace != "grafana" {
		t.Errorf("metrics.grafanaDashboard.namespace=grafana: the ConfigMap is in %q", other.Namespace)
	}
}

// prometheusAlert is one alerting rule of a PrometheusRule.
type prometheusAlert struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// alertsOf are the alerting rules of a PrometheusRule, by name.
func alertsOf(t *testing.T, u *unstructured.Unstructured) map[string]prometheusAlert {
	t.Helper()
	rule := convert[struct {
		Spec struct {
			Groups []struct {
				Name  string            `json:"name"`
				Rules []prometheusAlert `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}](t, u)
	out := map[string]prometheusAlert{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if _, dup := out[r.Alert]; dup || r.Alert == "" {
				t.Errorf("group %s: alert %q is repeated or unnamed", g.Name, r.Alert)
			}
			out[r.Alert] = r
		}
	}
	return out
}

// expandAlertTemplate executes an alert's annotation as Prometheus does:
// Go's text/template with $labels, $externalLabels and $value defined.
func expandAlertTemplate(t *testing.T, what, text string, labels map[string]string) string {
	t.Helper()
	const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}"
	tmpl, err := template.New(what).Option("missingkey=zero").Parse(defs + text)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return ""
	}
	var out strings.Builder
	data := struct {
		Labels, ExternalLabels map[string]string
		Value                  float64
	}{labels, map[string]string{}, 1}
	if err := tmpl.Execute(&out, data); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	return out.String()
}

// ---- the audit, live ----

// checkAuditResults waits until the process's audit has found workload, a
// Deployment in ns whose image its nodes cannot pull, where NOTES says:
// the Event and the PolicyReport through NOTES' own commands, and the
// gauges on /metrics, with the labels the alerts and the dashboard read.
func (s *chartSuite) checkAuditResults(t *testing.T, r *chartRelease, notes, ns, workload string) {
	for _, c := range []struct {
		command string
		want    []string
	}{
		{"kubectl get events --field-selector reason=ImageNotPullable -A", []string{ns, "deployment/" + workload, "ImageNotPullable"}},
		{"kubectl get policyreports -A", []string{ns, "ecr-preflight"}},
	} {
		if !strings.Contains(notes, c.command) {
			t.Errorf("NOTES lack %q", c.command)
			continue
		}
		// A few audit rounds (10s apart) at most, each command on its own
		// budget, so that one missing result does not hide the others.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		var res harness.Result
		for {
			res = s.env.Kubectl(ctx, strings.Fields(c.command)[1:]...)
			if res.Err == nil && containsAll(res.Stdout, c.want...) || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Second)
		}
		cancel()
		t.Logf("$ %s  (exit: %v)\n%s", res.Command, res.Err, res.Output)
		wantAll(t, c.command, res.Stdout, c.want...)
	}

	metrics := "http://127.0.0.1:" + strconv.Itoa(r.metricsPort) + "/metrics"
	samples := scrape(t, caseContext(t), metrics)
	var verdict bool
	for _, m := range samples {
		labels, ok := chartMetrics[m.name]
		if !ok {
			continue
		}
		if got := slices.Sorted(maps.Keys(m.labels)); !slices.Equal(got, slices.Sorted(slices.Values(labels))) {
			t.Errorf("%s has labels %v; the alerts and the dashboard read %v", m.name, got, labels)
		}
		if m.name == "ecr_preflight_workload_image_verdict" && m.labels["namespace"] == ns && m.labels["name"] == workload {
			verdict = true
			if m.labels["kind"] != "Deployment" || m.labels["verdict"] != "not-pullable" || m.labels["image"] != s.env.Seed.Image || m.value != 1 {
				t.Errorf("%s%v = %v: want kind Deployment, verdict not-pullable, image %s, 1", m.name, m.labels, m.value, s.env.Seed.Image)
			}
		}
	}
	if !verdict {
		t.Errorf("%s has no ecr_preflight_workload_image_verdict for %s/%s", metrics, ns, workload)
	}
	for _, name := range []string{"ecr_preflight_audit_last_completion_timestamp_seconds", "ecr_preflight_audit_workloads"} {
		if v, ok := sampleValue(samples, name); !ok || v <= 0 {
			t.Errorf("%s = %v (exported: %v), want it above 0 after an audit", name, v, ok)
		}
	}
	if _, ok := sampleValue(samples, "ecr_preflight_audit_duration_seconds"); !ok {
		t.Error("ecr_preflight_audit_duration_seconds is not exported after an audit")
	}
}

func containsAll(text string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(text, sub) {
			return false
		}
	}
	return true
}

// promSample is one sample of the Prometheus text format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads every sample of a /metrics endpoint.
func scrape(t *testing.T, ctx context.Context, url string) []promSample {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: HTTP %d, %v", url, resp.StatusCode, err)
	}
	var out []promSample
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m, err := parseSample(line)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		out = append(out, m)
	}
	return out
}

// parseSample parses `name{a="x",b="y\"z"} 1` (labels optional, quoted
// values with the format's escapes, an optional timestamp).
func parseSample(line string) (promSample, error) {
	m := promSample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return m, fmt.Errorf("no value in %q", line)
	}
	m.name, line = line[:i], line[i:]
	if strings.HasPrefix(line, "{") {
		line = line[1:]
		for !strings.HasPrefix(line, "}") {
			key, rest, ok := strings.Cut(line, `="`)
			if !ok {
				return m, fmt.Errorf("bad labels in %s: %q", m.name, line)
			}
			var v strings.Builder
			for ; rest != "" && rest[0] != '"'; rest = rest[1:] {
				if rest[0] == '\\' && len(rest) > 1 {
					rest = rest[1:]
					if rest[0] == 'n' {
						v.WriteByte('\n')
						continue
					}
				}
				v.WriteByte(rest[0])
			}
			if rest == "" {
				return m, fmt.Errorf("unterminated label value in %s", m.name)
			}
			m.labels[strings.TrimSpace(key)] = v.String()
			line = strings.TrimPrefix(rest[1:], ",")
		}
		line = line[1:]
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return m, fmt.Errorf("no value for %s", m.name)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return m, fmt.Errorf("value of %s: %w", m.name, err)
	}
	m.value = v
	return m, nil
}

// sampleValue is the value of the unlabelled metric name.
func sampleValue(samples []promSample, name string) (float64, bool) {
	for _, m := range samples {
		if m.name == name && len(m.labels) == 0 {
			return m.value, true
		}
	}
	return 0, false
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
	// Objects the values send elsewhere (the Grafana dashboard) need their
	// namespace.
	others := map[string]bool{}
	for _, o := range objs {
		if o.GetNamespace() != "" && o.GetNamespace() != ns && !others[o.GetNamespace()] {
			others[o.GetNamespace()] = true
			s.env.CreateNamespace(t, o.GetNamespace(), "", nil)
		}
	}
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
		role := convert[rbacv1.Role](t, one(t, objs, "Role"))
		if len(role.Rules) < 2 {
			t.Errorf("the Role has %d rules, want the Secret's and the Lease's at least", len(role.Rules))
		}
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
		if len(find(objs, "Secret")) != 0 {
			t.Error("certManager mode renders a Secret: the process needs no Secret access")
		}
		// The audit (on by default) elects with a Lease of its own: the
		// Role grants it by name, and nothing else.
		checkAuditLeaseRole(t, "certManager", objs, args)
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
		for _, kind := range []string{"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule"} {
			one(t, objs, kind)
		}
		if cms := find(objs, "ConfigMap"); len(cms) != 2 { // static node pools, dashboard
			t.Errorf("maximal: %d ConfigMaps, want the static node pools' and the Grafana dashboard's", len(cms))
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
	// Who pulls: the example node role (replaced by the seed's), or the
	// node group of the EKS cluster the command names (made here).
	const exampleRole = "arn:aws:iam::111122223333:role/EksNodeGroupRole"
	found := false
	for i, w := range words {
		if strings.Contains(w, exampleRole) {
			words[i] = strings.ReplaceAll(w, exampleRole, s.env.Seed.RoleARN)
			found = true
		}
		if cluster, ok := strings.CutPrefix(w, "nodePools.clusterName="); ok {
			s.createCluster(t, cluster)
			found = true
		}
	}
	if !found {
		t.Fatalf("the README's helm install %q sets neither nodePools.clusterName nor the example node role %s", words, exampleRole)
	}
	return words
}

// createCluster makes the node pools the README's install finds when it
// names an EKS cluster: the cluster, in moto, without node groups (moto
// takes only 12-digit accounts in a node group's role, and the seed's role
// is in the workshop's 10-digit one; the cluster's own role is never
// read), and a Node of the API server on an EC2 instance whose profile
// holds the seed's role, as a node of a managed node group is, which
// discovery from Nodes (on by default) finds. The Node stays for the
// cases after this one (the upgrade restarts the process).
func (s *chartSuite) createCluster(t *testing.T, name string) {
	t.Helper()
	ctx := caseContext(t)
	if _, err := eks.NewFromConfig(s.env.Moto.Config()).CreateCluster(ctx, &eks.CreateClusterInput{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::111122223333:role/eks-cluster"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: []string{"subnet-1"}},
	}); err != nil {
		t.Fatalf("creating the EKS cluster %s in moto: %v", name, err)
	}
	providerID, err := s.env.Seed.Account.RunNode(ctx, "us-west-2a", awsseed.SeedRoleName)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-1-2.ec2.internal", Labels: map[string]string{
			"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux", "eks.amazonaws.com/nodegroup": "general",
		}},
		Spec: corev1.NodeSpec{ProviderID: providerID},
	}
	if err := s.env.Client(t, nil).Create(ctx, node); err != nil {
		t.Fatalf("creating Node %s: %v", node.Name, err)
	}
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
	// is roomier for a cold moto under -race (as the harness's), the
	// process is stopped by the test, with no endpoints to drain, and it
	// audits every 10s (the least serve takes), so that a case sees the
	// audit's results in seconds.
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
		"--set", "audit.interval=10s",
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
	wantAll(t, "the NOTES of helm install", res.Stdout, "Mode: warn", "Certificates: selfManaged", "kubectl apply --dry-run=server",
		"Audit: every 10s", "kubectl get events --field-selector reason=ImageNotPullable -A", "kubectl get policyreports -A",
		"ecr_preflight_workload_image_verdict")

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
		// Inside this case: its namespace goes when it ends.
		t.Run("the audit reports the running Deployment where NOTES says: an Event, a PolicyReport, the gauges", func(t *testing.T) {
			s.checkAuditResults(t, r, res.Stdout, ns, "ui-private")
		})
	})
	t.Run("the one-line test of NOTES.txt shows the warning", func(t *testing.T) { s.runNotesTest(t, res.Stdout) })
	t.Run("matchConditions: only objects with an ECR image reach the webhook, ephemeral containers included", func(t *testing.T) {
		s.testMatchConditions(t, r)
	})
	noForbidden(t, r.wh)
}

// noForbidden fails t if the process was refused anything by the API
// server: the chart's RBAC must be all it needs. Not RBAC: a refusal to
// create in a namespace being deleted, which envtest (no namespace
// controller) leaves Terminating for good once a case deletes it, while
// the audit still finds its workloads.
func noForbidden(t *testing.T, wh *harness.Webhook) {
	t.Helper()
	for line := range strings.Lines(wh.Logs()) {
		if strings.Contains(strings.ToLower(line), "forbidden") && !strings.Contains(line, "because it is being terminated") {
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
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			// The pod the kubelet would run: this process stands for it.
			env = append(env, e.Name+"="+dep.Name+"-e2e")
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
// its own objects, by name, the workloads it audits, and nothing else.
func (s *chartSuite) checkRBAC(t *testing.T, r *chartRelease, serviceAccount, secret, vwc string) {
	t.Helper()
	s.checkAccess(t, r.namespace, serviceAccount, []accessCheck{
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
		{"get", "", "configmaps", r.namespace, "", false},
		// The continuous audit (audit.enabled, on by default): every
		// checked kind listed in every namespace, never watched, read one
		// by one nor written; Events created and PolicyReports written in
		// the workloads' namespaces.
		{"list", "apps", "deployments", "", "", true},
		{"watch", "apps", "deployments", "", "", false},
		{"list", "apps", "statefulsets", "", "", true},
		{"list", "apps", "daemonsets", "", "", true},
		{"list", "apps", "replicasets", "", "", true},
		{"list", "batch", "jobs", "", "", true},
		{"list", "batch", "cronjobs", "", "", true},
		{"list", "", "pods", "", "", true},
		{"watch", "", "pods", "", "", false},
		{"get", "apps", "deployments", r.namespace, "", false},
		{"update", "apps", "deployments", "shop", "ui", false},
		{"delete", "", "pods", "shop", "ui-0", false},
		{"get", "", "pods", "shop", "ui-0", false},
		{"create", "", "events", "chart-seed-warn", "", true},
		{"patch", "", "events", "shop", "ui.17f0a1b2c3d4e5f6", false},
		{"create", "events.k8s.io", "events", "shop", "", true},
		{"delete", "", "events", "shop", "ui.17f0a1b2c3d4e5f6", false},
		{"list", "wgpolicyk8s.io", "policyreports", "", "", true},
		{"create", "wgpolicyk8s.io", "policyreports", "shop", "", true},
		{"patch", "wgpolicyk8s.io", "policyreports", "shop", "ecr-preflight", true},
		{"delete", "wgpolicyk8s.io", "policyreports", "shop", "ecr-preflight", true},
		{"create", "wgpolicyk8s.io", "clusterpolicyreports", "", "", false},
	})
}

// accessCheck is one question to the API server's authorizer: may the
// ServiceAccount verb the resource (in namespace, named name)?
type accessCheck struct {
	verb, group, resource, namespace, name string
	allowed                                bool
}

// checkAccess asks each check with a SubjectAccessReview for the
// ServiceAccount namespace/serviceAccount (with the groups the API server
// gives one).
func (s *chartSuite) checkAccess(t *testing.T, namespace, serviceAccount string, checks []accessCheck) {
	t.Helper()
	c := s.env.Client(t, nil)
	user := "system:serviceaccount:" + namespace + ":" + serviceAccount
	for _, q := range checks {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: q.verb, Group: q.group, Resource: q.resource, Namespace: q.namespace, Name: q.name,
			},
		}}
		if err := c.Create(caseContext(t), sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != q.allowed {
			t.Errorf("%s may %s %s %q in %q: %v, want %v", serviceAccount, q.verb, qualified(q.group, q.resource), q.name, q.namespace, sar.Status.Allowed, q.allowed)
		}
	}
}

// qualified is resource.group, as kubectl names it (pods, deployments.apps).
func qualified(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
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
	// The placeholders a user fills in: without a node role in the values
	// NOTES cannot know the account either.
	line = strings.ReplaceAll(line, "REPOSITORY", awsseed.SeedRepository)
	line = strings.ReplaceAll(line, "REGION", moto.Region)
	line = strings.ReplaceAll(line, "ACCOUNT.", awsseed.SeedAccount+".")
	if !strings.Contains(line, awsseed.SeedAccount+".dkr.ecr."+moto.Region+".amazonaws.com/"+awsseed.SeedRepository+":") {
		t.Fatalf("NOTES' test %q does not name a repository of the seed's registry", line)
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
// Prometheus Operator's ServiceMonitor and PrometheusRule. The stubs give
// the kinds, versions and scope only (any spec is accepted), so a dry-run
// proves the objects' kind, apiVersion and namespace; the tests check
// their spec themselves.
//
// Karpenter's NodePool and EC2NodeClass (cluster-scoped, empty) are there
// so that the process's node pool discovery really lists them with the
// chart's RBAC, as in a cluster with Karpenter, rather than skipping kinds
// the API server does not know; the PolicyReport, so that the process's
// audit writes its reports with the chart's RBAC, as in a cluster with
// Kyverno or Policy Reporter.
var stubCRDs = []struct {
	group, version, kind, plural string
	cluster                      bool
}{
	{group: "cert-manager.io", kind: "Issuer", plural: "issuers"},
	{group: "cert-manager.io", kind: "Certificate", plural: "certificates"},
	{group: "monitoring.coreos.com", kind: "ServiceMonitor", plural: "servicemonitors"},
	{group: "monitoring.coreos.com", kind: "PrometheusRule", plural: "prometheusrules"},
	{group: "karpenter.sh", kind: "NodePool", plural: "nodepools", cluster: true},
	{group: "karpenter.k8s.aws", kind: "EC2NodeClass", plural: "ec2nodeclasses", cluster: true},
	{group: "wgpolicyk8s.io", version: "v1alpha2", kind: "PolicyReport", plural: "policyreports"},
}

// stubVersion is the version a stub CRD serves: its own, else v1.
func stubVersion(v string) string { return cmp.Or(v, "v1") }

func installStubCRDs(t *testing.T, env *harness.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := env.Client(t, nil)
	for _, crd := range stubCRDs {
		version, scope := stubVersion(crd.version), "Namespaced"
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
				"apiVersion": crd.group + "/" + stubVersion(crd.version), "kind": crd.kind,
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
