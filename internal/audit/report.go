// Package audit checks the workloads running in a cluster, as admission
// would check them if they were applied again now, and reports what would
// fail: the `ecr-preflight audit` command and the webhook's continuous
// audit share it. It lists the workloads, checks each distinct image once
// per placement with the preflight engine, and renders the report (table,
// JSON, Markdown, JUnit, SARIF) and PolicyReports.
package audit

import (
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// Workload names one object with a pod template.
type Workload struct {
	// Kind is the object's kind: Deployment, StatefulSet, DaemonSet,
	// ReplicaSet, Job, CronJob or Pod.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// APIVersion is the kind's group/version (apps/v1, batch/v1, v1), for
	// Events and PolicyReport results that refer to the object.
	APIVersion string `json:"apiVersion"`
	// UID is the object's UID, for the same references.
	UID string `json:"uid,omitempty"`
}

// Item is one container of one workload and the answer for its image.
type Item struct {
	Workload  Workload `json:"workload"`
	Container string   `json:"container"`
	Image     string   `json:"image"`
	// Verdict, Findings and Pools are the engine's answer for the image
	// where the workload's pods can run (preflight.Result).
	Verdict  preflight.Verdict       `json:"verdict"`
	Findings []preflight.Finding     `json:"findings"`
	Pools    []preflight.PoolVerdict `json:"pools,omitempty"`
}

// Problem is one kind of finding across the cluster: every item with a
// finding of Code, counted.
type Problem struct {
	Code preflight.Code `json:"code"`
	// Severity is the most severe of the grouped findings' severities.
	Severity preflight.Severity `json:"severity"`
	// Workloads and Images count the distinct workloads and images with
	// the problem.
	Workloads int `json:"workloads"`
	Images    int `json:"images"`
	// Items are the containers with the problem, sorted by namespace,
	// kind, name and container; each carries only this problem's
	// findings (Report.Items has all of them).
	Items []Item `json:"items"`
}

// Summary counts what the audit looked at.
type Summary struct {
	Workloads  int `json:"workloads"`
	Containers int `json:"containers"`
	Images     int `json:"images"`
	// Verdicts counts containers by verdict.
	Verdicts map[preflight.Verdict]int `json:"verdicts"`
}

// Report is an audit's result.
type Report struct {
	// GeneratedAt is when the audit ran (UTC).
	GeneratedAt time.Time `json:"generatedAt"`
	Summary     Summary   `json:"summary"`
	// Incomplete is what could not be listed or checked, one line each
	// ("listing CronJobs: forbidden", "node pools: eks:ListNodegroups:
	// AccessDeniedException"); the report covers the rest. Empty when the
	// audit saw everything.
	Incomplete []string `json:"incomplete,omitempty"`
	// Problems are grouped by finding code, most severe first, then by
	// urgency, then by how many workloads they touch. Info findings (Skipped) are not
	// problems.
	Problems []Problem `json:"problems"`
	// Items are every container audited, sorted by namespace, kind, name
	// and container.
	Items []Item `json:"items"`
}
