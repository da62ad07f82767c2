package lifecycle

import "strings"

// Matches reports whether the selection's tagging requirements and storage
// class take in img: whether the rule "identifies" it, in the words of the
// documented examples, whatever its count limit says.
//
// A tagged selection needs every prefix or pattern of its list to match at
// least one of the image's tags, not necessarily the same one: "An image is
// successfully matched if all of the tags in the tagPatternList or
// tagPrefixList value are matched against any of the image's tags"; in the
// example "Filtering on multiple tags in a single rule" (Example A) the
// patterns alpha* and beta* select Image C, tagged ["alpha-2", "beta-2"].
func (s *Selection) Matches(img *Image) bool {
	if img.storageClass() != s.StorageClass {
		return false
	}
	switch s.TagStatus {
	case TagStatusAny:
		return true
	case TagStatusUntagged:
		return len(img.Tags) == 0
	case TagStatusTagged:
		if len(img.Tags) == 0 {
			return false
		}
		for _, prefix := range s.TagPrefixList {
			if !anyTag(img.Tags, func(tag string) bool { return strings.HasPrefix(tag, prefix) }) {
				return false
			}
		}
		for _, pattern := range s.TagPatternList {
			if !anyTag(img.Tags, func(tag string) bool { return matchPattern(pattern, tag) }) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

func anyTag(tags []string, match func(string) bool) bool {
	for _, t := range tags {
		if match(t) {
			return true
		}
	}
	return false
}

// matchPattern matches a whole tag against a tagPatternList entry in which
// '*' stands for any run of characters, possibly empty, and every other
// character for itself: "prod*" matches "prod", "prod1" and
// "production-team1"; "*prod*" matches "repo-production" ("When using
// tagPatternList, an image is successfully matched if it matches the wildcard
// filter").
func matchPattern(pattern, tag string) bool {
	first, rest, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == tag
	}
	if !strings.HasPrefix(tag, first) {
		return false
	}
	tag = tag[len(first):]
	// With '*' as the only wildcard, taking each middle part at its leftmost
	// place leaves the most room for the rest: no backtracking is needed.
	for {
		part, after, more := strings.Cut(rest, "*")
		if !more {
			return len(tag) >= len(part) && strings.HasSuffix(tag, part)
		}
		i := strings.Index(tag, part)
		if i < 0 {
			return false
		}
		tag, rest = tag[i+len(part):], after
	}
}
