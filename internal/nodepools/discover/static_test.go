package discover

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

func TestStaticPools(t *testing.T) {
	got := StaticPools([]string{roleB, roleA, roleB, "not-an-arn"})
	want := []nodepools.Pool{
		{Name: "NodeRoleB", Kind: nodepools.KindStatic, RoleARN: roleB},
		{Name: "NodeRoleA", Kind: nodepools.KindStatic, RoleARN: roleA},
		{Name: "not-an-arn", Kind: nodepools.KindStatic, RoleARN: "not-an-arn"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("StaticPools =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadStaticPools(t *testing.T) {
	got, err := LoadStaticPools(filepath.Join("testdata", "static-pools.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []nodepools.Pool{
		{
			Name: "gpu", Kind: nodepools.KindStatic, RoleARN: "arn:aws:iam::111122223333:role/GpuNodeRole",
			// Sorted, normalized (aarch64 → arm64), without duplicates.
			Platforms: []nodepools.Platform{
				{OS: "linux", Architecture: "amd64"},
				{OS: "linux", Architecture: "arm64"},
				{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"},
			},
			Labels: map[string]string{"team": "ml"},
			Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}},
		},
		{
			Name: "batch", Kind: nodepools.KindStatic, RoleARN: "arn:aws:iam::111122223333:role/eks/BatchPodExecutionRole",
			Fargate: []nodepools.FargateSelector{
				{Namespace: "batch", Labels: map[string]string{"tier": "low"}},
				{Namespace: "jobs"},
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadStaticPools =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadStaticPoolsErrors(t *testing.T) {
	const role = "arn:aws:iam::111122223333:role/NodeRole"
	tests := map[string]struct {
		file string
		want []string // substrings of the error
	}{
		"an unknown field is named": {
			file: "pools:\n- name: a\n  role: " + role + "\n  nodeSelector: {a: b}\n",
			want: []string{`pools[0] (a): json: unknown field "nodeSelector"`},
		},
		"an unknown field of a taint is named with its pool": {
			file: "pools:\n- {name: a, role: " + role + ", taints: [{key: k, effect: NoSchedule, operator: Equal}]}\n",
			want: []string{`pools[0] (a): json: unknown field "operator"`},
		},
		"an unknown top-level field is named": {
			file: "pool:\n- {name: a, role: " + role + "}\n",
			want: []string{`unknown field "pool"`},
		},
		"a pool needs a name": {
			file: "pools:\n- role: " + role + "\n",
			want: []string{"pools[0]: name: required"},
		},
		"a pool needs a role": {
			file: "pools:\n- name: a\n",
			want: []string{"pools[0] (a): role: required"},
		},
		"a role that is not an IAM role ARN": {
			file: "pools:\n- name: a\n  role: arn:aws:iam::111122223333:user/alice\n",
			want: []string{"pools[0] (a): role:", "not an IAM role ARN"},
		},
		"a role session is not a role": {
			file: "pools:\n- name: a\n  role: arn:aws:sts::111122223333:assumed-role/NodeRole/i-0abc\n",
			want: []string{"pools[0] (a): role:", "session of role NodeRole"},
		},
		"names are unique": {
			file: "pools:\n- {name: a, role: " + role + "}\n- {name: b, role: " + role + "}\n- {name: a, role: " + role + "}\n",
			want: []string{`pools[2] (a): name: "a" is also the name of pools[0]`},
		},
		"a platform containerd cannot parse": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [linux/amd64, linux/x y]}\n",
			want: []string{"pools[0] (a): platforms[1]:", "invalid component"},
		},
		"a platform needs its os and its architecture": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [arm64]}\n",
			want: []string{`pools[0] (a): platforms[0]: "arm64": want os/arch[/variant]`},
		},
		"a taint effect must be one Kubernetes knows": {
			file: "pools:\n- {name: a, role: " + role + ", taints: [{key: k, effect: NoRun}]}\n",
			want: []string{`pools[0] (a): taints[0]: effect "NoRun"`},
		},
		"a label key must be a qualified name": {
			file: "pools:\n- {name: a, role: " + role + ", labels: {'bad key': x}}\n",
			want: []string{`pools[0] (a): labels: key "bad key"`},
		},
		"a Fargate selector needs a namespace": {
			file: "pools:\n- {name: a, role: " + role + ", fargateSelectors: [{labels: {a: b}}]}\n",
			want: []string{"pools[0] (a): fargateSelectors[0]: namespace: required"},
		},
		"every bad pool is reported": {
			file: "pools:\n- {name: a}\n- {name: b, role: nope}\n",
			want: []string{"pools[0] (a): role: required", "pools[1] (b): role:"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pools.yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			pools, err := LoadStaticPools(path)
			if err == nil {
				t.Fatalf("LoadStaticPools = %+v, want an error", pools)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadStaticPoolsMissingFile(t *testing.T) {
	if _, err := LoadStaticPools(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadStaticPools of a missing file: %v, want a not-exist error", err)
	}
}
