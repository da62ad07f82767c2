package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format), the
// subset an audit fills and GitHub code scanning reads: one run, a rule
// per finding code, a result per finding located at its workload, with a
// fingerprint that stays the same from one audit to the next.
const (
	sarifSchema   = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion  = "2.1.0"
	sarifToolName = "ecr-preflight"
	sarifToolURI  = "https://github.com/ecr-preflight/ecr-preflight"
	// sarifFingerprint is the partialFingerprints key of a result's
	// identity (SARIF asks for "name/vN": a new way of computing it gets
	// a new version).
	sarifFingerprint = "ecrPreflight/v1"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

// sarifRule is a reportingDescriptor.
type sarifRule struct {
	ID                   string             `json:"id"`
	ShortDescription     sarifText          `json:"shortDescription"`
	Help                 sarifText          `json:"help"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
}

// sarifText is a message or a multiformatMessageString, plain text only.
type sarifText struct {
	Text string `json:"text"`
}

// sarifConfiguration is a reportingConfiguration.
type sarifConfiguration struct {
	Level string `json:"level"`
}

// sarifInvocation says when the audit ran (the report's GeneratedAt) and
// whether it saw everything: an incomplete audit is not successful, and
// each thing it could not list or check is a notification.
type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	EndTimeUTC                 string              `json:"endTimeUtc"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level   string    `json:"level"`
	Message sarifText `json:"message"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          sarifProperties   `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation  `json:"physicalLocation"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           sarifRegion           `json:"region"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// sarifProperties is a result's property bag: what a consumer filters on.
type sarifProperties struct {
	Image     string `json:"image"`
	Container string `json:"container"`
	Verdict   string `json:"verdict"`
	Role      string `json:"role,omitempty"`
	Pool      string `json:"pool,omitempty"`
	PoolKind  string `json:"poolKind,omitempty"`
}

// writeSARIF renders r as a SARIF 2.1.0 log. Every finding of every item
// is a result (errors at level error, warnings at warning, info at note),
// located at its workload (sarifLocationOf) and fingerprinted
// (sarifFingerprintOf); its message names the container and image and
// ends with the fix. Rules are the codes that occur, sorted, each at the
// level of its most severe finding. The invocation is successful unless
// r.Incomplete says what could not be listed or checked, each of which is
// then an error notification.
func writeSARIF(b *bytes.Buffer, r Report) error {
	levels := map[preflight.Code]preflight.Severity{}
	for _, it := range r.Items {
		for _, f := range it.Findings {
			if cur, ok := levels[f.Code]; !ok || severityRank(f.Severity) > severityRank(cur) {
				levels[f.Code] = f.Severity
			}
		}
	}
	codes := make([]preflight.Code, 0, len(levels))
	for c := range levels {
		codes = append(codes, c)
	}
	slices.Sort(codes)

	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{Name: sarifToolName, InformationURI: sarifToolURI, Rules: []sarifRule{}}},
		Invocations: []sarifInvocation{{
			ExecutionSuccessful: len(r.Incomplete) == 0,
			EndTimeUTC:          r.GeneratedAt.UTC().Format(time.RFC3339),
		}},
		Results: []sarifResult{},
	}
	for _, what := range r.Incomplete {
		run.Invocations[0].ToolExecutionNotifications = append(run.Invocations[0].ToolExecutionNotifications,
			sarifNotification{Level: "error", Message: sarifText{Text: "audit incomplete: " + oneLine(what)}})
	}
	index := map[preflight.Code]int{}
	for i, c := range codes {
		index[c] = i
		t := ruleFor(c)
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID:                   string(c),
			ShortDescription:     sarifText{Text: t.Short},
			Help:                 sarifText{Text: t.Help},
			DefaultConfiguration: sarifConfiguration{Level: sarifLevel(levels[c])},
		})
	}
	for _, it := range r.Items {
		for _, f := range it.Findings {
			run.Results = append(run.Results, sarifResultOf(it, f, index[f.Code]))
		}
	}
	return encodeJSON(b, sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

func sarifResultOf(it Item, f preflight.Finding, rule int) sarifResult {
	w := it.Workload
	msg := fmt.Sprintf("Container %s of %s %s/%s, image %s: %s.", it.Container, w.Kind, w.Namespace, w.Name, it.Image, strings.TrimSuffix(f.Message, "."))
	if f.Fix != "" {
		msg += " Fix: " + f.Fix
	}
	props := sarifProperties{Image: it.Image, Container: it.Container, Verdict: string(it.Verdict), Role: f.Role}
	if f.Pool != nil {
		props.Pool, props.PoolKind = f.Pool.Name, f.Pool.Kind
	}
	return sarifResult{
		RuleID:              string(f.Code),
		RuleIndex:           rule,
		Level:               sarifLevel(f.Severity),
		Message:             sarifText{Text: oneLine(msg)},
		Locations:           []sarifLocation{sarifLocationOf(w)},
		PartialFingerprints: map[string]string{sarifFingerprint: sarifFingerprintOf(it, f)},
		Properties:          props,
	}
}

// sarifLocationOf locates a result at its workload, twice over:
//
//   - physically at "k8s/NAMESPACE/KIND/NAME.yaml", line 1: a relative URI
//     (no scheme; each segment percent-encoded), stable for the workload.
//     No such file exists (the workload comes from the API server, not
//     from a source file), but GitHub code scanning rejects a result
//     without a physical location, and a path per workload lets it group
//     and filter alerts by workload; a repository that keeps its
//     manifests at that path gets the alerts on them;
//   - logically as the Kubernetes object "NAMESPACE/KIND/NAME" (kind
//     "resource"), for tools that read logical locations.
func sarifLocationOf(w Workload) sarifLocation {
	uri := "k8s/" + url.PathEscape(w.Namespace) + "/" + url.PathEscape(w.Kind) + "/" + url.PathEscape(w.Name) + ".yaml"
	return sarifLocation{
		PhysicalLocation: sarifPhysicalLocation{
			ArtifactLocation: sarifArtifactLocation{URI: uri},
			Region:           sarifRegion{StartLine: 1},
		},
		LogicalLocations: []sarifLogicalLocation{{
			Name:               w.Name,
			FullyQualifiedName: qualifiedName(w),
			Kind:               "resource",
		}},
	}
}

// sarifFingerprintOf is a result's identity across audits, so that code
// scanning tracks one alert from run to run rather than matching on the
// (synthetic) file's line: the hex SHA-256 of the namespace, kind, name,
// container and code, then the pool and role (empty unless the finding is
// about one, and what tells apart two findings of one code for one
// container), NUL-separated. The image is not part of it: a new tag with
// the same problem is the same alert.
func sarifFingerprintOf(it Item, f preflight.Finding) string {
	var pool string
	if f.Pool != nil {
		pool = f.Pool.Kind + "/" + f.Pool.Name
	}
	w := it.Workload
	sum := sha256.Sum256([]byte(strings.Join([]string{
		w.Namespace, w.Kind, w.Name, it.Container, string(f.Code), pool, f.Role,
	}, "\x00")))
	return hex.EncodeToString(sum[:])
}

// sarifLevel maps a severity to a SARIF level: error, warning or note.
func sarifLevel(s preflight.Severity) string {
	switch s {
	case preflight.SeverityError:
		return "error"
	case preflight.SeverityWarning:
		return "warning"
	}
	return "note"
}
