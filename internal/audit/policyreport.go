package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// PolicyReports follow the wgpolicyk8s.io/v1alpha2 PolicyReport CRD of the
// Kubernetes Policy WG, as Kyverno installs it and Policy Reporter reads
// it: results sit at the top level beside summary, each with source,
// policy, rule, result (pass, fail, warn, error, skip), severity, message,
// resources (ObjectReferences), properties (string to string) and
// timestamp ({seconds, nanos}, both required).
const (
	// policyReportName is the name of ecr-preflight's report in each
	// namespace, and the policy, source and field manager of its results.
	policyReportName     = "ecr-preflight"
	policyFieldManager   = "ecr-preflight"
	policyManagedByLabel = "app.kubernetes.io/managed-by"

	// policyRulePullable is the rule of a result without findings.
	policyRulePullable = "Pullable"

	// Severities: only high and medium, which every release of the CRD
	// accepts (older Kyverno CRDs enumerate high, medium and low only).
	policySeverityHigh   = "high"
	policySeverityMedium = "medium"
)

var policyReportGVK = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"}

// PolicyResult values of the CRD, the keys of its summary too.
const (
	policyResultPass  = "pass"
	policyResultFail  = "fail"
	policyResultWarn  = "warn"
	policyResultError = "error"
	policyResultSkip  = "skip"
)

// PolicyReports turns r into one PolicyReport per namespace with items,
// sorted by namespace: named "ecr-preflight", labelled
// app.kubernetes.io/managed-by=ecr-preflight, with a summary counting its
// results and one result per item (in r.Items' order), for the policy
// "ecr-preflight":
//
//   - pullable: result pass, rule "Pullable"; with a warning finding
//     (ImageExpiring), warn, severity medium;
//   - not-pullable, partly-pullable: fail, severity high;
//   - unknown: warn, severity medium;
//   - skipped (not a private ECR image): skip, rule "Skipped".
//
// The rule of the others is the code of the first finding of the deciding
// severity (error for fail, warning for warn), the message joins those
// findings' messages, and properties carry image, container, verdict and
// the first finding's fix. resources references the workload; the
// timestamp is r.GeneratedAt.
func PolicyReports(r Report) []*unstructured.Unstructured {
	results := map[string][]any{}
	counts := map[string]map[string]int64{}
	for _, it := range r.Items {
		ns := it.Workload.Namespace
		if ns == "" {
			continue // every kind audited is namespaced
		}
		res, result := policyResult(it, r)
		if counts[ns] == nil {
			counts[ns] = map[string]int64{}
		}
		counts[ns][result]++
		results[ns] = append(results[ns], res)
	}
	namespaces := slices.Sorted(maps.Keys(results))
	out := make([]*unstructured.Unstructured, 0, len(namespaces))
	for _, ns := range namespaces {
		summary := map[string]any{}
		for _, k := range []string{policyResultPass, policyResultFail, policyResultWarn, policyResultError, policyResultSkip} {
			summary[k] = counts[ns][k]
		}
		u := &unstructured.Unstructured{Object: map[string]any{"summary": summary, "results": results[ns]}}
		u.SetGroupVersionKind(policyReportGVK)
		u.SetNamespace(ns)
		u.SetName(policyReportName)
		u.SetLabels(map[string]string{policyManagedByLabel: policyFieldManager})
		out = append(out, u)
	}
	return out
}

// policyResult is it as a PolicyReportResult, and its result.
func policyResult(it Item, r Report) (res map[string]any, result string) {
	result, rule, severity, message, fix := policyOutcome(it)
	w := it.Workload
	ref := map[string]any{"apiVersion": w.APIVersion, "kind": w.Kind, "namespace": w.Namespace, "name": w.Name}
	if w.UID != "" {
		ref["uid"] = w.UID
	}
	props := map[string]any{"image": it.Image, "container": it.Container, "verdict": string(it.Verdict)}
	if fix != "" {
		props["fix"] = fix
	}
	res = map[string]any{
		"source":     policyReportName,
		"policy":     policyReportName,
		"rule":       rule,
		"result":     result,
		"scored":     true,
		"message":    message,
		"resources":  []any{ref},
		"properties": props,
		"timestamp": map[string]any{
			"seconds": r.GeneratedAt.Unix(),
			"nanos":   int64(r.GeneratedAt.Nanosecond()),
		},
	}
	if severity != "" {
		res["severity"] = severity
	}
	return res, result
}

// policyOutcome is what a PolicyReport result says of it.
func policyOutcome(it Item) (result, rule, severity, message, fix string) {
	var decisive preflight.Severity
	switch it.Verdict {
	case preflight.VerdictPullable:
		// It pulls today; a warning (a lifecycle rule about to expire it)
		// still deserves one.
		if !slices.ContainsFunc(it.Findings, func(f preflight.Finding) bool { return f.Severity == preflight.SeverityWarning }) {
			return policyResultPass, policyRulePullable, "", "the image will pull", ""
		}
		result, severity, decisive = policyResultWarn, policySeverityMedium, preflight.SeverityWarning
	case preflight.VerdictSkipped:
		result, decisive = policyResultSkip, preflight.SeverityInfo
	case preflight.VerdictNotPullable, preflight.VerdictPartlyPullable:
		result, severity, decisive = policyResultFail, policySeverityHigh, preflight.SeverityError
	default:
		result, severity, decisive = policyResultWarn, policySeverityMedium, preflight.SeverityWarning
	}
	var messages []string
	for _, f := range it.Findings {
		if f.Severity != decisive {
			continue
		}
		if rule == "" {
			rule, fix = string(f.Code), f.Fix
		}
		if !slices.Contains(messages, f.Message) {
			messages = append(messages, f.Message)
		}
	}
	if rule == "" {
		// The engine always says why; anything else gets the verdict.
		rule, messages = string(it.Verdict), []string{"verdict " + string(it.Verdict)}
		if it.Verdict == preflight.VerdictSkipped {
			rule, messages = string(preflight.CodeSkipped), []string{"not checked"}
		}
	}
	return result, rule, severity, strings.Join(messages, "; "), fix
}

// WritePolicyReports makes the cluster's ecr-preflight PolicyReports those
// of r: it creates or updates each namespace's report by server-side apply
// (field manager "ecr-preflight", forcing ownership, so the whole report
// is replaced) and deletes ecr-preflight's reports in namespaces without
// items in r. r must therefore cover the whole cluster: an audit of one
// namespace or label selection would delete the other namespaces' reports
// and shrink the rest.
//
// installed is false, with no error, when the API server does not serve
// wgpolicyk8s.io/v1alpha2 PolicyReports (the CRD is not installed). A
// namespace whose report cannot be written does not stop the others: the
// errors are joined; a cancelled ctx stops it with ctx.Err(). c needs
// list, create, patch (apply) and delete on policyreports in all
// namespaces.
func WritePolicyReports(ctx context.Context, c client.Client, r Report) (installed bool, err error) {
	existing := &unstructured.UnstructuredList{}
	existing.SetGroupVersionKind(policyReportGVK.GroupVersion().WithKind(policyReportGVK.Kind + "List"))
	if err := c.List(ctx, existing, client.MatchingLabels{policyManagedByLabel: policyFieldManager}); err != nil {
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		return true, fmt.Errorf("listing PolicyReports: %w", err)
	}

	var errs []error
	current := map[string]bool{}
	for _, u := range PolicyReports(r) {
		if ctx.Err() != nil {
			return true, errors.Join(append(errs, ctx.Err())...)
		}
		// Kept even if it cannot be written now: the namespace still has
		// workloads, so its last report is not stale.
		current[u.GetNamespace()] = true
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(policyFieldManager), client.ForceOwnership)
		switch {
		case err == nil:
		case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
			// The namespace is going away with its workloads and reports:
			// nothing to write there, and no failure.
		default:
			errs = append(errs, fmt.Errorf("applying PolicyReport %s/%s: %w", u.GetNamespace(), u.GetName(), err))
		}
	}
	for i := range existing.Items {
		old := &existing.Items[i]
		if old.GetName() != policyReportName || current[old.GetNamespace()] {
			continue
		}
		if ctx.Err() != nil {
			return true, errors.Join(append(errs, ctx.Err())...)
		}
		if err := c.Delete(ctx, old); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting PolicyReport %s/%s: %w", old.GetNamespace(), old.GetName(), err))
		}
	}
	return true, errors.Join(errs...)
}
