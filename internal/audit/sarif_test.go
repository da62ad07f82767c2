package audit

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
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
		Invocations []struct {
			ExecutionSuccessful        *bool `json:"executionSuccessful"`
			ToolExecutionNotifications []struct {
				Level   string `json:"level"`
				Message struct {
					Text string `json:"text"`
				} `json:"message"`
			} `json:"toolExecutionNotifications"`
		} `json:"invocations"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
					Region struct {
						StartLine int `json:"startLine"`
					} `json:"region"`
				} `json:"physicalLocation"`
				LogicalLocations []struct {
					Name               string `json:"name"`
					FullyQualifiedName string `json:"fullyQualifiedName"`
					Kind               string `json:"kind"`
				} `json:"logicalLocations"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
			Properties          map[string]string `json:"properties"`
		} `json:"results"`
	} `json:"runs"`
}

func parseSARIF(t *testing.T, r Report) parsedSARIF {
	t.Helper()
	var out bytes.Buffer
	if err := Write(&out, FormatSARIF, r); err != nil {
		t.Fatal(err)
	}
	var log parsedSARIF
	if err := json.Unmarshal(out.Bytes(), &log); err != nil {
		t.Fatalf("the SARIF output does not unmarshal: %v", err)
	}
	return log
}

func TestSARIF(t *testing.T) {
	r := fixtureReport()
	log := parseSARIF(t, r)
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
	fingerprints := map[string]bool{}
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
			t.Fatalf("result %d: want one location with one logical location, got %+v", i, res.Locations)
		}
		w := it.Workload
		if phys, want := res.Locations[0].PhysicalLocation, "k8s/"+qualifiedName(w)+".yaml"; phys.ArtifactLocation.URI != want || phys.Region.StartLine != 1 {
			t.Errorf("result %d: physical location %+v, want %s line 1", i, phys, want)
		}
		loc := res.Locations[0].LogicalLocations[0]
		if loc.Name != w.Name || loc.FullyQualifiedName != qualifiedName(w) || loc.Kind != "resource" {
			t.Errorf("result %d: logical location %+v, want the resource %s", i, loc, qualifiedName(w))
		}
		fp := res.PartialFingerprints["ecrPreflight/v1"]
		if len(res.PartialFingerprints) != 1 || len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
			t.Errorf("result %d: partialFingerprints %v, want one ecrPreflight/v1 SHA-256", i, res.PartialFingerprints)
		}
		if fingerprints[fp] {
			t.Errorf("result %d: fingerprint %s is another result's too", i, fp)
		}
		fingerprints[fp] = true
		if res.Properties["image"] != it.Image || res.Properties["container"] != it.Container || res.Properties["role"] != f.Role {
			t.Errorf("result %d: properties %v", i, res.Properties)
		}
		if f.Pool != nil && res.Properties["pool"] != f.Pool.Name {
			t.Errorf("result %d: pool %q, want %q", i, res.Properties["pool"], f.Pool.Name)
		}
	}
}

func TestSARIFInvocation(t *testing.T) {
	complete := Build(generatedAt, nil)
	incomplete := fixtureReport()
	tests := map[string]struct {
		r             Report
		successful    bool
		notifications []string
	}{
		"a complete audit succeeded": {complete, true, nil},
		"an incomplete audit did not, and says why": {incomplete, false, []string{
			"audit incomplete: " + fixtureIncomplete[0],
			"audit incomplete: node pools: eks:ListNodegroups <cluster|prod> & more: AccessDeniedException second line",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inv := parseSARIF(t, tc.r).Runs[0].Invocations
			if len(inv) != 1 || inv[0].ExecutionSuccessful == nil {
				t.Fatalf("invocations %+v, want one with executionSuccessful", inv)
			}
			if *inv[0].ExecutionSuccessful != tc.successful {
				t.Errorf("executionSuccessful %v, want %v", *inv[0].ExecutionSuccessful, tc.successful)
			}
			var got []string
			for _, n := range inv[0].ToolExecutionNotifications {
				if n.Level != "error" {
					t.Errorf("notification %q at level %q, want error", n.Message.Text, n.Level)
				}
				got = append(got, n.Message.Text)
			}
			if !slices.Equal(got, tc.notifications) {
				t.Errorf("notifications %q, want %q", got, tc.notifications)
			}
		})
	}
}

// TestSARIFFingerprint: a result keeps its fingerprint from one audit to
// the next while its workload, container, code, pool and role stay, even
// with another image or message; any of those makes another alert.
func TestSARIFFingerprint(t *testing.T) {
	base := Item{Workload: workload("shop", "Deployment", "api"), Container: "api", Image: registry + "/shop/api:3.1"}
	f := preflight.Finding{Code: preflight.CodePlatformNotAvailable, Severity: preflight.SeverityError,
		Pool: &preflight.PoolRef{Name: "graviton", Kind: "karpenter-nodepool"}, Role: armRole, Message: "m"}
	want := sarifFingerprintOf(base, f)
	same := map[string]func(*Item, *preflight.Finding){
		"another image":    func(it *Item, _ *preflight.Finding) { it.Image = registry + "/shop/api:3.2" },
		"another message":  func(_ *Item, f *preflight.Finding) { f.Message, f.Fix = "other", "fix" },
		"another severity": func(_ *Item, f *preflight.Finding) { f.Severity = preflight.SeverityWarning },
		"another UID":      func(it *Item, _ *preflight.Finding) { it.Workload.UID = "uid-new" },
	}
	other := map[string]func(*Item, *preflight.Finding){
		"another namespace": func(it *Item, _ *preflight.Finding) { it.Workload.Namespace = "shop2" },
		"another kind":      func(it *Item, _ *preflight.Finding) { it.Workload.Kind = "StatefulSet" },
		"another name":      func(it *Item, _ *preflight.Finding) { it.Workload.Name = "api2" },
		"another container": func(it *Item, _ *preflight.Finding) { it.Container = "sidecar" },
		"another code":      func(_ *Item, f *preflight.Finding) { f.Code = preflight.CodeImageNotFound },
		"another pool":      func(_ *Item, f *preflight.Finding) { f.Pool = &preflight.PoolRef{Name: "mixed", Kind: "self-managed"} },
		"no pool":           func(_ *Item, f *preflight.Finding) { f.Pool = nil },
		"another role":      func(_ *Item, f *preflight.Finding) { f.Role = generalRole },
		"fields shifted":    func(it *Item, _ *preflight.Finding) { it.Workload.Name, it.Container = "api/api", "" },
	}
	for name, change := range same {
		it, g := base, f
		change(&it, &g)
		if got := sarifFingerprintOf(it, g); got != want {
			t.Errorf("%s: fingerprint %s, want %s (the same alert)", name, got, want)
		}
	}
	for name, change := range other {
		it, g := base, f
		change(&it, &g)
		if got := sarifFingerprintOf(it, g); got == want {
			t.Errorf("%s: the fingerprint did not change", name)
		}
	}
}

func TestSARIFLocationEscapesTheURI(t *testing.T) {
	loc := sarifLocationOf(Workload{Namespace: "a", Kind: "Pod", Name: "p q/?#%"})
	if got, want := loc.PhysicalLocation.ArtifactLocation.URI, "k8s/a/Pod/p%20q%2F%3F%23%25.yaml"; got != want {
		t.Errorf("uri %q, want %q", got, want)
	}
	if got := loc.LogicalLocations[0].FullyQualifiedName; got != "a/Pod/p q/?#%" {
		t.Errorf("fullyQualifiedName %q, want the name as it is", got)
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
		preflight.CodeImageExpiring, preflight.CodeImageExpired, preflight.CodeSkipped,
	}
	for _, c := range codes {
		if _, ok := codeTexts[c]; !ok {
			t.Errorf("%s has no description", c)
		}
	}
	if got := ruleFor("SomethingNew"); got.Short == "" || got.Help == "" {
		t.Errorf("a code added later gets no words: %+v", got)
	}
}

func validLevel(l string) bool { return l == "error" || l == "warning" || l == "note" }
