package workloads

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestContainers(t *testing.T) {
	ephemeral := func(name, image string) corev1.EphemeralContainer {
		return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: image}}
	}
	full := &corev1.PodSpec{
		InitContainers:      []corev1.Container{{Name: "migrate", Image: "migrate:1"}, {Name: "setup", Image: "setup:1"}},
		Containers:          []corev1.Container{{Name: "app", Image: "app:1"}, {Name: "empty"}, {Name: "sidecar", Image: "app:1"}},
		EphemeralContainers: []corev1.EphemeralContainer{ephemeral("debugger", "busybox"), ephemeral("blank", "")},
	}
	tests := map[string]struct {
		spec          *corev1.PodSpec
		ephemeralOnly bool
		want          []Container
	}{
		"a nil spec has no containers":    {},
		"an empty spec has no containers": {spec: &corev1.PodSpec{}},
		"init containers, containers, then ephemeral containers, in spec order; empty images are left out": {
			spec: full,
			want: []Container{
				{Name: "migrate", Image: "migrate:1"}, {Name: "setup", Image: "setup:1"},
				{Name: "app", Image: "app:1"}, {Name: "sidecar", Image: "app:1"},
				{Name: "debugger", Image: "busybox"},
			},
		},
		"ephemeralOnly keeps only the ephemeral containers": {
			spec: full, ephemeralOnly: true,
			want: []Container{{Name: "debugger", Image: "busybox"}},
		},
		"ephemeralOnly of a pod never debugged has none": {
			spec: &corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}, ephemeralOnly: true,
		},
		"a nil spec has none with ephemeralOnly either": {ephemeralOnly: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Containers(tt.spec, tt.ephemeralOnly); !slices.Equal(got, tt.want) {
				t.Errorf("Containers = %+v, want %+v", got, tt.want)
			}
		})
	}
}
