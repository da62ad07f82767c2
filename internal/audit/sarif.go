package audit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format), the
// subset an audit fills: one run, a rule per finding code, a result per
// finding located at its workload (a logical location: an audit has no
// source files).
const (
	sarifSchema   = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion  = "2.1.0"
	sarifToolName = "ecr-preflight"
	sarifToolURI  = "https://github.com/ecr-preflight/ecr-preflight"
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

// sarifInvocation says when the audit ran (the report's GeneratedAt).
type sarifInvocation struct {
	ExecutionSuccessful bool   `json:"executionSuccessful"`
	EndTimeUTC          string `json:"endTimeUtc"`
}

type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	RuleIndex  int             `json:"ruleIndex"`
	Level      string          `json:"level"`
	Message    sarifText       `json:"message"`
	Locations  []sarifLocation `json:"locations"`
	Properties sarifProperties `json:"properties"`
}

type sarifLocation struct {
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations"`
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
// located at its workload "namespace/Kind/name"; its message names the
// container and image and ends with the fix. Rules are the codes that
// occur, sorted, each at the level of its most severe finding.
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
			ExecutionSuccessful: true,
			EndTimeUTC:          r.GeneratedAt.UTC().Format(time.RFC3339),
		}},
		Results: []sarifResult{},
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
		RuleID:    string(f.Code),
		RuleIndex: rule,
		Level:     sarifLevel(f.Severity),
		Message:   sarifText{Text: oneLine(msg)},
		Locations: []sarifLocation{{LogicalLocations: []sarifLogicalLocation{{
			Name:               w.Name,
			FullyQualifiedName: qualifiedName(w),
			Kind:               "object",
		}}}},
		Properties: props,
	}
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
