package webhook

import "github.com/ecr-preflight/ecr-preflight/internal/workloads"

// distinctImages returns each image once, in first-seen order, so a
// sidecar image shared by many containers costs one lookup.
func distinctImages(cs []workloads.Container) []string {
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
func containersOf(cs []workloads.Container) map[string][]string {
	out := make(map[string][]string, len(cs))
	for _, c := range cs {
		out[c.Image] = append(out[c.Image], c.Name)
	}
	return out
}

// imageSet is the set of images in cs.
func imageSet(cs []workloads.Container) map[string]bool {
	out := make(map[string]bool, len(cs))
	for _, c := range cs {
		out[c.Image] = true
	}
	return out
}
