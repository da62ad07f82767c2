package nodepools

import "strings"

// fargateLike reports whether p is matched as a Fargate profile is, by its
// selectors and never through node labels: a Fargate profile (one whose
// selectors are unknown matches nothing) or a pool of any other kind given
// selectors, as a static pool with fargateSelectors is.
func fargateLike(p Pool) bool {
	return p.Kind == KindFargate || len(p.Fargate) > 0
}

// fargateChoice is the answer of the Fargate profiles for one pod: the
// profiles that select it, and those EKS would run it with.
type fargateChoice struct {
	matching []int // indexes into the pools of every pool whose Fargate selectors select the pod
	chosen   []int // the subset the pod runs on: one when LabelFargateProfile names a matching profile
	label    string
}

// chooseFargate finds the Fargate profiles that select a pod from t: the
// pools whose Fargate selectors do, whatever their kind.
//
// EKS User Guide, "Define which Pods use AWS Fargate when launched": a pod
// is run on Fargate when any selector of a profile matches it (the
// selector's namespace and every one of its labels); when several profiles
// match, the pod label eks.amazonaws.com/fargate-profile picks one, and
// "the Pod must match a selector in that profile". A label naming no
// matching profile is ignored here, leaving every matching profile a
// candidate: a pool wrongly kept costs a warning, one wrongly dropped a
// false rejection.
func chooseFargate(pools []Pool, t Template) fargateChoice {
	var c fargateChoice
	for i, p := range pools {
		if selectsPod(p.Fargate, t) {
			c.matching = append(c.matching, i)
		}
	}
	c.chosen = c.matching
	if len(c.matching) < 2 {
		return c
	}
	c.label = t.Labels[LabelFargateProfile]
	for _, i := range c.matching {
		if c.label != "" && pools[i].Name == c.label {
			c.chosen = []int{i}
			return c
		}
	}
	c.label = ""
	return c
}

// selectsPod reports whether any of the selectors selects a pod of t.
func selectsPod(selectors []FargateSelector, t Template) bool {
	for _, s := range selectors {
		if wildcardMatch(s.Namespace, t.Namespace) && labelsMatch(s.Labels, t.Labels) {
			return true
		}
	}
	return false
}

// labelsMatch reports whether the pod carries every selector label.
// Selector keys and values may hold wildcards (EKS User Guide, "Fargate
// profile wildcards").
func labelsMatch(selector, pod map[string]string) bool {
	for k, v := range selector {
		if !strings.ContainsAny(k, "*?") {
			pv, ok := pod[k]
			if !ok || !wildcardMatch(v, pv) {
				return false
			}
			continue
		}
		found := false
		for pk, pv := range pod {
			if wildcardMatch(k, pk) && wildcardMatch(v, pv) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// wildcardMatch reports whether s matches pattern, where * stands for any
// run of characters (none included) and ? for exactly one, the only
// wildcards EKS allows in Fargate selectors. Namespaces and label keys and
// values are ASCII, so bytes are characters.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, resume := -1, 0 // the last * seen and where in s its match ends
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, resume = p, i
			p++
		case star >= 0:
			// Let the last * swallow one more character and retry.
			resume++
			p, i = star+1, resume
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
