package lifecycle_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/lifecycle"
)

// Selections and actions for building policies in tables.
const (
	keep1      = `{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}`
	untagged14 = `{"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}`
	prod10     = `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "imageCountMoreThan", "countNumber": 10}`
	pulled90   = `{"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90}`
	archived90 = `{"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90}`
	expire     = `{"type": "expire"}`
	transition = `{"type": "transition", "targetStorageClass": "archive"}`
)

// rule renders one rule of a policy.
func rule(priority int, selection, action string) string {
	return fmt.Sprintf(`{"rulePriority": %d, "description": "rule %d", "selection": %s, "action": %s}`, priority, priority, selection, action)
}

// policy renders a lifecycle policy document from rendered rules.
func policy(rules ...string) string {
	return `{"rules": [` + strings.Join(rules, ", ") + `]}`
}

func mustParse(tb testing.TB, text string) *lifecycle.Policy {
	tb.Helper()
	p, err := lifecycle.Parse(text)
	if err != nil {
		tb.Fatalf("parsing %s: %v", text, err)
	}
	return p
}

func TestParseErrors(t *testing.T) {
	// sel builds a selection from field fragments.
	sel := func(fields ...string) string { return "{" + strings.Join(fields, ", ") + "}" }
	const (
		tagged    = `"tagStatus": "tagged"`
		untagged  = `"tagStatus": "untagged"`
		anyStatus = `"tagStatus": "any"`
		count1    = `"countType": "imageCountMoreThan", "countNumber": 1`
		pushed7   = `"countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7`
	)
	long := policy(rule(1, sel(anyStatus, count1), expire))
	long = long[:len(long)-2] + strings.Repeat(" ", lifecycle.MaxPolicyLength) + "]}"
	pad := strings.Repeat(" ", lifecycle.MinPolicyLength)
	tests := map[string]struct {
		text    string
		wantErr string // the whole message; "" for success
	}{
		"the smallest documented rule parses":            {policy(rule(1, keep1, expire)), ""},
		"priorities need not be sequential":              {policy(rule(10, prod10, expire), rule(20, untagged14, expire), rule(99, keep1, expire)), ""},
		"any rules are last within their storage class":  {policy(rule(1, pulled90, transition), rule(2, archived90, expire)), ""},
		"untagged rules of different storage classes":    {policy(rule(1, untagged14, expire), rule(2, sel(untagged, `"storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90`), expire)), ""},
		"four wildcards in a pattern are allowed":        {policy(rule(1, sel(tagged, `"tagPatternList": ["*test*1*2*3", "test*1*2*3*"]`, count1), expire)), ""},
		"prefix sets may overlap without being the same": {policy(rule(1, sel(tagged, `"tagPrefixList": ["prod"]`, count1), expire), rule(2, sel(tagged, `"tagPrefixList": ["prod", "eu"]`, count1), expire)), ""},

		"a policy shorter than 100 characters":  {`{"rules": []}`, "lifecycle policy: must be between 100 and 30720 characters long, got 13"},
		"a policy longer than 30720 characters": {long, fmt.Sprintf("lifecycle policy: must be between 100 and 30720 characters long, got %d", len(long))},
		"not JSON":                              {`{"rules": [` + pad, "lifecycle policy: invalid JSON: unexpected end of JSON input"},
		"not an object":                         {`[` + pad + `]`, "lifecycle policy: must be an object, got array"},
		"an unknown top-level field":            {`{"rules": [` + rule(1, keep1, expire) + `], "version": 1}`, "lifecycle policy: version: unknown field"},
		"no rules":                              {`{"Rules": [` + rule(1, keep1, expire) + `]}`, "lifecycle policy: Rules: unknown field"},
		"rules missing":                         {`{` + pad + `}`, "lifecycle policy: rules: required"},
		"rules empty":                           {`{"rules": [` + pad + `]}`, "lifecycle policy: rules: must contain at least one rule"},
		"rules not an array":                    {`{"rules": ` + rule(1, keep1, expire) + `}`, "lifecycle policy: rules: must be an array, got object"},
		"a rule that is not an object":          {policy(rule(1, keep1, expire), `"`+pad+`"`), "rules[1]: must be an object, got string"},

		"rulePriority missing":       {policy(`{"selection": ` + keep1 + `, "action": ` + expire + `}`), "rules[0]: rulePriority: required"},
		"rulePriority zero":          {policy(rule(0, keep1, expire)), "rules[0]: rulePriority: must be between 1 and 2147483647, got 0"},
		"rulePriority beyond int32":  {policy(rule(1<<31, keep1, expire)), "rules[0]: rulePriority: must be between 1 and 2147483647, got 2147483648"},
		"rulePriority not integral":  {policy(strings.Replace(rule(1, keep1, expire), `"rulePriority": 1`, `"rulePriority": 1.5`, 1)), "rules[0]: rulePriority: must be a positive integer, got 1.5"},
		"rulePriority as a string":   {policy(strings.Replace(rule(1, keep1, expire), `"rulePriority": 1`, `"rulePriority": "1"`, 1)), "rules[0]: rulePriority: must be a positive integer, got string"},
		"duplicate priorities":       {policy(rule(2, prod10, expire), rule(2, untagged14, expire)), "rule with rulePriority 2: rulePriority: 2 is also the priority of rules[0]; priorities must be unique"},
		"an unknown rule field":      {policy(strings.Replace(rule(3, keep1, expire), `"description"`, `"name"`, 1)), "rule with rulePriority 3: name: unknown field"},
		"a description not a string": {policy(strings.Replace(rule(3, keep1, expire), `"rule 3"`, `3`, 1)), "rule with rulePriority 3: description: must be a string, got number"},
		"selection missing":          {policy(`{"rulePriority": 4, "description": "a rule that names no selection at all", "action": ` + expire + `}`), "rule with rulePriority 4: selection: required"},
		"action missing":             {policy(`{"rulePriority": 4, "description": "a rule that names no action at all", "selection": ` + keep1 + `}`), "rule with rulePriority 4: action: required"},
		"an unknown selection field": {policy(rule(5, sel(tagged, `"tagPrefix": ["prod"]`, count1), expire)), "rule with rulePriority 5: selection.tagPrefix: unknown field"},
		"an unknown action field":    {policy(rule(5, keep1, `{"type": "expire", "storageClass": "archive"}`)), "rule with rulePriority 5: action.storageClass: unknown field"},

		"tagStatus missing":                 {policy(rule(6, sel(count1), expire)), "rule with rulePriority 6: selection.tagStatus: required"},
		"tagStatus is case-sensitive":       {policy(rule(6, sel(`"tagStatus": "TAGGED"`, `"tagPrefixList": ["prod"]`, count1), expire)), `rule with rulePriority 6: selection.tagStatus: must be "tagged", "untagged" or "any", got "TAGGED"`},
		"tagged without a list":             {policy(rule(6, sel(tagged, count1), expire)), `rule with rulePriority 6: selection: tagStatus "tagged" needs a tagPrefixList or a tagPatternList`},
		"tagged with both lists":            {policy(rule(6, sel(tagged, `"tagPrefixList": ["prod"], "tagPatternList": ["prod*"]`, count1), expire)), "rule with rulePriority 6: selection: tagPrefixList and tagPatternList are mutually exclusive"},
		"untagged with a prefix list":       {policy(rule(6, sel(untagged, `"tagPrefixList": ["prod"]`, count1), expire)), `rule with rulePriority 6: selection.tagPrefixList: allowed only when tagStatus is "tagged", not "untagged"`},
		"any with a pattern list":           {policy(rule(6, sel(anyStatus, `"tagPatternList": ["prod*"]`, count1), expire)), `rule with rulePriority 6: selection.tagPatternList: allowed only when tagStatus is "tagged", not "any"`},
		"an empty pattern list":             {policy(rule(6, sel(tagged, `"tagPatternList": []`, count1), expire)), "rule with rulePriority 6: selection.tagPatternList: must not be empty"},
		"an empty prefix":                   {policy(rule(6, sel(tagged, `"tagPrefixList": ["prod", ""]`, count1), expire)), "rule with rulePriority 6: selection.tagPrefixList[1]: must not be empty"},
		"a number in a pattern list":        {policy(rule(6, sel(tagged, `"tagPatternList": ["prod*", 1]`, count1), expire)), "rule with rulePriority 6: selection.tagPatternList[1]: must be a string, got number"},
		"a pattern list that is a string":   {policy(rule(6, sel(tagged, `"tagPatternList": "prod*"`, count1), expire)), "rule with rulePriority 6: selection.tagPatternList: must be an array of strings, got string"},
		"more than four wildcards":          {policy(rule(6, sel(tagged, `"tagPatternList": ["prod*", "test*1*2*3*4*5*6"]`, count1), expire)), `rule with rulePriority 6: selection.tagPatternList[1]: at most 4 wildcards (*) per pattern, got 6 in "test*1*2*3*4*5*6"`},
		"countType missing":                 {policy(rule(7, sel(anyStatus, `"countNumber": 1`), expire)), "rule with rulePriority 7: selection.countType: required"},
		"an unknown countType":              {policy(rule(7, sel(anyStatus, `"countType": "sinceImageCreated", "countUnit": "days", "countNumber": 1`), expire)), `rule with rulePriority 7: selection.countType: must be "imageCountMoreThan", "sinceImagePushed", "sinceImagePulled" or "sinceImageTransitioned", got "sinceImageCreated"`},
		"countUnit with imageCountMoreThan": {policy(rule(7, sel(untagged, `"countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 5`), expire)), `rule with rulePriority 7: selection.countUnit: allowed only with countType "sinceImagePushed", "sinceImagePulled" or "sinceImageTransitioned", not "imageCountMoreThan"`},
		"countUnit missing with since*":     {policy(rule(7, sel(untagged, `"countType": "sinceImagePushed", "countNumber": 5`), expire)), `rule with rulePriority 7: selection.countUnit: required with countType "sinceImagePushed"`},
		"countUnit in hours":                {policy(rule(7, sel(untagged, `"countType": "sinceImagePushed", "countUnit": "hours", "countNumber": 5`), expire)), `rule with rulePriority 7: selection.countUnit: must be "days", got "hours"`},
		"countNumber missing":               {policy(rule(7, sel(untagged, `"countType": "imageCountMoreThan"`), expire)), "rule with rulePriority 7: selection.countNumber: required"},
		"countNumber zero":                  {policy(rule(7, sel(untagged, `"countType": "imageCountMoreThan", "countNumber": 0`), expire)), "rule with rulePriority 7: selection.countNumber: must be between 1 and 2147483647, got 0"},
		"countNumber negative":              {policy(rule(7, sel(untagged, `"countType": "imageCountMoreThan", "countNumber": -3`), expire)), "rule with rulePriority 7: selection.countNumber: must be between 1 and 2147483647, got -3"},

		"archive with sinceImagePushed":         {policy(rule(8, sel(anyStatus, `"storageClass": "archive"`, pushed7), expire)), `rule with rulePriority 8: selection.storageClass: must be "standard" with countType "sinceImagePushed", got "archive"`},
		"storageClass is lower case":            {policy(rule(8, sel(anyStatus, `"storageClass": "STANDARD"`, pushed7), expire)), `rule with rulePriority 8: selection.storageClass: must be "standard" with countType "sinceImagePushed", got "STANDARD"`},
		"sinceImageTransitioned needs archive":  {policy(rule(8, strings.Replace(archived90, `"storageClass": "archive", `, "", 1), expire)), `rule with rulePriority 8: selection.storageClass: must be "archive" with countType "sinceImageTransitioned", got ""`},
		"sinceImageTransitioned with standard":  {policy(rule(8, strings.Replace(archived90, `"archive"`, `"standard"`, 1), expire)), `rule with rulePriority 8: selection.storageClass: must be "archive" with countType "sinceImageTransitioned", got "standard"`},
		"an unknown action":                     {policy(rule(9, keep1, `{"type": "delete"}`)), `rule with rulePriority 9: action.type: must be "expire" or "transition", got "delete"`},
		"action type missing":                   {policy(rule(9, keep1, `{"targetStorageClass": "archive"}`)), "rule with rulePriority 9: action.type: required"},
		"transition without a target":           {policy(rule(9, keep1, `{"type": "transition"}`)), `rule with rulePriority 9: action.targetStorageClass: required with action type "transition"`},
		"transition to standard":                {policy(rule(9, keep1, `{"type": "transition", "targetStorageClass": "standard"}`)), `rule with rulePriority 9: action.targetStorageClass: must be "archive", got "standard"`},
		"expire with a target":                  {policy(rule(9, keep1, `{"type": "expire", "targetStorageClass": "archive"}`)), `rule with rulePriority 9: action.targetStorageClass: allowed only with action type "transition"`},
		"sinceImagePulled cannot expire":        {policy(rule(9, pulled90, expire)), `rule with rulePriority 9: action.type: must be "transition" with countType "sinceImagePulled", got "expire"`},
		"sinceImageTransitioned cannot archive": {policy(rule(9, archived90, transition)), `rule with rulePriority 9: action.type: must be "expire" with countType "sinceImageTransitioned", got "transition"`},
		"archived images stay 90 days":          {policy(rule(9, strings.Replace(archived90, `"countNumber": 90`, `"countNumber": 89`, 1), expire)), `rule with rulePriority 9: selection.countNumber: must be at least 90 with countType "sinceImageTransitioned" (the archive's minimum storage duration), got 89`},

		"an any rule before another rule": {policy(rule(1, keep1, expire), rule(2, prod10, expire)), `rule with rulePriority 1: selection.tagStatus: a rule with tagStatus "any" must have the highest rulePriority among the rules selecting standard images, but rule 2 comes after it`},
		"two any rules":                   {policy(rule(5, keep1, expire), rule(1, pulled90, transition)), `rule with rulePriority 1: selection.tagStatus: a rule with tagStatus "any" must have the highest rulePriority among the rules selecting standard images, but rule 5 comes after it`},
		"two untagged rules":              {policy(rule(1, untagged14, expire), rule(2, sel(untagged, count1), expire)), "rule with rulePriority 2: selection.tagStatus: only one rule selecting standard images may select untagged images; rule 1 does too"},
		"the same prefixes twice":         {policy(rule(1, sel(tagged, `"tagPrefixList": ["prod", "eu"]`, count1), expire), rule(2, sel(tagged, `"tagPrefixList": ["eu", "prod"]`, pushed7), expire)), "rule with rulePriority 2: selection.tagPrefixList: rule 1 selecting standard images has the same prefixes; the prefix sets must be unique"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := lifecycle.Parse(tt.text)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if p == nil || len(p.Rules) == 0 {
					t.Fatalf("Parse returned %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %s; want %q", tt.text, tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("Parse error\n got: %s\nwant: %s", err, tt.wantErr)
			}
			var ve *lifecycle.ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("Parse error %T is not a *ValidationError", err)
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	p := mustParse(t, policy(
		rule(30, keep1, expire),
		rule(2, archived90, expire),
		rule(10, `{"tagStatus": "tagged", "tagPrefixList": ["release-", "eu"], "countType": "imageCountMoreThan", "countNumber": 3}`, expire),
		rule(20, `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}`, transition),
	))
	want := []lifecycle.Rule{
		{Priority: 2, Description: "rule 2", Selection: lifecycle.Selection{TagStatus: lifecycle.TagStatusAny, StorageClass: lifecycle.StorageClassArchive,
			CountType: lifecycle.CountSinceImageTransitioned, CountUnit: lifecycle.CountUnitDays, CountNumber: 90}, Action: lifecycle.Action{Type: lifecycle.ActionExpire}},
		{Priority: 10, Description: "rule 10", Selection: lifecycle.Selection{TagStatus: lifecycle.TagStatusTagged, TagPrefixList: []string{"release-", "eu"},
			StorageClass: lifecycle.StorageClassStandard, CountType: lifecycle.CountImageCountMoreThan, CountNumber: 3}, Action: lifecycle.Action{Type: lifecycle.ActionExpire}},
		{Priority: 20, Description: "rule 20", Selection: lifecycle.Selection{TagStatus: lifecycle.TagStatusTagged, TagPatternList: []string{"prod*"},
			StorageClass: lifecycle.StorageClassStandard, CountType: lifecycle.CountSinceImagePushed, CountUnit: lifecycle.CountUnitDays, CountNumber: 30},
			Action: lifecycle.Action{Type: lifecycle.ActionTransition, TargetStorageClass: lifecycle.StorageClassArchive}},
		{Priority: 30, Description: "rule 30", Selection: lifecycle.Selection{TagStatus: lifecycle.TagStatusAny, StorageClass: lifecycle.StorageClassStandard,
			CountType: lifecycle.CountImageCountMoreThan, CountNumber: 1}, Action: lifecycle.Action{Type: lifecycle.ActionExpire}},
	}
	if !reflect.DeepEqual(p.Rules, want) {
		t.Errorf("rules\n got: %+v\nwant: %+v", p.Rules, want)
	}
}

// TestValidationErrorLocates: the error carries the rule's place, priority
// and field for callers that point at the policy (the CLI, findings).
func TestValidationErrorLocates(t *testing.T) {
	_, err := lifecycle.Parse(policy(rule(4, prod10, expire), rule(7, `{"tagStatus": "tagged", "tagPatternList": ["a*b*c*d*e*f"], "countType": "imageCountMoreThan", "countNumber": 1}`, expire)))
	var ve *lifecycle.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse error = %v, want a *ValidationError", err)
	}
	want := lifecycle.ValidationError{Index: 1, Priority: 7, Field: "selection.tagPatternList[0]", Msg: `at most 4 wildcards (*) per pattern, got 5 in "a*b*c*d*e*f"`}
	if *ve != want {
		t.Errorf("ValidationError = %+v, want %+v", *ve, want)
	}
}
