package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

const poolsFile = `pools:
- name: gpu
  role: arn:aws:iam::111122223333:role/GpuNodeRole
  platforms: [linux/amd64]
  labels: {team: ml}
  taints: [{key: nvidia.com/gpu, value: "true", effect: NoSchedule}]
- name: batch
  role: arn:aws:iam::111122223333:role/FargatePod
  fargateSelectors: [{namespace: batch, labels: {team: ml}}]
`

// TestPoolsCommand: static pools, as a table and as JSON, without the
// Kubernetes API or AWS.
func TestPoolsCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pools.yaml")
	if err := os.WriteFile(file, []byte(poolsFile), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"pools", "--discover-nodes=false", "--node-pools-config", file, "--node-role-arn", testRoleARN}

	var out, errOut bytes.Buffer
	if code := Execute(args, nil, &out, &errOut); code != ExitOK {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"NAME  KIND  ROLE  PLATFORMS  NODES  SCHEDULING",
		"EksNodeGroupRole  static  " + testRoleARN + "  unknown  0  -",
		"batch  static  arn:aws:iam::111122223333:role/FargatePod  unknown  0  fargate namespace=batch{team=ml}",
		"gpu  static  arn:aws:iam::111122223333:role/GpuNodeRole  linux/amd64  0  labels team=ml; taint nvidia.com/gpu=true:NoSchedule",
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, l := range lines {
		if got, w := strings.Fields(l), strings.Fields(want[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d:\n got %q\nwant %q", i, l, want[i])
		}
	}

	out.Reset()
	if code := Execute(append(args, "-o", "json"), nil, &out, &errOut); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var doc struct {
		Pools []nodepools.Pool `json:"pools"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out.String())
	}
	if len(doc.Pools) != 3 || doc.Pools[2].Name != "gpu" || doc.Pools[2].Platforms[0].Architecture != "amd64" || doc.Pools[1].Fargate[0].Namespace != "batch" {
		t.Errorf("JSON pools: %+v", doc.Pools)
	}
}

func TestPoolsUsageErrors(t *testing.T) {
	var out bytes.Buffer
	code := Execute([]string{"pools", "--discover-nodes=false"}, nil, &out, &out)
	if code != ExitUsage || !strings.Contains(out.String(), "node pools are needed") {
		t.Errorf("exit %d: %s", code, out.String())
	}
}
