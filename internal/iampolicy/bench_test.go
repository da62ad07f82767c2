package iampolicy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

// Managed policies as AWS publishes them (default versions).
const (
	ecrReadOnly = `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
  "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
  "ecr:GetRepositoryPolicy", "ecr:DescribeRepositories", "ecr:ListImages", "ecr:DescribeImages",
  "ecr:BatchGetImage", "ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview",
  "ecr:ListTagsForResource", "ecr:DescribeImageScanFindings"], "Resource": "*"}]}`
	ecrPullOnly = `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
  "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
  "ecr:BatchImportUpstreamImage"], "Resource": "*"}]}`
	eksWorkerNode = `{"Version": "2012-10-17", "Statement": [
  {"Sid": "WorkerNodePermissions", "Effect": "Allow", "Action": ["ec2:DescribeInstances",
    "ec2:DescribeInstanceTypes", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets", "ec2:DescribeVolumes", "ec2:DescribeVolumesModifications",
    "ec2:DescribeVpcs", "eks:DescribeCluster", "eks-auth:AssumeRoleForPodIdentity"], "Resource": "*"}]}`
	eksCNI = `{"Version": "2012-10-17", "Statement": [
  {"Sid": "AmazonEKSCNIPolicy", "Effect": "Allow", "Action": ["ec2:AssignPrivateIpAddresses",
    "ec2:AttachNetworkInterface", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
    "ec2:DescribeInstances", "ec2:DescribeTags", "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeInstanceTypes", "ec2:DescribeSubnets", "ec2:DetachNetworkInterface",
    "ec2:ModifyNetworkInterfaceAttribute", "ec2:UnassignPrivateIpAddresses"], "Resource": "*"},
  {"Sid": "AmazonEKSCNIPolicyENITag", "Effect": "Allow", "Action": ["ec2:CreateTags"],
    "Resource": ["arn:aws:ec2:*:*:network-interface/*"]}]}`
	ssmCore = `{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance",
    "ssm:GetDocument", "ssm:DescribeDocument", "ssm:GetManifest", "ssm:GetParameter", "ssm:GetParameters",
    "ssm:ListAssociations", "ssm:ListInstanceAssociations", "ssm:PutInventory", "ssm:PutComplianceItems",
    "ssm:PutConfigurePackageResult", "ssm:UpdateAssociationStatus", "ssm:UpdateInstanceAssociationStatus",
    "ssm:UpdateInstanceInformation"], "Resource": "*"},
  {"Effect": "Allow", "Action": ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"], "Resource": "*"},
  {"Effect": "Allow", "Action": ["ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
    "ec2messages:FailMessage", "ec2messages:GetEndpoint", "ec2messages:GetMessages",
    "ec2messages:SendReply"], "Resource": "*"}]}`
	cloudWatchAgent = `{"Version": "2012-10-17", "Statement": [
  {"Sid": "CWACloudWatchServerPermissions", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData",
    "ec2:DescribeVolumes", "ec2:DescribeTags", "logs:PutLogEvents", "logs:PutRetentionPolicy",
    "logs:DescribeLogStreams", "logs:DescribeLogGroups", "logs:CreateLogStream", "logs:CreateLogGroup",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
    "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"], "Resource": "*"},
  {"Sid": "CWASSMServerPermissions", "Effect": "Allow", "Action": ["ssm:GetParameter"],
    "Resource": "arn:aws:ssm:*:*:parameter/AmazonCloudWatch-*"}]}`
	denyOutsideVpce = `{"Version": "2012-10-17", "Statement": [
  {"Sid": "DenyEcrOutsideVpce", "Effect": "Deny", "Action": "ecr:*", "Resource": "*",
   "Condition": {"StringNotEqualsIfExists": {"aws:SourceVpce": ["vpce-0a1", "vpce-0b2"]},
                 "BoolIfExists": {"aws:ViaAWSService": "false"}}}]}`
	s3Logs = `{"Version": "2012-10-17", "Statement": [
  {"Sid": "Logs", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
   "Resource": "arn:aws:s3:::node-logs-${aws:PrincipalAccount}/*"}]}`
	teamRepos = `{"Version": "2012-10-17", "Statement": [
  {"Sid": "TeamRepos", "Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
   "Resource": "arn:aws:ecr:us-west-2:111122223333:repository/team-*",
   "Condition": {"StringEquals": {"aws:RequestedRegion": "us-west-2"}}}]}`
	kmsDecrypt = `{"Version": "2012-10-17", "Statement": [
  {"Sid": "Kms", "Effect": "Allow", "Action": "kms:Decrypt",
   "Resource": "arn:aws:kms:us-west-2:111122223333:key/*",
   "Condition": {"StringLike": {"kms:ViaService": "ecr.*.amazonaws.com"}}}]}`
)

// repositoryPolicy builds a 20-statement repository policy: grants to other
// accounts and roles, a few conditions, and the statement that lets the node
// role in.
func repositoryPolicy() string {
	var stmts []string
	for i := range 18 {
		acct := fmt.Sprintf("%012d", 200000000000+i)
		switch i % 3 {
		case 0:
			stmts = append(stmts, fmt.Sprintf(`{"Sid": "Pull%d", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root"},
  "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}`, i, acct))
		case 1:
			stmts = append(stmts, fmt.Sprintf(`{"Sid": "Role%d", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::%s:role/ci", "arn:aws:iam::%s:role/deploy"]},
  "Action": "ecr:*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}}`, i, acct, acct))
		default:
			stmts = append(stmts, fmt.Sprintf(`{"Sid": "Lambda%d", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
  "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
  "Condition": {"StringLike": {"aws:sourceArn": "arn:aws:lambda:us-west-2:%s:function:*"}}}`, i, acct))
		}
	}
	stmts = append(stmts,
		`{"Sid": "DenyPushFromOutside", "Effect": "Deny", "Principal": "*", "Action": ["ecr:PutImage", "ecr:InitiateLayerUpload"],
  "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/ci-*"}}}`,
		`{"Sid": "NodePull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/EksNodeGroupRole"},
  "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}`)
	return `{"Version": "2012-10-17", "Statement": [` + strings.Join(stmts, ",\n") + `]}`
}

func mustParse(tb testing.TB, kind iampolicy.Source, doc string) *iampolicy.Policy {
	tb.Helper()
	p, err := iampolicy.ParseAs([]byte(doc), kind)
	if err != nil {
		tb.Fatalf("parsing %s policy: %v", kind, err)
	}
	return p
}

// BenchmarkEvaluatePull is the admission path's hot call: one node role with
// ten attached policies and a 20-statement repository policy, asked for
// ecr:BatchGetImage.
func BenchmarkEvaluatePull(b *testing.B) {
	docs := map[string]string{
		"AmazonEC2ContainerRegistryReadOnly": ecrReadOnly, "AmazonEC2ContainerRegistryPullOnly": ecrPullOnly,
		"AmazonEKSWorkerNodePolicy": eksWorkerNode, "AmazonEKS_CNI_Policy": eksCNI,
		"AmazonSSMManagedInstanceCore": ssmCore, "CloudWatchAgentServerPolicy": cloudWatchAgent,
		"deny-ecr-outside-vpce": denyOutsideVpce, "node-logs": s3Logs, "team-repos": teamRepos, "kms-decrypt": kmsDecrypt,
	}
	var set iampolicy.PolicySet
	for _, name := range []string{"AmazonEC2ContainerRegistryReadOnly", "AmazonEC2ContainerRegistryPullOnly",
		"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonSSMManagedInstanceCore",
		"CloudWatchAgentServerPolicy", "deny-ecr-outside-vpce", "node-logs", "team-repos", "kms-decrypt"} {
		set.Identity = append(set.Identity, iampolicy.NamedPolicy{Name: name, Policy: mustParse(b, iampolicy.SourceIdentity, docs[name])})
	}
	set.Resource = &iampolicy.NamedPolicy{Name: "repository policy of app", Policy: mustParse(b, iampolicy.SourceResource, repositoryPolicy())}
	if n := set.Resource.Policy.NumStatements(); n != 20 {
		b.Fatalf("repository policy has %d statements, want 20", n)
	}
	req := iampolicy.Request{
		Principal: "arn:aws:sts::111122223333:assumed-role/EksNodeGroupRole/i-0abc",
		Action:    "ecr:BatchGetImage",
		Resource:  "arn:aws:ecr:us-west-2:111122223333:repository/app",
		Context:   map[string][]string{"aws:SourceVpce": {"vpce-0a1"}},
		Now:       time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
	}
	if d := iampolicy.Evaluate(req, set); d.Decision != iampolicy.Allow {
		b.Fatalf("decision = %+v, want allow", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		iampolicy.Evaluate(req, set)
	}
}
