package workloads

import corev1 "k8s.io/api/core/v1"

// Container is one container of a pod spec and the image it runs.
type Container struct {
	// Name is the container's name, unique within the pod.
	Name string
	// Image is the image reference as the spec spells it.
	Image string
}

// Containers lists the containers of spec that name an image: init
// containers, containers, then ephemeral containers, each in spec order,
// since the kubelet pulls every one of them under the node role. With
// ephemeralOnly, only ephemeral containers count (a controller-owned pod
// whose template was checked on its owner, but which kubectl debug can
// still extend). A nil spec has none.
func Containers(spec *corev1.PodSpec, ephemeralOnly bool) []Container {
	if spec == nil {
		return nil
	}
	var out []Container
	add := func(name, image string) {
		// An empty image cannot pass API validation; nothing to check.
		if image != "" {
			out = append(out, Container{Name: name, Image: image})
		}
	}
	if !ephemeralOnly {
		for i := range spec.InitContainers {
			add(spec.InitContainers[i].Name, spec.InitContainers[i].Image)
		}
		for i := range spec.Containers {
			add(spec.Containers[i].Name, spec.Containers[i].Image)
		}
	}
	for i := range spec.EphemeralContainers {
		add(spec.EphemeralContainers[i].Name, spec.EphemeralContainers[i].Image)
	}
	return out
}
