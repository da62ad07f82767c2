package audit

import (
	"fmt"
	"slices"
	"testing"
)

func TestByRepositoryKeepsARepositoryInOneCall(t *testing.T) {
	img := func(repo, tag int) string {
		return fmt.Sprintf("111122223333.dkr.ecr.us-west-2.amazonaws.com/repo-%d:%d", repo, tag)
	}
	// Three repositories of 4 images, interleaved, in chunks of 6: a
	// repository never straddles two chunks.
	var images []string
	for tag := range 4 {
		for repo := range 3 {
			images = append(images, img(repo, tag))
		}
	}
	got := byRepository(images, 6)
	want := [][]string{
		{img(0, 0), img(0, 1), img(0, 2), img(0, 3)},
		{img(1, 0), img(1, 1), img(1, 2), img(1, 3)},
		{img(2, 0), img(2, 1), img(2, 2), img(2, 3)},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("chunks %q, want %q", got, want)
	}
	// A repository larger than a chunk is split; small ones share chunks.
	images = append(images, "docker.io/library/busybox:1", "not a reference")
	for tag := range 8 {
		images = append(images, img(9, tag))
	}
	for _, c := range byRepository(images, 6) {
		if len(c) > 6 {
			t.Errorf("chunk of %d images", len(c))
		}
	}
	if n := len(byRepository(images, 6)); n != 5 {
		t.Errorf("%d chunks, want 5 (4, 4, 4 and the 2 others, 6, 2)", n)
	}
}
