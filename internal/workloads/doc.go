// Package workloads says which Kubernetes objects ecr-preflight checks and
// which containers of a pod spec pull images, so that the admission webhook
// and the audit agree on both: an object whose controller is a checked kind
// (a Deployment's ReplicaSet, a CronJob's Job, a ReplicaSet's Pod) was
// checked through its owner, a mirror pod is the kubelet's own, and every
// init, regular and ephemeral container that names an image is pulled by
// the kubelet under the node role.
package workloads
