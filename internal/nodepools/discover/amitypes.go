package discover

import (
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
)

// Windows Server builds as the kubelet reports them in the
// node.kubernetes.io/windows-build label and as image indexes name them in
// os.version (major.minor.build).
const (
	windowsServer2019 = "10.0.17763"
	windowsServer2022 = "10.0.20348"
	windowsServer2025 = "10.0.26100"
)

var (
	linuxAMD64 = nodepools.Platform{OS: "linux", Architecture: "amd64"}
	// Graviton cores implement Armv8 or later. containerd normalizes
	// arm64/v8 to plain arm64 (platforms.Normalize), as Nodes report it.
	linuxARM64 = nodepools.Platform{OS: "linux", Architecture: "arm64"}
)

func windowsAMD64(build string) nodepools.Platform {
	return nodepools.Platform{OS: "windows", Architecture: "amd64", OSVersion: build}
}

// amiTypePlatforms is the platform of the nodes of each AMI type of an EKS
// managed node group, as the EKS API reference lists them (Nodegroup.amiType,
// https://docs.aws.amazon.com/eks/latest/APIReference/API_Nodegroup.html).
// The accelerated (GPU, Neuron) and FIPS variants share their base's
// platform. CUSTOM, a launch template's own AMI, is absent on purpose: its
// platform is unknown.
var amiTypePlatforms = map[ekstypes.AMITypes]nodepools.Platform{
	ekstypes.AMITypesAl2X8664:    linuxAMD64,
	ekstypes.AMITypesAl2X8664Gpu: linuxAMD64,
	ekstypes.AMITypesAl2Arm64:    linuxARM64,

	ekstypes.AMITypesAl2023X8664Standard: linuxAMD64,
	ekstypes.AMITypesAl2023X8664Neuron:   linuxAMD64,
	ekstypes.AMITypesAl2023X8664Nvidia:   linuxAMD64,
	ekstypes.AMITypesAl2023Arm64Standard: linuxARM64,
	ekstypes.AMITypesAl2023Arm64Nvidia:   linuxARM64,

	ekstypes.AMITypesBottlerocketX8664:           linuxAMD64,
	ekstypes.AMITypesBottlerocketX8664Fips:       linuxAMD64,
	ekstypes.AMITypesBottlerocketX8664Nvidia:     linuxAMD64,
	ekstypes.AMITypesBottlerocketX8664NvidiaFips: linuxAMD64,
	ekstypes.AMITypesBottlerocketArm64:           linuxARM64,
	ekstypes.AMITypesBottlerocketArm64Fips:       linuxARM64,
	ekstypes.AMITypesBottlerocketArm64Nvidia:     linuxARM64,
	ekstypes.AMITypesBottlerocketArm64NvidiaFips: linuxARM64,

	ekstypes.AMITypesWindowsCore2019X8664: windowsAMD64(windowsServer2019),
	ekstypes.AMITypesWindowsFull2019X8664: windowsAMD64(windowsServer2019),
	ekstypes.AMITypesWindowsCore2022X8664: windowsAMD64(windowsServer2022),
	ekstypes.AMITypesWindowsFull2022X8664: windowsAMD64(windowsServer2022),
	ekstypes.AMITypesWindowsCore2025X8664: windowsAMD64(windowsServer2025),
	ekstypes.AMITypesWindowsFull2025X8664: windowsAMD64(windowsServer2025),
}

// amiTypePlatform returns the platform of a node group's nodes from its AMI
// type. ok is false for CUSTOM and for an AMI type EKS adds after this list
// was written: an unknown platform, not an error.
func amiTypePlatform(t ekstypes.AMITypes) (p nodepools.Platform, ok bool) {
	p, ok = amiTypePlatforms[t]
	return p, ok
}

// platformLabels are the well-known labels the kubelet puts on a node of
// platform p (kubernetes.io/os, kubernetes.io/arch and, on Windows,
// node.kubernetes.io/windows-build), so that a nodeSelector or affinity on
// them matches a node group that has no node yet.
func platformLabels(p nodepools.Platform) map[string]string {
	labels := map[string]string{
		corev1.LabelOSStable:   p.OS,
		corev1.LabelArchStable: p.Architecture,
	}
	if p.OS == "windows" && p.OSVersion != "" {
		labels[corev1.LabelWindowsBuild] = p.OSVersion
	}
	return labels
}
