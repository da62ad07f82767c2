package webhook

import corev1 "k8s.io/api/core/v1"

// containerImage is one container of a pod template and the image it runs.
type containerImage struct {
	Container string
	Image     string
}

// podImages lists the containers of spec that name an image: init
// containers, containers, then ephemeral containers, since every one of
// them is pulled by the kubelet under the node role. With ephemeralOnly,
// only ephemeral containers count (a controller-owned pod whose template
// was checked on its owner, but which kubectl debug can still extend).
func podImages(spec *corev1.PodSpec, ephemeralOnly bool) []containerImage {
	if spec == nil {
		return nil
	}
	var out []containerImage
	add := func(name, image string) {
		// An empty image cannot pass API validation; nothing to check.
		if image != "" {
			out = append(out, containerImage{Container: name, Image: image})
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

// distinctImages returns each image once, in first-seen order, so a
// sidecar image shared by many containers costs one lookup.
func distinctImages(cs []containerImage) []string {
	seen := make(map[string]bool, len(cs))
	var out []string
	for _, c := range cs {
		if !seen[c.Image] {
			seen[c.Image] = true
			out = append(out, c.Image)
		}
	}
	return out
}

// containersOf maps each image to the containers that run it, in order.
func containersOf(cs []containerImage) map[string][]string {
	out := make(map[string][]string, len(cs))
	for _, c := range cs {
		out[c.Image] = append(out[c.Image], c.Container)
	}
	return out
}

// imageSet is the set of images in cs.
func imageSet(cs []containerImage) map[string]bool {
	out := make(map[string]bool, len(cs))
	for _, c := range cs {
		out[c.Image] = true
	}
	return out
}
