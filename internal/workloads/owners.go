package workloads

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// checkedOwners are the controller kinds whose pod templates ecr-preflight
// checks; objects they own were checked through them.
var checkedOwners = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "Deployment"}:  true,
	{Group: "apps", Kind: "ReplicaSet"}:  true,
	{Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}:   true,
	{Group: "batch", Kind: "Job"}:        true,
	{Group: "batch", Kind: "CronJob"}:    true,
}

// OwnedByCheckedKind says whether obj's controller (the owner reference
// with controller: true) is a Deployment, ReplicaSet, StatefulSet,
// DaemonSet, Job or CronJob, whatever the version of its API group: its
// template was checked on that owner. Objects owned by other controllers
// (operators, Argo Rollouts) are checked themselves, since nothing else
// carries their template; so are objects whose controller has an
// unparsable apiVersion.
func OwnedByCheckedKind(obj metav1.Object) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return false
	}
	return checkedOwners[schema.GroupKind{Group: gv.Group, Kind: ref.Kind}]
}

// MirrorPodAnnotation marks the API copy of a kubelet's static pod
// (Kubernetes' kubetypes.ConfigMirrorAnnotationKey).
const MirrorPodAnnotation = "kubernetes.io/config.mirror"

// IsMirrorPod says whether obj is a mirror pod (MirrorPodAnnotation is set
// and not empty): the kubelet runs it from a file, whatever the API says,
// so neither rejecting nor auditing it changes anything.
func IsMirrorPod(obj metav1.Object) bool {
	return obj.GetAnnotations()[MirrorPodAnnotation] != ""
}
