package audit

import (
	"strings"
	"testing"
)

func TestShortImage(t *testing.T) {
	digest := "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	long := registry + "/" + strings.Repeat("team/", 20) + "app:v1"
	tests := map[string]struct{ in, want string }{
		"a tag stays as it is":                 {registry + "/shop/web:2.0", registry + "/shop/web:2.0"},
		"a digest keeps its first 12 digits":   {registry + "/infra/agent@" + digest, registry + "/infra/agent@sha256:0f1e2d3c4b5a"},
		"a tag and digest keep the tag":        {registry + "/a:v1@" + digest, registry + "/a:v1@sha256:0f1e2d3c4b5a"},
		"something that is not a digest stays": {"x@sha256:abc", "x@sha256:abc"},
		"a long reference keeps both ends":     {long, long[:48] + "..." + long[len(long)-49:]},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := shortImage(tc.in)
			if got != tc.want {
				t.Errorf("shortImage(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if len(got) > imageMax {
				t.Errorf("%d bytes, over %d", len(got), imageMax)
			}
		})
	}
}
