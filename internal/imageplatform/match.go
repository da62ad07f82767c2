package imageplatform

import (
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Supports reports whether a node of platform want can run an image that
// offers the platforms available, as containerd decides on that node.
//
// containerd's CRI plugin picks an image's manifest with
// platforms.Only(platforms.DefaultSpec()) (internal/cri/store/image, and
// the default matcher of its pulls), where DefaultSpec is the node's own
// os, architecture, CPU variant and, on Windows, OS version. Supports
// matches with platforms.Only(want), which (github.com/containerd/platforms
// v1.0.0-rc.5, compare.go and platform_windows_compat.go) means:
//
//   - arm64: a node reports variant v8 (/proc/cpuinfo "CPU architecture:
//     8"), so arm64 and arm64/v8 entries match, and so do 32-bit arm/v8
//     down to arm/v5 (containerd pulls them; they run only where the CPU
//     and kernel still execute AArch32, which Graviton4 does not);
//     arm64/v8.x (x > 0) and arm64/v9 entries do not.
//   - amd64: containerd detects no amd64 level, so amd64 (= amd64/v1) and
//     386 entries match, but an index offering only amd64/v2..v4 does not.
//     A want with a level (amd64/v3) also matches the lower ones.
//   - Windows: os.version must be compatible with the node's build
//     (want.OSVersion, e.g. "10.0.20348" from node.kubernetes.io/windows-build):
//     same major.minor, and the same build on hosts before Windows Server
//     2022; from 2022 on, any build from the previous LTSC up to the
//     host's (stable ABI). The library applies this whatever the OS it
//     runs on: NewMatcher keys it on the platform's os, not on runtime.GOOS.
//     An empty os.version on either side matches any build.
//   - os.features of an entry must all be in want's.
//
// An entry without an os is the node's os, as containerd normalises it;
// a want without an os is linux (Kubernetes' default). A want without an
// architecture is unknown and supports everything: this check must never
// refuse on a platform it does not know.
func Supports(available []ocispec.Platform, want ocispec.Platform) bool {
	if want.Architecture == "" {
		return true
	}
	if want.OS == "" {
		want.OS = "linux"
	}
	m := platforms.Only(want)
	for _, p := range available {
		if p.OS == "" {
			p.OS = want.OS
		}
		if m.Match(p) {
			return true
		}
	}
	return false
}

// Missing returns the platforms of wants that an image offering available
// cannot serve (see Supports), in wants' order; nil when it serves all.
func Missing(available, wants []ocispec.Platform) []ocispec.Platform {
	var out []ocispec.Platform
	for _, w := range wants {
		if !Supports(available, w) {
			out = append(out, w)
		}
	}
	return out
}
