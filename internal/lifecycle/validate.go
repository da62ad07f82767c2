package lifecycle

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// checkRule applies the per-rule constraints of "Lifecycle policy properties
// in Amazon ECR" and of the Important notes in "Examples of lifecycle
// policies". It fills in the default storage class.
func checkRule(re ruleError, r *Rule) error {
	s := &r.Selection
	switch s.TagStatus {
	case TagStatusTagged:
		// "If you specify tagged, then you must also specify a tagPrefixList
		// value or a tagPatternList value." / "A lifecycle policy rule may
		// specify either tagPatternList or tagPrefixList, but not both."
		if s.TagPrefixList == nil && s.TagPatternList == nil {
			return re.at("selection", "tagStatus %q needs a tagPrefixList or a tagPatternList", s.TagStatus)
		}
		if s.TagPrefixList != nil && s.TagPatternList != nil {
			return re.at("selection", "tagPrefixList and tagPatternList are mutually exclusive")
		}
	case TagStatusUntagged, TagStatusAny:
		// "The tagPatternList or tagPrefixList parameters may only used if the
		// tagStatus is tagged."
		if s.TagPrefixList != nil {
			return re.at("selection.tagPrefixList", "allowed only when tagStatus is %q, not %q", TagStatusTagged, s.TagStatus)
		}
		if s.TagPatternList != nil {
			return re.at("selection.tagPatternList", "allowed only when tagStatus is %q, not %q", TagStatusTagged, s.TagStatus)
		}
	default:
		return re.at("selection.tagStatus", "must be %s, got %q", quoteAll(string(TagStatusTagged), string(TagStatusUntagged), string(TagStatusAny)), s.TagStatus)
	}
	for i, p := range s.TagPatternList {
		if n := strings.Count(p, "*"); n > MaxWildcards {
			return re.at(indexed("selection.tagPatternList", i), "at most %d wildcards (*) per pattern, got %d in %q", MaxWildcards, n, p)
		}
	}

	switch s.CountType {
	case CountImageCountMoreThan:
		// "This should only be specified when countType is sinceImagePushed,
		// sinceImagePulled, or sinceImageTransitioned; an error will occur if
		// you specify a count unit when countType is any other value."
		if s.CountUnit != "" {
			return re.at("selection.countUnit", "allowed only with countType %s, not %q", quoteAll(string(CountSinceImagePushed), string(CountSinceImagePulled), string(CountSinceImageTransitioned)), s.CountType)
		}
	case CountSinceImagePushed, CountSinceImagePulled, CountSinceImageTransitioned:
		switch s.CountUnit {
		case CountUnitDays:
		case "":
			return re.at("selection.countUnit", "required with countType %q", s.CountType)
		default:
			return re.at("selection.countUnit", "must be %q, got %q", CountUnitDays, s.CountUnit)
		}
	default:
		return re.at("selection.countType", "must be %s, got %q", quoteAll(string(CountImageCountMoreThan), string(CountSinceImagePushed), string(CountSinceImagePulled), string(CountSinceImageTransitioned)), s.CountType)
	}

	// "When using a countType of imageCountMoreThan, sinceImagePushed, or
	// sinceImagePulled, the only supported value is standard. When using a
	// count type of sinceImageTransitioned, this is required, and the only
	// supported value is archive. If you omit this, the value of standard
	// will be used."
	if s.CountType == CountSinceImageTransitioned {
		if s.StorageClass != StorageClassArchive {
			return re.at("selection.storageClass", "must be %q with countType %q, got %q", StorageClassArchive, s.CountType, s.StorageClass)
		}
	} else {
		switch s.StorageClass {
		case "":
			s.StorageClass = StorageClassStandard
		case StorageClassStandard:
		default:
			return re.at("selection.storageClass", "must be %q with countType %q, got %q", StorageClassStandard, s.CountType, s.StorageClass)
		}
	}

	a := r.Action
	switch a.Type {
	case ActionExpire:
		if a.TargetStorageClass != "" {
			return re.at("action.targetStorageClass", "allowed only with action type %q", ActionTransition)
		}
	case ActionTransition:
		// "targetStorageClass ... Required: yes, if type is transition ...
		// archive is the only supported value."
		if a.TargetStorageClass == "" {
			return re.at("action.targetStorageClass", "required with action type %q", ActionTransition)
		}
		if a.TargetStorageClass != StorageClassArchive {
			return re.at("action.targetStorageClass", "must be %q, got %q", StorageClassArchive, a.TargetStorageClass)
		}
	default:
		return re.at("action.type", "must be %s, got %q", quoteAll(string(ActionExpire), string(ActionTransition)), a.Type)
	}
	switch s.CountType {
	case CountSinceImagePulled:
		// "The sinceImagePulled count type must be used with the transition
		// action. It cannot be used with the expire action."
		if a.Type != ActionTransition {
			return re.at("action.type", "must be %q with countType %q, got %q", ActionTransition, s.CountType, a.Type)
		}
	case CountSinceImageTransitioned:
		// "The sinceImageTransitioned count type must be used with the expire
		// action and the archive storage class. Images must be in archive
		// storage for a minimum of 90 days before deletion."
		if a.Type != ActionExpire {
			return re.at("action.type", "must be %q with countType %q, got %q", ActionExpire, s.CountType, a.Type)
		}
		if s.CountNumber < MinArchiveDays {
			return re.at("selection.countNumber", "must be at least %d with countType %q (the archive's minimum storage duration), got %d", MinArchiveDays, s.CountType, s.CountNumber)
		}
	}
	return nil
}

// checkRuleSet applies the constraints between rules, on rules sorted by
// priority.
//
// Storage classes partition the rules: the evaluation rules say "The set of
// all rules selecting a specific storage class must contain a unique set of
// prefixes" and "Only one rule selecting a specific storage class is allowed
// to select untagged images", and the documented example "Combining archive
// and expire rules" has a tagStatus any rule for standard images at priority
// 1 before one for archived images at priority 2. So "A rule with a tagStatus
// value of any must have the highest value for rulePriority" is checked among
// the rules of the same storage class. "A unique set of prefixes" is read as:
// no two rules of a class have the same tagPrefixList (as a set); lists that
// merely overlap are accepted, since the documented rules overlap freely in
// the images they match.
func checkRuleSet(rules []indexedRule) error {
	for i := 1; i < len(rules); i++ {
		// "you must give them each a unique value for rulePriority"
		if rules[i].Priority == rules[i-1].Priority {
			first, second := rules[i-1], rules[i]
			if first.index > second.index {
				first, second = second, first
			}
			return ruleError{index: second.index, priority: second.Priority}.at("rulePriority", "%d is also the priority of rules[%d]; priorities must be unique", second.Priority, first.index)
		}
	}
	for i, r := range rules {
		re := ruleError{index: r.index, priority: r.Priority}
		class := r.Selection.StorageClass
		for _, earlier := range rules[:i] {
			if earlier.Selection.StorageClass != class {
				continue
			}
			if earlier.Selection.TagStatus == TagStatusAny {
				return ruleError{index: earlier.index, priority: earlier.Priority}.at("selection.tagStatus",
					"a rule with tagStatus %q must have the highest rulePriority among the rules selecting %s images, but rule %d comes after it",
					TagStatusAny, class, r.Priority)
			}
			if r.Selection.TagStatus == TagStatusUntagged && earlier.Selection.TagStatus == TagStatusUntagged {
				return re.at("selection.tagStatus", "only one rule selecting %s images may select untagged images; rule %d does too", class, earlier.Priority)
			}
			if r.Selection.TagPrefixList != nil && sameSet(r.Selection.TagPrefixList, earlier.Selection.TagPrefixList) {
				return re.at("selection.tagPrefixList", "rule %d selecting %s images has the same prefixes; the prefix sets must be unique", earlier.Priority, class)
			}
		}
	}
	return nil
}

func sameSet(a, b []string) bool {
	if b == nil {
		return false
	}
	sa, sb := slices.Clone(a), slices.Clone(b)
	slices.Sort(sa)
	slices.Sort(sb)
	return slices.Equal(slices.Compact(sa), slices.Compact(sb))
}

func indexed(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}

// quoteAll renders allowed values for messages: "a", "b" or "c".
func quoteAll(values ...string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
