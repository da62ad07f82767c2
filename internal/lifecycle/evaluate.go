package lifecycle

import (
	"cmp"
	"slices"
	"time"
)

// Fate is what the policy will do to one image.
type Fate struct {
	// Rule is the rule that will expire or archive the image (Rule.Action
	// says which). It is the highest-priority rule whose tagging requirements
	// and storage class match the image: no other rule may act on it.
	Rule Rule
	// Selected: the rule selects the image now, so ECR acts on it ("you should
	// expect that images become expired within 24 hours after they meet the
	// expiration criteria").
	Selected bool
	// At is, for the since* count types, the instant after which the rule
	// selects the image: the start of the countdown (push, pull or archive
	// time) plus countNumber days, in UTC. Zero when Selected or for
	// imageCountMoreThan.
	At time.Time
	// AfterPushes is, for imageCountMoreThan, how many more images the rule
	// matches must be pushed before it selects this one; 0 when Selected.
	// Keeping N images, the i-th newest (1-based) of the images the rule
	// matches is selected after N-i+1 more such pushes.
	AfterPushes int
}

// Evaluate answers, for every image of a repository (by digest), the rule
// that will expire or archive it and when, following the "Lifecycle policy
// evaluation rules" (see the package documentation). Images that no rule can
// ever select are absent: those that no rule's tagging requirements and
// storage class take in. now is the evaluation time.
//
// images must be the whole repository: imageCountMoreThan counts every image
// a rule matches, including those a higher-priority rule claims ("Rules can
// never mark images that are marked by higher priority rules, but can still
// identify them as if they haven't been expired"). An image listed twice
// counts once. Among images pushed at the same instant, the one with the
// greater digest counts as the newer (ECR documents no order for ties).
//
// For the since* count types an image is selected once it is older than
// countNumber days: in the example "Filtering on all images" (Example B) a
// one-day rule leaves alone the untagged image "Pushed: 1 day ago".
//
// An image archived by a transition rule may later be expired by a rule for
// archived images; Evaluate answers the next action only: evaluate again with
// the image's new storage class to see the one after.
func Evaluate(p *Policy, images []Image, now time.Time) map[string]Fate {
	if p == nil || len(p.Rules) == 0 {
		return map[string]Fate{}
	}
	fates := make(map[string]Fate, len(images))
	const unowned, duplicate = -1, -2
	owner := make([]int, len(images))
	// identified[r] lists every image count rule r matches, claimed or not.
	identified := make([][]int, len(p.Rules))
	seen := make(map[string]bool, len(images))
	for i := range images {
		img := &images[i]
		if seen[img.Digest] {
			owner[i] = duplicate
			continue
		}
		seen[img.Digest] = true
		owner[i] = unowned
		for r := range p.Rules {
			sel := &p.Rules[r].Selection
			isCount := sel.CountType == CountImageCountMoreThan
			if owner[i] != unowned && !isCount {
				continue // this rule can no longer act on the image nor needs to count it
			}
			if !sel.Matches(img) {
				continue
			}
			if owner[i] == unowned {
				owner[i] = r
			}
			if isCount {
				identified[r] = append(identified[r], i)
			}
		}
	}

	rank := make([]int, len(images)) // 1-based, among the images the owning count rule matches
	for r, members := range identified {
		slices.SortFunc(members, func(a, b int) int {
			if c := images[b].orderedAt().Compare(images[a].orderedAt()); c != 0 {
				return c
			}
			return cmp.Compare(images[b].Digest, images[a].Digest)
		})
		for pos, i := range members {
			if owner[i] == r {
				rank[i] = pos + 1
			}
		}
	}

	for i := range images {
		if owner[i] < 0 {
			continue
		}
		img := &images[i]
		rule := p.Rules[owner[i]]
		fate := Fate{Rule: rule}
		n := rule.Selection.CountNumber
		switch rule.Selection.CountType {
		case CountImageCountMoreThan:
			// "images are sorted from youngest to oldest based on
			// pushed_at_time and then all images greater than the specified
			// count are expired or archived."
			if rank[i] > n {
				fate.Selected = true
			} else {
				fate.AfterPushes = n - rank[i] + 1
			}
		case CountSinceImagePushed:
			fate.At, fate.Selected = after(img.PushedAt, n, now)
		case CountSinceImagePulled:
			fate.At, fate.Selected = after(img.lastPulledAt(), n, now)
		case CountSinceImageTransitioned:
			fate.At, fate.Selected = after(img.transitionedAt(), n, now)
		}
		fates[img.Digest] = fate
	}
	return fates
}

// after returns when an image whose countdown started at start is older than
// days days, or zero and true when it already is at now. Days are calendar
// days in UTC, 24 hours each.
func after(start time.Time, days int, now time.Time) (time.Time, bool) {
	at := start.UTC().AddDate(0, 0, days)
	if now.After(at) {
		return time.Time{}, true
	}
	return at, false
}
