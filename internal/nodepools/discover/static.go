package discover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

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
//	- name: gpu                                          # required, unique, a DNS-1123 subdomain
//	  role: arn:aws:iam::111122223333:role/GpuNodeRole   # required, an IAM role ARN
//	  platforms: [linux/amd64, linux/arm64/v8, "windows(10.0.20348)/amd64"]
//	  labels: {team: ml}
//	  taints: [{key: nvidia.com/gpu, value: "true", effect: NoSchedule}]
//	  fargateSelectors: [{namespace: batch, labels: {team: ml}}]
//
// Names are DNS-1123 subdomains, as Kubernetes object names are, so that
// a name printed in a table or an admission warning is plain text.
// Platforms use containerd's notation (github.com/containerd/platforms
// Parse): os/arch[/variant], with a Windows build as the OS version in
// parentheses after the OS, "windows(10.0.20348)/amd64"; both the OS and
// the architecture must be given (containerd would otherwise fill the
// missing one from the machine reading the file) and are normalized as
// containerd does (aarch64 → arm64, x86_64 → amd64, arm64/v8 → arm64);
// see parsePlatform for what is accepted. fargateSelectors make the pool
// Fargate-like (Pool.Fargate is set): it is matched as a Fargate profile
// is. Unknown fields are errors naming the field. Every error names the
// pool by index and name and the field at fault; all bad pools are
// reported at once; a file without pools is an error too ("no pools in
// FILE"). The pools come back in file order, of KindStatic.
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
	if len(file.Pools) == 0 {
		return nil, fmt.Errorf("no pools in %s", path)
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
		if validName(sp.Name) {
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
	if msgs := validation.IsDNS1123Subdomain(sp.Name); len(msgs) > 0 {
		return nodepools.Pool{}, fmt.Errorf("name %q: %s", sp.Name, strings.Join(msgs, "; "))
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

// validName reports whether name is a DNS-1123 subdomain.
func validName(name string) bool { return len(validation.IsDNS1123Subdomain(name)) == 0 }

// Platforms parsePlatform accepts.
var (
	// platformOSes are the operating systems Kubernetes nodes run.
	platformOSes = []string{"linux", "windows"}
	// platformArchs are the GOARCH values of the architectures Kubernetes
	// builds its node components for, and a few more Go supports on Linux.
	platformArchs = []string{"386", "amd64", "arm", "arm64", "loong64", "mips64le", "ppc64le", "riscv64", "s390x"}
	// windowsVersion is a Windows build as os.version holds it:
	// major.minor.build, optionally .revision (10.0.20348, 10.0.20348.2227).
	windowsVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(\.[0-9]+)?$`)
	// arm64Variants are the variants containerd's matcher knows for arm64
	// after normalization (platforms.Normalize makes v8 and v8.0 plain
	// arm64, 9 and v9.0 v9): Armv8.1 to v8.9, Armv9 to v9.7.
	arm64Variants = regexp.MustCompile(`^v(8\.[1-9]|9(\.[1-7])?)$`)
)

// parsePlatform parses os[(os.version)]/arch[/variant] with containerd's
// platforms.Parse, normalizes it as containerd does and checks the result:
// the OS is linux or windows; an OS version is a Windows build and only for
// windows; no OS features; the architecture is a known GOARCH; a variant
// only where containerd defines one after normalization: arm v5 to v8,
// arm64 v8.1 to v9.7 (v8 is plain arm64), amd64 v2 to v4 (v1 is plain
// amd64). A platform that fails these would match no image and turn every
// check of the pool into PlatformNotAvailable.
func parsePlatform(s string) (nodepools.Platform, error) {
	if !strings.Contains(s, "/") {
		return nodepools.Platform{}, fmt.Errorf("%q: want os/arch[/variant], such as linux/arm64 or windows(10.0.20348)/amd64", s)
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return nodepools.Platform{}, err
	}
	p = platforms.Normalize(p)
	switch {
	case !slices.Contains(platformOSes, p.OS):
		return nodepools.Platform{}, fmt.Errorf("%q: os %q: want linux or windows", s, p.OS)
	case len(p.OSFeatures) > 0:
		return nodepools.Platform{}, fmt.Errorf("%q: os features are not supported", s)
	case p.OSVersion != "" && p.OS != "windows":
		return nodepools.Platform{}, fmt.Errorf("%q: an os version is a Windows build, for windows only", s)
	case p.OSVersion != "" && !windowsVersion.MatchString(p.OSVersion):
		return nodepools.Platform{}, fmt.Errorf("%q: os version %q: want a Windows build, such as 10.0.20348", s, p.OSVersion)
	case !slices.Contains(platformArchs, p.Architecture):
		return nodepools.Platform{}, fmt.Errorf("%q: architecture %q: want one of %s", s, p.Architecture, strings.Join(platformArchs, ", "))
	case !validVariant(p.Architecture, p.Variant):
		return nodepools.Platform{}, fmt.Errorf("%q: %s has no variant %q", s, p.Architecture, p.Variant)
	}
	return p, nil
}

// validVariant reports whether variant, as platforms.Normalize leaves it,
// is one containerd defines for arch.
func validVariant(arch, variant string) bool {
	switch arch {
	case "arm":
		return slices.Contains([]string{"v5", "v6", "v7", "v8"}, variant)
	case "arm64":
		return variant == "" || arm64Variants.MatchString(variant)
	case "amd64":
		return slices.Contains([]string{"", "v2", "v3", "v4"}, variant)
	}
	return variant == ""
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
