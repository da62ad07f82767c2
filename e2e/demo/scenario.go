package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/discovery"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/awsseed"
	"github.com/ecr-preflight/ecr-preflight/webhook"
)

// namespace is where the workshop's Deployment lives.
const namespace = "default"

// play runs the scenario. Every check that fails ends it through tb.Fatalf,
// which makes the demo exit non-zero.
func play(tb testing.TB, n *narrator, binary string) {
	ctx := tb.Context()
	n.say("ecr-preflight demo: the EKS workshop's ImagePullBackOff, caught at kubectl apply time.")
	n.say("Starting a local kube-apiserver, an AWS emulator and the webhook (about 10 seconds)...")

	env := harness.Start(tb, harness.Options{Binary: binary})
	wh := env.Serve(tb, harness.ServeOptions{})
	env.Register(tb, harness.Hook{Name: "ecr-preflight", Webhook: wh, FailurePolicy: admissionregistrationv1.Ignore})
	if err := env.AwaitMode(ctx, namespace, "warn"); err != nil {
		tb.Fatal(err)
	}
	seed := env.Seed

	// 1. Setup.
	n.step(1, "Setup")
	version := "unknown version"
	if dc, err := discovery.NewDiscoveryClientForConfig(env.Config); err == nil {
		if v, err := dc.ServerVersion(); err == nil {
			version = v.GitVersion
		}
	}
	n.say("Kubernetes  kube-apiserver %s + etcd (envtest, bin/k8s) at %s", version, strings.TrimSuffix(env.Config.Host, "/"))
	n.say("AWS         moto_server at %s, acting as account %s (region us-west-2)", env.Moto.URL, awsseed.SeedAccount)
	n.say("webhook     ecr-preflight serve --mode warn --node-role-arn %s --kubeconfig ... (a subprocess)", seed.RoleARN)
	n.say("            at %s, registered for apps/v1 Deployments (CREATE, UPDATE),", wh.ValidateURL())
	n.say("            failurePolicy Ignore (as the README recommends), timeoutSeconds %d (above the 2s admission budget)", harness.HookTimeoutSeconds)
	n.say("\nThe AWS state, as the workshop found it:")
	showImage(tb, n, env)
	showRolePolicies(tb, n, env)
	showPolicy(tb, n, env, "aws ecr get-repository-policy --repository-name "+awsseed.SeedRepository)
	res := check(tb, n, env)
	if res.code != 1 || !strings.Contains(res.output, "RepositoryPolicyDenies") {
		tb.Fatalf("step 1: ecr-preflight check exited %d, want 1 with RepositoryPolicyDenies", res.code)
	}
	n.ok("the image exists and the role has AmazonEC2ContainerRegistryReadOnly, yet statement %q denies the pull", awsseed.SeedStatement)

	// 2. Warn mode.
	n.step(2, "Warn mode (the default): accepted, with a warning")
	n.say("%s is the workshop's Deployment ui-private (app=app-private), image %s.", harness.ManifestFile, seed.Image)
	apply := env.Kubectl(ctx, "apply", "-f", harness.ManifestFile)
	n.kubectl(apply)
	if apply.Err != nil || !strings.Contains(strings.Join(apply.Warnings(), "\n"), `statement "new policy"`) {
		tb.Fatalf("step 2: %s: err %v, want accepted with a warning naming statement \"new policy\"", apply.Command, apply.Err)
	}
	n.ok("accepted; the warning names the deciding statement before any pod exists")

	// 3. Deny mode.
	n.step(3, "Deny mode: rejected, with the whole story")
	n.say("The namespace label %s overrides the webhook's --mode for one namespace.", webhook.ModeLabel)
	label := env.Kubectl(ctx, "label", "namespace", namespace, webhook.ModeLabel+"=deny")
	n.kubectl(label)
	if label.Err != nil {
		tb.Fatalf("step 3: %s: %v", label.Command, label.Err)
	}
	// The webhook reads the label from its watch cache: wait until it has
	// it, so the apply below cannot race the watch.
	if err := env.AwaitMode(ctx, namespace, "deny"); err != nil {
		tb.Fatal(err)
	}
	n.say("\nAn UPDATE that keeps the image is never rejected (scaling a running workload must keep working),")
	n.say("so start over: delete the Deployment and apply it again.")
	del := env.Kubectl(ctx, "delete", "deployment", "ui-private")
	n.kubectl(del)
	if del.Err != nil {
		tb.Fatalf("step 3: %s: %v", del.Command, del.Err)
	}
	apply = env.Kubectl(ctx, "apply", "-f", harness.ManifestFile)
	n.kubectl(apply)
	if apply.Err == nil {
		tb.Fatalf("step 3: %s was accepted, want rejected", apply.Command)
	}
	for _, want := range []string{`statement "new policy"`, seed.RoleARN, "change its Effect to Allow"} {
		if !strings.Contains(apply.Stderr, want) {
			tb.Fatalf("step 3: the rejection does not mention %q", want)
		}
	}
	n.ok("rejected: the image, statement %q, the role, and the fix", awsseed.SeedStatement)

	// 4. The fix.
	n.step(4, "The fix: Effect Allow")
	if err := seed.Fix(ctx); err != nil {
		tb.Fatal(err)
	}
	showPolicy(tb, n, env, "aws ecr set-repository-policy --repository-name "+awsseed.SeedRepository+" --policy-text file://fixed-policy.json")
	res = check(tb, n, env)
	if res.code != 0 || !strings.HasPrefix(res.output, "pullable") {
		tb.Fatalf("step 4: ecr-preflight check exited %d, want 0 (pullable)", res.code)
	}
	n.ok("the node role may pull the image now")

	// 5. Apply again.
	n.step(5, "Apply again: accepted")
	n.say("No waiting for caches: a not-pullable answer is re-checked with fresh AWS data (by default at most every 5s\n" +
		"per lookup, --reverify-interval; the demo's webhook runs with 0s, as you would take longer to fix a policy).")
	allowed := map[string]string{"kind": "Deployment", "operation": "CREATE", "mode": "deny", "decision": "allow"}
	before, err := wh.Counter(ctx, "ecr_preflight_admissions_total", allowed)
	if err != nil {
		tb.Fatal(err)
	}
	apply = env.Kubectl(ctx, "apply", "-f", harness.ManifestFile)
	n.kubectl(apply)
	if apply.Err != nil || len(apply.Warnings()) > 0 || !strings.Contains(apply.Stdout, "created") {
		tb.Fatalf("step 5: %s: err %v, warnings %q, want created without warnings", apply.Command, apply.Err, apply.Warnings())
	}
	// failurePolicy Ignore would also let it through if the webhook were
	// down: make sure it was the webhook that said yes.
	after, err := wh.Counter(ctx, "ecr_preflight_admissions_total", allowed)
	if err != nil {
		tb.Fatal(err)
	}
	if after <= before {
		tb.Fatalf("step 5: the webhook did not answer the apply (ecr_preflight_admissions_total%v stayed at %v)", allowed, before)
	}
	n.ok("accepted by the webhook in deny mode, without a warning: the pods will pull")

	// 6. Clean up: the cleanups registered above run when play returns.
	n.step(6, "Clean up")
	n.say("Stopping the webhook, moto, kube-apiserver and etcd, and removing the temporary files...")
}

// checkResult is what one `ecr-preflight check` printed and returned.
type checkResult struct {
	output string
	code   int
}

// check runs the real `ecr-preflight check` for the seed's image and role.
func check(tb testing.TB, n *narrator, env *harness.Env) checkResult {
	args := []string{"check", "--node-role-arn", env.Seed.RoleARN, env.Seed.Image}
	n.command("ecr-preflight " + strings.Join(args, " "))
	cmd := exec.CommandContext(tb.Context(), env.Binary, args...)
	cmd.Env = env.AWSEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	n.output(out.String())
	var exit *exec.ExitError
	switch {
	case err == nil:
		return checkResult{output: out.String()}
	case errors.As(err, &exit):
		return checkResult{output: out.String(), code: exit.ExitCode()}
	default:
		tb.Fatalf("running %s: %v", env.Binary, err)
		return checkResult{}
	}
}

// showImage shows that the image exists (workshop step 2).
func showImage(tb testing.TB, n *narrator, env *harness.Env) {
	n.equivalent("aws ecr describe-images --repository-name " + awsseed.SeedRepository + " --image-ids imageTag=" + awsseed.SeedTag)
	out, err := env.Seed.Account.ECR.DescribeImages(tb.Context(), &ecr.DescribeImagesInput{
		RepositoryName: aws.String(awsseed.SeedRepository),
		ImageIds:       []ecrtypes.ImageIdentifier{{ImageTag: aws.String(awsseed.SeedTag)}},
	})
	if err != nil || len(out.ImageDetails) != 1 {
		tb.Fatalf("step 1: describing the seed's image: %v", err)
	}
	d := out.ImageDetails[0]
	n.say("registryId %s, repositoryName %s, imageTags %v, imageDigest %s",
		aws.ToString(d.RegistryId), aws.ToString(d.RepositoryName), d.ImageTags, aws.ToString(d.ImageDigest))
}

// showRolePolicies shows the node role's managed policies (workshop step 3).
func showRolePolicies(tb testing.TB, n *narrator, env *harness.Env) {
	n.equivalent("aws iam list-attached-role-policies --role-name " + awsseed.SeedRoleName)
	out, err := env.Seed.Account.IAM.ListAttachedRolePolicies(tb.Context(), &iam.ListAttachedRolePoliciesInput{
		RoleName: aws.String(awsseed.SeedRoleName),
	})
	if err != nil {
		tb.Fatalf("step 1: listing the node role's policies: %v", err)
	}
	for _, p := range out.AttachedPolicies {
		n.say("%s  %s", aws.ToString(p.PolicyName), aws.ToString(p.PolicyArn))
	}
}

// showPolicy shows the repository policy (workshop step 4), after the
// call that cmd names.
func showPolicy(tb testing.TB, n *narrator, env *harness.Env, cmd string) {
	n.equivalent(cmd)
	policy, err := env.RepositoryPolicy(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	n.output(compactPolicy(policy))
}

// compactPolicy indents a policy, keeping each action list on one line so
// the statement fits on a screen.
func compactPolicy(policy string) string {
	var doc struct {
		Version   string
		Statement []struct {
			Sid       string
			Effect    string
			Principal json.RawMessage
			Action    json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return policy
	}
	var b strings.Builder
	b.WriteString("{\n  \"Version\": \"" + doc.Version + "\",\n  \"Statement\": [\n")
	for i, s := range doc.Statement {
		b.WriteString("    {\n      \"Sid\": \"" + s.Sid + "\",\n      \"Effect\": \"" + s.Effect + "\",\n")
		b.WriteString("      \"Principal\": " + string(s.Principal) + ",\n")
		b.WriteString("      \"Action\": " + strings.ReplaceAll(string(s.Action), `","`, `", "`) + "\n    }")
		if i < len(doc.Statement)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}
