package audit

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// parsedSARIF is the SARIF log as a consumer reads it, decoded
// independently of the writer's types.
type parsedSARIF struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID               string `json:"id"`
					ShortDescription struct {
						Text string `json:"text"`
					} `json:"shortDescription"`
					Help struct {
						Text string `json:"text"`
					} `json:"help"`
					DefaultConfiguration struct {
						Level string `json:"level"`
					} `json:"defaultConfiguration"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				LogicalLocations []struct {
					Name               string `json:"name"`
					FullyQualifiedName string `json:"fullyQualifiedName"`
					Kind               string `json:"kind"`
				} `json:"logicalLocations"`
			} `json:"locations"`
			Properties map[string]string `json:"properties"`
		} `json:"results"`
	} `json:"runs"`
}

func TestSARIF(t *testing.T) {
	r := fixtureReport()
	var out bytes.Buffer
	if err := Write(&out, FormatSARIF, r); err != nil {
		t.Fatal(err)
	}
	var log parsedSARIF
	if err := json.Unmarshal(out.Bytes(), &log); err != nil {
		t.Fatalf("the SARIF output does not unmarshal: %v", err)
	}
	if log.Schema != "https://json.schemastore.org/sarif-2.1.0.json" || log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("$schema %q, version %q, %d runs; want SARIF 2.1.0 with one run", log.Schema, log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	if run.Tool.Driver.Name != "ecr-preflight" {
		t.Errorf("driver %q", run.Tool.Driver.Name)
	}

	rules := map[string]int{}
	for i, rule := range run.Tool.Driver.Rules {
		if _, dup := rules[rule.ID]; dup {
			t.Errorf("rule %s declared twice", rule.ID)
		}
		rules[rule.ID] = i
		if rule.ShortDescription.Text == "" || rule.Help.Text == "" || !validLevel(rule.DefaultConfiguration.Level) {
			t.Errorf("rule %s lacks a description, help or level: %+v", rule.ID, rule)
		}
	}

	// One result per finding, in the report's order.
	var want []preflight.Finding
	var wantItems []Item
	for _, it := range r.Items {
		for _, f := range it.Findings {
			want = append(want, f)
			wantItems = append(wantItems, it)
		}
	}
	if len(run.Results) != len(want) {
		t.Fatalf("%d results, want one per finding: %d", len(run.Results), len(want))
	}
	for i, res := range run.Results {
		idx, declared := rules[res.RuleID]
		if !declared {
			t.Errorf("result %d: ruleId %s is not a declared rule", i, res.RuleID)
		} else if idx != res.RuleIndex {
			t.Errorf("result %d: ruleIndex %d, but rule %s is at %d", i, res.RuleIndex, res.RuleID, idx)
		}
		f, it := want[i], wantItems[i]
		if res.RuleID != string(f.Code) || res.Level != sarifLevel(f.Severity) {
			t.Errorf("result %d: %s at %s, want %s at %s", i, res.RuleID, res.Level, f.Code, sarifLevel(f.Severity))
		}
		if len(res.Locations) != 1 || len(res.Locations[0].LogicalLocations) != 1 {
			t.Fatalf("result %d: want one logical location, got %+v", i, res.Locations)
		}
		loc := res.Locations[0].LogicalLocations[0]
		if loc.Name != it.Workload.Name || loc.FullyQualifiedName != qualifiedName(it.Workload) || loc.Kind != "object" {
			t.Errorf("result %d: location %+v, want %s", i, loc, qualifiedName(it.Workload))
		}
		if res.Properties["image"] != it.Image || res.Properties["container"] != it.Container || res.Properties["role"] != f.Role {
			t.Errorf("result %d: properties %v", i, res.Properties)
		}
		if f.Pool != nil && res.Properties["pool"] != f.Pool.Name {
			t.Errorf("result %d: pool %q, want %q", i, res.Properties["pool"], f.Pool.Name)
		}
	}
}

func TestSARIFRuleLevelIsTheMostSevere(t *testing.T) {
	r := Build(generatedAt, []Item{
		item("a", "Pod", "p", "c", "i", preflight.VerdictPartlyPullable,
			finding(preflight.CodePlatformNotAvailable, preflight.SeverityWarning),
			finding(preflight.CodePlatformNotAvailable, preflight.SeverityError)),
		item("a", "Pod", "q", "c", "j", preflight.VerdictSkipped, finding(preflight.CodeSkipped, preflight.SeverityInfo)),
	})
	var out bytes.Buffer
	if err := Write(&out, FormatSARIF, r); err != nil {
		t.Fatal(err)
	}
	var log parsedSARIF
	if err := json.Unmarshal(out.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	levels := map[string]string{}
	for _, rule := range log.Runs[0].Tool.Driver.Rules {
		levels[rule.ID] = rule.DefaultConfiguration.Level
	}
	want := map[string]string{"PlatformNotAvailable": "error", "Skipped": "note"}
	if len(levels) != len(want) || levels["PlatformNotAvailable"] != "error" || levels["Skipped"] != "note" {
		t.Errorf("rule levels %v, want %v", levels, want)
	}
}

func TestEveryCodeHasWords(t *testing.T) {
	codes := []preflight.Code{
		preflight.CodeImageNotFound, preflight.CodeRepositoryNotFound, preflight.CodeRepositoryPolicyDenies,
		preflight.CodeRegistryPolicyDenies, preflight.CodeIdentityPolicyDenies, preflight.CodePullNotAllowed,
		preflight.CodeAuthTokenNotAllowed, preflight.CodeCrossAccountNotAllowed, preflight.CodeUndetermined,
		preflight.CodeLookupFailed, preflight.CodeInvalidImageReference, preflight.CodeImageArchived,
		preflight.CodeImageImportedOnPull, preflight.CodePullThroughCacheNotAllowed, preflight.CodePlatformNotAvailable,
		preflight.CodeSkipped,
	}
	for _, c := range codes {
		if _, ok := codeTexts[c]; !ok {
			t.Errorf("%s has no description", c)
		}
	}
	if got := ruleFor("ImageExpiring"); got.Short == "" || got.Help == "" {
		t.Errorf("a code added later gets no words: %+v", got)
	}
}

func validLevel(l string) bool { return l == "error" || l == "warning" || l == "note" }
