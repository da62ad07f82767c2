package discover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// StaticPools turns --node-role-arn values into pools of KindStatic, one per
// distinct ARN, named after the role's name (arn:aws:iam::111122223333:role/eks/NodeRole
// → "NodeRole"). They have no labels, taints or platforms: a pool given only
// by its role accepts every pod, and its platforms are unknown. The ARNs are
// expected to have been validated (awsclient.ParseIAMRoleARN) where the flag
// was read; one that does not parse is named by the whole string.
func StaticPools(roleARNs []string) []nodepools.Pool {
	var pools []nodepools.Pool
	seen := map[string]bool{}
	for _, arn := range roleARNs {
		if seen[arn] {
			continue
		}
		seen[arn] = true
		pools = append(pools, nodepools.Pool{Name: roleName(arn), Kind: nodepools.KindStatic, RoleARN: arn})
	}
	return pools
}

// roleName is the name of the role an ARN names, or the ARN itself when it
// does not parse.
func roleName(arn string) string {
	r, err := awsclient.ParseRoleARN(arn)
	if err != nil {
		return arn
	}
	return r.Name
}

// staticFile is the pools file LoadStaticPools reads.
type staticFile struct {
	Pools []json.RawMessage `json:"pools"` // staticPool, decoded one by one
}

// staticPool is one pool of the pools file.
type staticPool struct {
	Name string `json:"name"`
	// Role is the IAM role ARN the pool's nodes (or Fargate) pull as.
	Role string `json:"role"`
	// Platforms in containerd's notation, os[(os.version)]/arch[/variant].
	Platforms        []string                    `json:"platforms"`
	Labels           map[string]string           `json:"labels"`
	Taints           []corev1.Taint              `json:"taints"`
	FargateSelectors []nodepools.FargateSelector `json:"fargateSelectors"`
}

// LoadStaticPools reads named static pools from a YAML (or JSON) file:
//
//	pools:
//	- name: gpu                                          # required, unique
//	  role: arn:aws:iam::111122223333:role/GpuNodeRole   # required, an IAM role ARN
//	  platforms: [linux/amd64, linux/arm64/v8, "windows(10.0.20348)/amd64"]
//	  labels: {team: ml}
//	  taints: [{key: nvidia.com/gpu, value: "true", effect: NoSchedule}]
//	  fargateSelectors: [{namespace: batch, labels: {team: ml}}]
//
// Platforms use containerd's notation (github.com/containerd/platforms
// Parse): os/arch[/variant], with a Windows build as the OS version in
// parentheses after the OS, "windows(10.0.20348)/amd64"; both the OS and
// the architecture must be given (containerd would otherwise fill the
// missing one from the machine reading the file) and are normalized
// (aarch64 → arm64, x86_64 → amd64). fargateSelectors make the pool
// Fargate-like (Pool.Fargate is set): it is matched as a Fargate profile
// is. Unknown fields are errors naming the field. Every error names the
// pool by index and name and the field at fault; all bad pools are
// reported at once. The pools come back in file order, of KindStatic.
func LoadStaticPools(path string) ([]nodepools.Pool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading static pools: %w", err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("reading static pools from %s: %w", path, err)
	}
	var file staticFile
	if err := decodeStrict(js, &file); err != nil {
		return nil, fmt.Errorf("reading static pools from %s: %w", path, err)
	}
	pools := make([]nodepools.Pool, 0, len(file.Pools))
	index := map[string]int{}
	var errs []error
	for i, raw := range file.Pools {
		var sp staticPool
		decodeErr := decodeStrict(raw, &sp)
		if decodeErr != nil {
			// Name the pool even though one of its fields is unknown.
			_ = json.Unmarshal(raw, &sp)
		}
		where := fmt.Sprintf("pools[%d]", i)
		if sp.Name != "" {
			where = fmt.Sprintf("pools[%d] (%s)", i, sp.Name)
		}
		if decodeErr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, decodeErr))
			continue
		}
		if first, dup := index[sp.Name]; dup && sp.Name != "" {
			errs = append(errs, fmt.Errorf("%s: name: %q is also the name of pools[%d]", where, sp.Name, first))
			continue
		}
		index[sp.Name] = i
		pool, err := sp.pool()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		pools = append(pools, pool)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("static pools in %s: %w", path, err)
	}
	return pools, nil
}

// decodeStrict decodes JSON into v; an unknown field is an error naming it.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// pool validates one entry of the pools file and returns it as a Pool.
func (sp staticPool) pool() (nodepools.Pool, error) {
	if sp.Name == "" {
		return nodepools.Pool{}, errors.New("name: required")
	}
	if sp.Role == "" {
		return nodepools.Pool{}, errors.New("role: required")
	}
	if _, err := awsclient.ParseIAMRoleARN(sp.Role); err != nil {
		return nodepools.Pool{}, fmt.Errorf("role: %w", err)
	}
	pool := nodepools.Pool{Name: sp.Name, Kind: nodepools.KindStatic, RoleARN: sp.Role}
	for i, s := range sp.Platforms {
		p, err := parsePlatform(s)
		if err != nil {
			return nodepools.Pool{}, fmt.Errorf("platforms[%d]: %w", i, err)
		}
		pool.Platforms = appendPlatform(pool.Platforms, p)
	}
	for k, v := range sp.Labels {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			return nodepools.Pool{}, fmt.Errorf("labels: key %q: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			return nodepools.Pool{}, fmt.Errorf("labels: %s: value %q: %s", k, v, strings.Join(msgs, "; "))
		}
	}
	if len(sp.Labels) > 0 {
		pool.Labels = sp.Labels
	}
	for i, t := range sp.Taints {
		if err := validTaint(t); err != nil {
			return nodepools.Pool{}, fmt.Errorf("taints[%d]: %w", i, err)
		}
		pool.Taints = append(pool.Taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
	}
	for i, sel := range sp.FargateSelectors {
		if sel.Namespace == "" {
			return nodepools.Pool{}, fmt.Errorf("fargateSelectors[%d]: namespace: required", i)
		}
		pool.Fargate = append(pool.Fargate, sel)
	}
	return pool, nil
}

// parsePlatform parses os[(os.version)]/arch[/variant] and normalizes it.
func parsePlatform(s string) (nodepools.Platform, error) {
	if !strings.Contains(s, "/") {
		return nodepools.Platform{}, fmt.Errorf("%q: want os/arch[/variant], such as linux/arm64 or windows(10.0.20348)/amd64", s)
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return nodepools.Platform{}, err
	}
	return platforms.Normalize(p), nil
}

// validTaint checks a taint as the API server does for a Node: a qualified
// key, a label-like value, one of the three effects.
func validTaint(t corev1.Taint) error {
	if msgs := validation.IsQualifiedName(t.Key); len(msgs) > 0 {
		return fmt.Errorf("key %q: %s", t.Key, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
		return fmt.Errorf("value %q: %s", t.Value, strings.Join(msgs, "; "))
	}
	effects := []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}
	if !slices.Contains(effects, t.Effect) {
		return fmt.Errorf("effect %q: want NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
	}
	return nil
}

// appendPlatform adds p unless ps has it already, keeping ps sorted by
// FormatPlatform so that equal sets compare equal.
func appendPlatform(ps []nodepools.Platform, p nodepools.Platform) []nodepools.Platform {
	key := nodepools.FormatPlatform(p)
	i, found := slices.BinarySearchFunc(ps, key, func(q nodepools.Platform, k string) int {
		return strings.Compare(nodepools.FormatPlatform(q), k)
	})
	if found {
		return ps
	}
	return slices.Insert(ps, i, p)
}
