package discover

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/containerd/platforms"
	corev1 "k8s.io/api/core/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

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
		"a file without pools": {
			file: "pools: []\n",
			want: []string{"no pools in "},
		},
		"an empty file": {
			file: "# nothing yet\n",
			want: []string{"no pools in "},
		},
		"a name is a DNS-1123 subdomain": {
			file: "pools:\n- {name: GPU_pool, role: " + role + "}\n",
			want: []string{`pools[0]: name "GPU_pool": a lowercase RFC 1123 subdomain`},
		},
		"a name with a control character is not printed raw": {
			file: "pools:\n- {name: \"gpu\\x1b[31m\", role: " + role + "}\n",
			want: []string{`pools[0]: name "gpu\x1b[31m"`},
		},
		"a platform's os is linux or windows": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [darwin/arm64]}\n",
			want: []string{`pools[0] (a): platforms[0]: "darwin/arm64": os "darwin": want linux or windows`},
		},
		"an os version is for windows only": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [\"linux(6.1)/amd64\"]}\n",
			want: []string{`platforms[0]: "linux(6.1)/amd64": an os version is a Windows build, for windows only`},
		},
		"an os version is a Windows build": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [\"windows(2022)/amd64\"]}\n",
			want: []string{`platforms[0]: "windows(2022)/amd64": os version "2022": want a Windows build`},
		},
		"os features are not supported": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [\"windows(10.0.20348+win32k)/amd64\"]}\n",
			want: []string{`platforms[0]: "windows(10.0.20348+win32k)/amd64": os features are not supported`},
		},
		"an architecture must be known": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [linux/amd46]}\n",
			want: []string{`platforms[0]: "linux/amd46": architecture "amd46": want one of`},
		},
		"arm64 has no v7": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [linux/arm64/v7]}\n",
			want: []string{`platforms[0]: "linux/arm64/v7": arm64 has no variant "v7"`},
		},
		"arm64 variants are written with a v": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [linux/arm64/8.2]}\n",
			want: []string{`arm64 has no variant "8.2"`},
		},
		"amd64 levels stop at v4": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [linux/amd64/v5]}\n",
			want: []string{`amd64 has no variant "v5"`},
		},
		"arm stops at v8": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [linux/arm/v9]}\n",
			want: []string{`arm has no variant "v9"`},
		},
		"other architectures have no variants": {
			file: "pools:\n- {name: a, role: " + role + ", platforms: [linux/s390x/z15]}\n",
			want: []string{`s390x has no variant "z15"`},
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
			if strings.ContainsFunc(err.Error(), func(r rune) bool { return r != '\n' && unicode.IsControl(r) }) {
				t.Errorf("error %q holds a control character", err)
			}
		})
	}
}

func TestLoadStaticPoolsMissingFile(t *testing.T) {
	if _, err := LoadStaticPools(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadStaticPools of a missing file: %v, want a not-exist error", err)
	}
}

func TestParsePlatform(t *testing.T) {
	tests := map[string]nodepools.Platform{
		"linux/arm64/v8":                 {OS: "linux", Architecture: "arm64"},
		"linux/aarch64":                  {OS: "linux", Architecture: "arm64"},
		"linux/arm64/v8.2":               {OS: "linux", Architecture: "arm64", Variant: "v8.2"},
		"linux/arm64/9":                  {OS: "linux", Architecture: "arm64", Variant: "v9"},
		"linux/arm64/v9.7":               {OS: "linux", Architecture: "arm64", Variant: "v9.7"},
		"linux/x86_64/v1":                {OS: "linux", Architecture: "amd64"},
		"linux/amd64/v3":                 {OS: "linux", Architecture: "amd64", Variant: "v3"},
		"linux/arm":                      {OS: "linux", Architecture: "arm", Variant: "v7"},
		"linux/arm/5":                    {OS: "linux", Architecture: "arm", Variant: "v5"},
		"linux/armhf":                    {OS: "linux", Architecture: "arm", Variant: "v7"},
		"Linux/s390x":                    {OS: "linux", Architecture: "s390x"},
		"windows(10.0.20348)/amd64":      {OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"},
		"windows(10.0.20348.2227)/amd64": {OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.2227"},
	}
	for s, want := range tests {
		t.Run(s, func(t *testing.T) {
			got, err := parsePlatform(s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parsePlatform(%q) = %+v, want %+v", s, got, want)
			}
			// Every platform accepted is one containerd matches: an image
			// built for exactly it would run.
			if !platforms.Only(got).Match(got) {
				t.Errorf("containerd does not match %s with itself", platforms.FormatAll(got))
			}
		})
	}
}
