package lifecycle

import (
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Limits ECR documents for a lifecycle policy.
const (
	// MinPolicyLength and MaxPolicyLength bound lifecyclePolicyText in
	// characters (PutLifecyclePolicy, "Length Constraints: Minimum length of
	// 100. Maximum length of 30720"; the service quota "Lifecycle policy
	// length" is 30,720).
	MinPolicyLength = 100
	MaxPolicyLength = 30720
	// MaxWildcards is the number of '*' allowed in one tagPatternList entry
	// ("There is a maximum limit of four wildcards (*) per string").
	MaxWildcards = 4
	// MinArchiveDays is the smallest countNumber of a sinceImageTransitioned
	// rule: "You cannot configure lifecycle policies that delete images that
	// have been in archive for less than 90 days" (Examples of lifecycle
	// policies, "Combining archive and expire rules").
	MinArchiveDays = 90
)

var (
	policyFields    = []string{"rules"}
	ruleFields      = []string{"rulePriority", "description", "selection", "action"}
	selectionFields = []string{"tagStatus", "tagPatternList", "tagPrefixList", "storageClass", "countType", "countUnit", "countNumber"}
	actionFields    = []string{"type", "targetStorageClass"}
)

// Parse reads a lifecycle policy document (the lifecyclePolicyText of
// PutLifecyclePolicy and GetLifecyclePolicy) and validates it as ECR
// documents it: the length limits, "Lifecycle policy properties in Amazon
// ECR", the constraints among rules of the evaluation rules, and the
// Important notes of "Examples of lifecycle policies". It returns the rules
// sorted by priority, with StorageClass defaulted to standard.
//
// Errors are *ValidationError naming the rule (by rulePriority, or by index
// when the priority itself is wrong) and the field, in our words: ECR's own
// message is a JSON-schema failure ("Lifecycle policy validation failure:
// ..."). Unknown fields are rejected: the documented template lists every
// field the service accepts.
func Parse(text string) (*Policy, error) {
	if n := utf8.RuneCountInString(text); n < MinPolicyLength || n > MaxPolicyLength {
		return nil, docError("", fmt.Sprintf("must be between %d and %d characters long, got %d", MinPolicyLength, MaxPolicyLength, n))
	}
	if !json.Valid([]byte(text)) {
		var v any
		err := json.Unmarshal([]byte(text), &v)
		return nil, docError("", "invalid JSON: "+err.Error())
	}
	top, msg := fields(json.RawMessage(text))
	if msg != "" {
		return nil, docError("", msg)
	}
	if f := unknownField(top, policyFields...); f != "" {
		return nil, docError(f, "unknown field")
	}
	raw, ok := top["rules"]
	if !ok {
		return nil, docError("rules", "required")
	}
	if k := jsonKind(raw); k != "array" {
		return nil, docError("rules", "must be an array, got "+k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, docError("rules", err.Error())
	}
	// "A lifecycle policy contains one or more rules."
	if len(items) == 0 {
		return nil, docError("rules", "must contain at least one rule")
	}
	rules := make([]indexedRule, 0, len(items))
	for i, item := range items {
		r, err := parseRule(i, item)
		if err != nil {
			return nil, err
		}
		rules = append(rules, indexedRule{index: i, Rule: r})
	}
	slices.SortStableFunc(rules, func(a, b indexedRule) int { return a.Priority - b.Priority })
	if err := checkRuleSet(rules); err != nil {
		return nil, err
	}
	p := &Policy{Rules: make([]Rule, len(rules))}
	for i, r := range rules {
		p.Rules[i] = r.Rule
	}
	return p, nil
}

// indexedRule remembers where a rule was in the document, for errors raised
// after sorting.
type indexedRule struct {
	index int
	Rule
}

func parseRule(index int, raw json.RawMessage) (Rule, error) {
	re := ruleError{index: index}
	m, msg := fields(raw)
	if msg != "" {
		return Rule{}, re.at("", "%s", msg)
	}
	var r Rule
	// The priority first: every later error names the rule by it.
	praw, ok := m["rulePriority"]
	if !ok {
		return Rule{}, re.at("rulePriority", "required")
	}
	if r.Priority, msg = jsonPositiveInt(praw); msg != "" {
		return Rule{}, re.at("rulePriority", "%s", msg)
	}
	re.priority = r.Priority
	if f := unknownField(m, ruleFields...); f != "" {
		return Rule{}, re.at(f, "unknown field")
	}
	if draw, ok := m["description"]; ok {
		if r.Description, msg = jsonString(draw); msg != "" {
			return Rule{}, re.at("description", "%s", msg)
		}
	}
	sraw, ok := m["selection"]
	if !ok {
		return Rule{}, re.at("selection", "required")
	}
	var err error
	if r.Selection, err = parseSelection(re, sraw); err != nil {
		return Rule{}, err
	}
	araw, ok := m["action"]
	if !ok {
		return Rule{}, re.at("action", "required")
	}
	if r.Action, err = parseAction(re, araw); err != nil {
		return Rule{}, err
	}
	if err := checkRule(re, &r); err != nil {
		return Rule{}, err
	}
	return r, nil
}

func parseSelection(re ruleError, raw json.RawMessage) (Selection, error) {
	m, msg := fields(raw)
	if msg != "" {
		return Selection{}, re.at("selection", "%s", msg)
	}
	if f := unknownField(m, selectionFields...); f != "" {
		return Selection{}, re.at("selection."+f, "unknown field")
	}
	var s Selection
	str := func(name string, dst *string) error {
		v, ok := m[name]
		if !ok {
			return nil
		}
		if *dst, msg = jsonString(v); msg != "" {
			return re.at("selection."+name, "%s", msg)
		}
		return nil
	}
	list := func(name string, dst *[]string) error {
		v, ok := m[name]
		if !ok {
			return nil
		}
		items, bad, msg := jsonStrings(v)
		if msg == "" {
			*dst = items
			return nil
		}
		if bad >= 0 {
			return re.at(indexed("selection."+name, bad), "%s", msg)
		}
		return re.at("selection."+name, "%s", msg)
	}
	var tagStatus, countType string
	for _, err := range []error{
		str("tagStatus", &tagStatus),
		list("tagPrefixList", &s.TagPrefixList),
		list("tagPatternList", &s.TagPatternList),
		str("storageClass", &s.StorageClass),
		str("countType", &countType),
		str("countUnit", &s.CountUnit),
	} {
		if err != nil {
			return Selection{}, err
		}
	}
	s.TagStatus, s.CountType = TagStatus(tagStatus), CountType(countType)
	if _, ok := m["tagStatus"]; !ok {
		return Selection{}, re.at("selection.tagStatus", "required")
	}
	if _, ok := m["countType"]; !ok {
		return Selection{}, re.at("selection.countType", "required")
	}
	if _, ok := m["countUnit"]; ok && s.CountUnit == "" {
		return Selection{}, re.at("selection.countUnit", "must not be empty")
	}
	if _, ok := m["storageClass"]; ok && s.StorageClass == "" {
		return Selection{}, re.at("selection.storageClass", "must not be empty")
	}
	nraw, ok := m["countNumber"]
	if !ok {
		return Selection{}, re.at("selection.countNumber", "required")
	}
	if s.CountNumber, msg = jsonPositiveInt(nraw); msg != "" {
		return Selection{}, re.at("selection.countNumber", "%s", msg)
	}
	return s, nil
}

func parseAction(re ruleError, raw json.RawMessage) (Action, error) {
	m, msg := fields(raw)
	if msg != "" {
		return Action{}, re.at("action", "%s", msg)
	}
	if f := unknownField(m, actionFields...); f != "" {
		return Action{}, re.at("action."+f, "unknown field")
	}
	var a Action
	traw, ok := m["type"]
	if !ok {
		return Action{}, re.at("action.type", "required")
	}
	var typ string
	if typ, msg = jsonString(traw); msg != "" {
		return Action{}, re.at("action.type", "%s", msg)
	}
	a.Type = ActionType(typ)
	if sraw, ok := m["targetStorageClass"]; ok {
		if a.TargetStorageClass, msg = jsonString(sraw); msg != "" {
			return Action{}, re.at("action.targetStorageClass", "%s", msg)
		}
		if a.TargetStorageClass == "" {
			return Action{}, re.at("action.targetStorageClass", "must not be empty")
		}
	}
	return a, nil
}
