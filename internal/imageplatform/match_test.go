package imageplatform_test

import (
	"testing"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ecr-preflight/ecr-preflight/internal/imageplatform"
)

func linux(arch, variant string) ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: arch, Variant: variant}
}

func windows(build string) ocispec.Platform {
	return ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: build}
}

func TestSupportsMatchesAsContainerdOnTheNode(t *testing.T) {
	tests := map[string]struct {
		available []ocispec.Platform
		want      ocispec.Platform
		supported bool
	}{
		"an arm64 node runs an arm64/v8 entry":               {available: []ocispec.Platform{linux("arm64", "v8")}, want: linux("arm64", ""), supported: true},
		"an arm64/v8 node runs an arm64 entry":               {available: []ocispec.Platform{linux("arm64", "")}, want: linux("arm64", "v8"), supported: true},
		"an arm64 node pulls arm/v7 when it is all there is": {available: []ocispec.Platform{linux("arm", "v7")}, want: linux("arm64", ""), supported: true},
		"an arm64 node does not run arm64/v8.2 only":         {available: []ocispec.Platform{linux("arm64", "v8.2")}, want: linux("arm64", "")},
		"an arm64/v9 node runs arm64/v8":                     {available: []ocispec.Platform{linux("arm64", "v8")}, want: linux("arm64", "v9"), supported: true},
		"an arm64 node does not run amd64":                   {available: []ocispec.Platform{linux("amd64", "")}, want: linux("arm64", "")},
		"an amd64 node does not run an arm64 and arm/v7 index": {
			available: []ocispec.Platform{linux("arm64", "v8"), linux("arm", "v7")}, want: linux("amd64", ""),
		},
		"an amd64 node does not run amd64/v3 only":      {available: []ocispec.Platform{linux("amd64", "v3")}, want: linux("amd64", "")},
		"an amd64 node runs amd64 beside amd64/v3":      {available: []ocispec.Platform{linux("amd64", "v3"), linux("amd64", "")}, want: linux("amd64", ""), supported: true},
		"an amd64 node runs amd64/v1":                   {available: []ocispec.Platform{linux("amd64", "v1")}, want: linux("amd64", ""), supported: true},
		"an amd64/v3 node runs amd64/v2":                {available: []ocispec.Platform{linux("amd64", "v2")}, want: linux("amd64", "v3"), supported: true},
		"an amd64 node runs 386":                        {available: []ocispec.Platform{linux("386", "")}, want: linux("amd64", ""), supported: true},
		"architecture names are normalised (x86_64)":    {available: []ocispec.Platform{linux("x86_64", "")}, want: linux("amd64", ""), supported: true},
		"an entry without os is the node's":             {available: []ocispec.Platform{{Architecture: "amd64"}}, want: linux("amd64", ""), supported: true},
		"a want without os is linux":                    {available: []ocispec.Platform{linux("amd64", "")}, want: ocispec.Platform{Architecture: "amd64"}, supported: true},
		"a want without architecture supports anything": {available: []ocispec.Platform{linux("s390x", "")}, want: ocispec.Platform{OS: "linux"}, supported: true},
		"an entry needing an os feature the node lacks": {
			available: []ocispec.Platform{{OS: "linux", Architecture: "amd64", OSFeatures: []string{"erofs"}}}, want: linux("amd64", ""),
		},
		"nothing offered runs nowhere":                         {want: linux("amd64", "")},
		"a Linux node does not run a Windows image":            {available: []ocispec.Platform{windows("10.0.20348.2340")}, want: linux("amd64", "")},
		"a Windows node does not run a Linux image":            {available: []ocispec.Platform{linux("amd64", "")}, want: windows("10.0.20348")},
		"Windows Server 2019 runs its own build, any revision": {available: []ocispec.Platform{windows("10.0.17763.5820")}, want: windows("10.0.17763"), supported: true},
		"Windows Server 2019 does not run a 2022 image":        {available: []ocispec.Platform{windows("10.0.20348.2340")}, want: windows("10.0.17763")},
		"Windows Server 2022 does not run a 2019 image":        {available: []ocispec.Platform{windows("10.0.17763.5820")}, want: windows("10.0.20348")},
		"Windows Server 2022 picks its build from an index":    {available: []ocispec.Platform{windows("10.0.17763.5820"), windows("10.0.20348.2340")}, want: windows("10.0.20348"), supported: true},
		"Windows Server 2025 runs a 2022 image (stable ABI)":   {available: []ocispec.Platform{windows("10.0.20348.2340")}, want: windows("10.0.26100"), supported: true},
		"a Windows node of unknown build runs any build":       {available: []ocispec.Platform{windows("10.0.17763.5820")}, want: windows(""), supported: true},
		"a Windows image without os.version runs on any build": {available: []ocispec.Platform{windows("")}, want: windows("10.0.17763"), supported: true},
		"a win32k feature does not keep a Windows image off":   {available: []ocispec.Platform{{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.1", OSFeatures: []string{"win32k"}}}, want: windows("10.0.20348"), supported: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := imageplatform.Supports(tc.available, tc.want); got != tc.supported {
				t.Errorf("Supports(%v, %s) = %t, want %t", tc.available, platforms.FormatAll(tc.want), got, tc.supported)
			}
		})
	}
}

func TestMissingNamesTheWantsNotServed(t *testing.T) {
	available := []ocispec.Platform{linux("amd64", ""), linux("arm64", "v8")}
	wants := []ocispec.Platform{linux("arm64", ""), linux("arm", "v7"), linux("amd64", ""), windows("10.0.20348")}
	got := imageplatform.Missing(available, wants)
	if len(got) != 2 || platforms.FormatAll(got[0]) != "linux/arm/v7" || platforms.FormatAll(got[1]) != "windows(10.0.20348)/amd64" {
		t.Errorf("Missing = %v, want linux/arm/v7 and windows(10.0.20348)/amd64", got)
	}
	if got := imageplatform.Missing(available, wants[:1]); got != nil {
		t.Errorf("Missing of a served want = %v, want nil", got)
	}
}

func TestParseModeKnowsEveryMode(t *testing.T) {
	for _, m := range imageplatform.Modes {
		if got, err := imageplatform.ParseMode(string(m)); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
	}
	if _, err := imageplatform.ParseMode("on"); err == nil {
		t.Error(`ParseMode("on") succeeded, want an error`)
	}
}
