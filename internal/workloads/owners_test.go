package workloads

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOwnedByCheckedKind(t *testing.T) {
	controller := func(apiVersion, kind string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "owner", UID: "owner", Controller: new(true)}}
	}
	tests := map[string]struct {
		owners []metav1.OwnerReference
		want   bool
	}{
		"an object without owners is checked itself":              {},
		"a Deployment's ReplicaSet was checked on the Deployment": {owners: controller("apps/v1", "Deployment"), want: true},
		"a ReplicaSet's Pod was checked on the ReplicaSet":        {owners: controller("apps/v1", "ReplicaSet"), want: true},
		"a StatefulSet's Pod was checked on the StatefulSet":      {owners: controller("apps/v1", "StatefulSet"), want: true},
		"a DaemonSet's Pod was checked on the DaemonSet":          {owners: controller("apps/v1", "DaemonSet"), want: true},
		"a Job's Pod was checked on the Job":                      {owners: controller("batch/v1", "Job"), want: true},
		"a CronJob's Job was checked on the CronJob":              {owners: controller("batch/v1", "CronJob"), want: true},
		"the group counts, not its version":                       {owners: controller("apps/v1beta2", "Deployment"), want: true},
		"an Argo Rollout's ReplicaSet is checked itself: nothing else carries its template": {
			owners: controller("argoproj.io/v1alpha1", "Rollout"),
		},
		"a kind of the same name in another group is not a checked kind": {owners: controller("example.com/v1", "Deployment")},
		"a core ReplicationController is not a checked kind":             {owners: controller("v1", "ReplicationController")},
		"an unparsable apiVersion is not a checked kind":                 {owners: controller("apps/v1/extra", "Deployment")},
		"an owner that is not the controller does not count": {
			owners: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "owner", UID: "owner"}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", OwnerReferences: tt.owners}}
			if got := OwnedByCheckedKind(p); got != tt.want {
				t.Errorf("OwnedByCheckedKind(%+v) = %v, want %v", tt.owners, got, tt.want)
			}
		})
	}
}

func TestIsMirrorPod(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		want        bool
	}{
		"a pod without annotations is not a mirror pod": {},
		"the mirror annotation marks a static pod's API copy": {
			annotations: map[string]string{MirrorPodAnnotation: "3f2a"}, want: true,
		},
		"an empty mirror annotation does not count": {annotations: map[string]string{MirrorPodAnnotation: ""}},
		"other annotations do not count":            {annotations: map[string]string{"kubernetes.io/config.source": "file"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: tt.annotations}}
			if got := IsMirrorPod(p); got != tt.want {
				t.Errorf("IsMirrorPod(%v) = %v, want %v", tt.annotations, got, tt.want)
			}
		})
	}
}
