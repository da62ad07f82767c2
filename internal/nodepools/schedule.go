package nodepools

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Exclusion says why a pool cannot run a pod template.
type Exclusion struct {
	Pool Pool
	// Reason is one short phrase: "taint dedicated=gpu:NoSchedule is not
	// tolerated", "node affinity: kubernetes.io/arch In [arm64]",
	// "spec.os.name windows", "Fargate profile system selects the pod".
	Reason string
}

// Candidates returns the pools a pod from t can be placed on, in the order
// of pools, and why each other pool was excluded. Neither pools nor t is
// modified. A candidate is a copy of its pool that shares Labels,
// Requirements, Taints and Fargate with it; its Platforms are narrowed to
// those the pod's node selection admits (a Karpenter NodePool allowing
// amd64 and arm64, for a pod requiring arm64, comes back as linux/arm64).
//
// Fargate wins: when Fargate profiles select the pod, they are the only
// candidates (see chooseFargate). A pool with Fargate selectors is matched
// as a Fargate profile is, whatever its kind (a static pool configured
// with fargateSelectors); a Fargate profile whose selectors are unknown
// matches nothing. Otherwise every node pool is a candidate unless
//   - one of its taints with effect NoSchedule or NoExecute is not
//     tolerated (the kube-scheduler's TaintToleration filter;
//     PreferNoSchedule only scores);
//   - spec.os.name differs from the OS of its nodes (Kubernetes "Pod OS":
//     the kubelet rejects such a pod even though the scheduler ignores the
//     field);
//   - no node it may have satisfies the pod's nodeSelector and required
//     node affinity (the kube-scheduler's NodeAffinity filter, evaluated by
//     component-helpers' nodeaffinity; preferred terms only score).
//
// Pools with Fargate selectors never match through node labels. What a
// node pool's nodes may carry is read from its Platforms, Labels and
// Requirements and the labels EKS and Karpenter put on every node of the
// pool; for keys the pool leaves unsaid, those OpenLabel names for its kind
// are open (any value is possible) and others absent, and a static pool
// with neither Labels nor Requirements accepts every selector (its
// Platforms and Taints still apply); see matchPool. Runs on every
// admission: a pod with no nodeSelector, required affinity or spec.os.name
// costs one taint check per pool.
func Candidates(pools []Pool, t Template) (candidates []Pool, excluded []Exclusion) {
	if fg := chooseFargate(pools, t); len(fg.chosen) > 0 {
		return fargateCandidates(pools, fg)
	}
	spec := t.Spec
	if spec == nil {
		spec = &corev1.PodSpec{}
	}
	q := newPodQuery(spec)
	candidates = make([]Pool, 0, len(pools))
	for _, p := range pools {
		if fargateLike(p) {
			excluded = append(excluded, Exclusion{Pool: p, Reason: fargateMiss(p, t)})
			continue
		}
		if taint, ok := untoleratedTaint(p.Taints, spec.Tolerations); ok {
			excluded = append(excluded, Exclusion{Pool: p,
				Reason: fmt.Sprintf("taint %s is not tolerated", taint.ToString())})
			continue
		}
		platforms, reason := q.matchPool(p)
		if reason != "" {
			excluded = append(excluded, Exclusion{Pool: p, Reason: reason})
			continue
		}
		p.Platforms = platforms
		candidates = append(candidates, p)
	}
	return candidates, excluded
}

// fargateMiss says why a Fargate-like pool does not run a pod from t.
func fargateMiss(p Pool, t Template) string {
	if len(p.Fargate) == 0 {
		return "its Fargate selectors are unknown"
	}
	return fmt.Sprintf("no selector matches namespace %s and the pod's labels", t.Namespace)
}

// fargateCandidates is the answer when Fargate profiles select the pod.
func fargateCandidates(pools []Pool, fg fargateChoice) (candidates []Pool, excluded []Exclusion) {
	names := make([]string, len(fg.chosen))
	for i, c := range fg.chosen {
		names[i] = pools[c].Name
		candidates = append(candidates, pools[c])
	}
	winner := fmt.Sprintf("Fargate profile %s selects the pod", names[0])
	if len(names) > 1 {
		winner = fmt.Sprintf("Fargate profiles %s select the pod", strings.Join(names, ", "))
	}
	for i, p := range pools {
		switch {
		case slices.Contains(fg.chosen, i):
		case slices.Contains(fg.matching, i):
			excluded = append(excluded, Exclusion{Pool: p,
				Reason: fmt.Sprintf("pod label %s=%s picks another profile", LabelFargateProfile, fg.label)})
		default:
			excluded = append(excluded, Exclusion{Pool: p, Reason: winner})
		}
	}
	return candidates, excluded
}

// untoleratedTaint is the first NoSchedule or NoExecute taint the
// tolerations do not tolerate. Toleration operators Lt and Gt are honoured:
// the API server admits them only where the TaintTolerationComparisonOperators
// feature is on, and honouring them can only widen the answer.
func untoleratedTaint(taints []corev1.Taint, tolerations []corev1.Toleration) (corev1.Taint, bool) {
	if len(taints) == 0 {
		return corev1.Taint{}, false
	}
	return corev1helpers.FindMatchingUntoleratedTaint(logr.Discard(), taints, tolerations, keepsPodsOff, true)
}

// keepsPodsOff selects the taint effects the kube-scheduler filters on.
func keepsPodsOff(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

// maxShapes caps the nodes synthesized for one pool. A key whose values
// would take the count past it is treated as open, which only widens the
// answer.
const maxShapes = 256

// podQuery is what node selection reads of a pod spec, parsed once for all
// pools of one Candidates call (it is not safe for concurrent use).
type podQuery struct {
	os       string            // spec.os.name, "" when unset
	selector map[string]string // spec.nodeSelector
	terms    *corev1.NodeSelector
	// keys are the label keys the pod's selection reads, sorted, distinct:
	// nodeSelector keys, match expression keys, and kubernetes.io/os when
	// spec.os.name is set.
	keys []string

	// Most pools leave the same keys open, so the selection as matched
	// against them and its parses are shared: parsing costs more than
	// matching.
	selections map[string]podRules
	parsed     map[string]nodeaffinity.RequiredNodeAffinity
	shapes     shapes // reused for each pool
}

func newPodQuery(spec *corev1.PodSpec) *podQuery {
	q := &podQuery{selector: spec.NodeSelector}
	if spec.OS != nil {
		q.os = string(spec.OS.Name)
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil {
		q.terms = a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	if q.unconstrained() {
		return q
	}
	for k := range q.selector {
		q.keys = append(q.keys, k)
	}
	if q.terms != nil {
		for _, term := range q.terms.NodeSelectorTerms {
			for _, e := range term.MatchExpressions {
				q.keys = append(q.keys, e.Key)
			}
		}
	}
	if q.os != "" {
		q.keys = append(q.keys, corev1.LabelOSStable)
	}
	slices.Sort(q.keys)
	q.keys = slices.Compact(q.keys)
	return q
}

// unconstrained reports whether the pod places no demand on node labels,
// the common case, answered without synthesizing nodes.
func (q *podQuery) unconstrained() bool {
	return q.os == "" && len(q.selector) == 0 && q.terms == nil
}

// matchPool returns the platforms of p on which the pod's spec.os.name,
// nodeSelector and required node affinity can all be met (p.Platforms
// itself when none is ruled out), or the reason none can.
//
// Each label key the pod reads is, for p: fixed (every node carries one
// value: Labels, or a label EKS or Karpenter sets, see impliedLabel); a
// set of values (an In requirement, as Karpenter NodePool requirements
// allow several); a platform label (kubernetes.io/arch and os, from
// Platforms when p has any); open (any value is possible: a label that
// OpenLabel says varies per node of p's kind and p does not fix, a key
// under a requirement other than In, every key of a static pool with
// neither Labels nor Requirements); or else absent. Nodes are synthesized
// for every platform and every combination of allowed values, and
// component-helpers' nodeaffinity matches them against the pod's selection
// with the expressions on open keys dropped. Terms are ORed and expressions ANDed,
// so dropping an expression only widens the match: a pool wrongly kept
// costs a warning, one wrongly excluded a false "no candidate pool".
func (q *podQuery) matchPool(p Pool) (platforms []Platform, reason string) {
	if q.unconstrained() {
		return p.Platforms, ""
	}
	s := q.shapesOf(p)
	open := strings.Join(s.open, "\x00")
	r := q.selection(open, s.open)
	req := q.parse("selection\x01"+open, r.affinity)
	osOK := func(n *corev1.Node) bool {
		return q.os == "" || s.osOpen || n.Labels[corev1.LabelOSStable] == q.os
	}
	fits := func(n *corev1.Node) bool { return osOK(n) && matches(req, n) }
	if s.platforms == nil {
		if s.any(0, fits) {
			return p.Platforms, ""
		}
		return nil, q.explain(s, open, r, osOK)
	}
	var kept []Platform
	narrowed := false
	for i, pl := range s.platforms {
		switch {
		case s.any(i, fits):
			if narrowed {
				kept = append(kept, pl)
			}
		case !narrowed:
			narrowed = true
			kept = slices.Clone(s.platforms[:i])
		}
	}
	switch {
	case !narrowed:
		return p.Platforms, ""
	case len(kept) == 0:
		return nil, q.explain(s, open, r, osOK)
	}
	return kept, ""
}

// matches asks nodeaffinity whether n meets the selection. A parse error
// (which the API server's validation rules out) counts as a match: this
// package never excludes a pool on something it cannot read.
func matches(req nodeaffinity.RequiredNodeAffinity, n *corev1.Node) bool {
	ok, err := req.Match(n)
	return ok || err != nil
}

// selection is the pod's selection with the expressions on the open keys
// dropped; id is the open keys joined.
func (q *podQuery) selection(id string, open []string) podRules {
	if r, ok := q.selections[id]; ok {
		return r
	}
	if q.selections == nil {
		q.selections = map[string]podRules{}
	}
	r := q.rules(open)
	q.selections[id] = r
	return r
}

// parse returns the parse build makes, memoized under id.
func (q *podQuery) parse(id string, build func() nodeaffinity.RequiredNodeAffinity) nodeaffinity.RequiredNodeAffinity {
	if req, ok := q.parsed[id]; ok {
		return req
	}
	if q.parsed == nil {
		q.parsed = map[string]nodeaffinity.RequiredNodeAffinity{}
	}
	req := build()
	q.parsed[id] = req
	return req
}

// explain says why no shape of s fits: spec.os.name, then the nodeSelector
// (naming the first entry no node meets), then the required node affinity
// (naming, per term, the first expression no node meets). open identifies
// the keys r was pruned of.
func (q *podQuery) explain(s *shapes, open string, r podRules, osOK func(*corev1.Node) bool) string {
	if !s.anyShape(osOK) {
		return "spec.os.name " + q.os
	}
	holds := func(req nodeaffinity.RequiredNodeAffinity) bool {
		return s.anyShape(func(n *corev1.Node) bool { return osOK(n) && matches(req, n) })
	}
	selector := func() nodeaffinity.RequiredNodeAffinity {
		return nodeaffinity.NewRequiredNodeAffinity(r.selector, nil)
	}
	// Without terms the selector alone is the whole selection, already
	// parsed; without a selector, the terms are.
	selectorID, termsID := "selector\x01"+open, "terms\x01"+open
	if !r.hasTerms || r.anyTerm {
		selectorID = "selection\x01" + open
	}
	if len(r.selector) == 0 {
		termsID = "selection\x01" + open
	}
	if len(r.selector) > 0 && !holds(q.parse(selectorID, selector)) {
		keys := slices.Sorted(maps.Keys(r.selector))
		for _, k := range keys {
			entry := func() nodeaffinity.RequiredNodeAffinity {
				return nodeaffinity.NewRequiredNodeAffinity(map[string]string{k: r.selector[k]}, nil)
			}
			if !holds(q.parse("entry\x01"+k+"="+r.selector[k], entry)) {
				return fmt.Sprintf("nodeSelector %s=%s", k, r.selector[k])
			}
		}
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + r.selector[k]
		}
		return "nodeSelector " + strings.Join(parts, ", ")
	}
	terms := podRules{terms: r.terms, hasTerms: true}
	if r.hasTerms && !r.anyTerm && !holds(q.parse(termsID, terms.affinity)) {
		why := make([]string, len(r.terms))
		for i, term := range r.terms {
			why[i] = q.explainTerm(term, holds)
		}
		if len(why) == 1 {
			return "node affinity: " + why[0]
		}
		return "node affinity: no term matches: " + strings.Join(why, "; ")
	}
	return "nodeSelector and node affinity cannot both be met"
}

// explainTerm names the first expression of term no node meets, or the
// whole term when only their conjunction fails.
func (q *podQuery) explainTerm(term corev1.NodeSelectorTerm, holds func(nodeaffinity.RequiredNodeAffinity) bool) string {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return "an empty term matches no node"
	}
	parts := make([]string, len(term.MatchExpressions))
	for i, e := range term.MatchExpressions {
		parts[i] = formatRequirement(e)
		one := podRules{hasTerms: true, terms: []corev1.NodeSelectorTerm{term}}
		one.terms[0].MatchExpressions = []corev1.NodeSelectorRequirement{e}
		one.terms[0].MatchFields = nil
		if !holds(q.parse("expression\x01"+parts[i], one.affinity)) {
			return parts[i]
		}
	}
	return strings.Join(parts, " and ")
}

// formatRequirement is "kubernetes.io/arch In [arm64]" or "gpu Exists".
// Label keys and values hold no spaces, so the text identifies the
// requirement.
func formatRequirement(e corev1.NodeSelectorRequirement) string {
	if len(e.Values) == 0 {
		return fmt.Sprintf("%s %s", e.Key, e.Operator)
	}
	return fmt.Sprintf("%s %s %v", e.Key, e.Operator, e.Values)
}

// podRules is the pod's nodeSelector and required terms as matched against
// pools leaving some keys open: expressions on those keys dropped.
type podRules struct {
	selector map[string]string
	terms    []corev1.NodeSelectorTerm
	hasTerms bool // the pod has required node affinity
	anyTerm  bool // dropping emptied a term: the affinity holds on every node
}

// rules drops from the pod's selection the entries on open keys, copying
// only what changes.
func (q *podQuery) rules(open []string) podRules {
	r := podRules{selector: q.selector, hasTerms: q.terms != nil}
	if q.terms != nil {
		r.terms = q.terms.NodeSelectorTerms
	}
	if len(open) == 0 {
		return r
	}
	for k := range q.selector {
		if slices.Contains(open, k) {
			r.selector = make(map[string]string, len(q.selector))
			for k, v := range q.selector {
				if !slices.Contains(open, k) {
					r.selector[k] = v
				}
			}
			break
		}
	}
	onOpen := func(e corev1.NodeSelectorRequirement) bool { return slices.Contains(open, e.Key) }
	var pruned []corev1.NodeSelectorTerm
	for i, term := range r.terms {
		if !slices.ContainsFunc(term.MatchExpressions, onOpen) {
			if pruned != nil {
				pruned = append(pruned, term)
			}
			continue
		}
		if pruned == nil {
			pruned = append(make([]corev1.NodeSelectorTerm, 0, len(r.terms)), r.terms[:i]...)
		}
		kept := slices.DeleteFunc(slices.Clone(term.MatchExpressions), onOpen)
		if len(kept) == 0 && len(term.MatchFields) == 0 {
			r.anyTerm = true
			return r
		}
		pruned = append(pruned, corev1.NodeSelectorTerm{MatchExpressions: kept, MatchFields: term.MatchFields})
	}
	if pruned != nil {
		r.terms = pruned
	}
	return r
}

// affinity parses the rules as the kube-scheduler's NodeAffinity filter
// does (nodeaffinity.GetRequiredNodeAffinity, for a pod spec's fields).
func (r podRules) affinity() nodeaffinity.RequiredNodeAffinity {
	var a *corev1.Affinity
	if r.hasTerms && !r.anyTerm {
		a = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: r.terms},
		}}
	}
	return nodeaffinity.NewRequiredNodeAffinity(r.selector, a)
}

// shapes are the nodes a pool may have, told apart only by the keys a pod
// reads: one per platform (when the pod reads a platform label) times one
// per combination of the values the pool's requirements allow.
type shapes struct {
	node      corev1.Node // reused: its labels are rewritten for each shape
	platforms []Platform  // the platform dimension; nil when not expanded
	keys      []string    // keys expanded over values
	values    [][]string
	idx       []int    // the current combination, one index per key
	open      []string // keys any requirement on which some node may meet
	osOpen    bool     // kubernetes.io/os is open
}

// shapesOf describes p's nodes for the pod's keys, in q's reused shapes.
func (q *podQuery) shapesOf(p Pool) *shapes {
	s := &q.shapes
	if s.node.Labels == nil {
		s.node.Labels = make(map[string]string, len(q.keys)+4)
	}
	clear(s.node.Labels)
	s.platforms, s.keys, s.values, s.open = nil, s.keys[:0], s.values[:0], s.open[:0]
	readsPlatform := false
	for _, k := range q.keys {
		kind, value, values := resolveKey(p, k)
		switch kind {
		case keyOpen:
			s.open = append(s.open, k)
		case keyFixed:
			s.node.Labels[k] = value
		case keyValues:
			s.keys = append(s.keys, k)
			s.values = append(s.values, values)
		case keyPlatform:
			readsPlatform = true
		}
	}
	n := 1
	if readsPlatform {
		s.platforms = p.Platforms
		n = len(p.Platforms)
	}
	kept := 0
	for j, k := range s.keys {
		if n*len(s.values[j]) > maxShapes {
			s.open = append(s.open, k)
			continue
		}
		n *= len(s.values[j])
		s.keys[kept], s.values[kept] = k, s.values[j]
		kept++
	}
	s.keys, s.values = s.keys[:kept], s.values[:kept]
	s.idx = slices.Grow(s.idx[:0], kept)[:kept]
	slices.Sort(s.open)
	s.osOpen = slices.Contains(s.open, corev1.LabelOSStable)
	return s
}

// any reports whether fn holds for some shape of platform i (i is ignored
// when the platform dimension is not expanded).
func (s *shapes) any(i int, fn func(*corev1.Node) bool) bool {
	labels := s.node.Labels
	if s.platforms != nil {
		pl := s.platforms[i]
		labels[corev1.LabelArchStable], labels[labelBetaArch] = pl.Architecture, pl.Architecture
		labels[corev1.LabelOSStable], labels[labelBetaOS] = pl.OS, pl.OS
	}
	clear(s.idx)
	for {
		for j, k := range s.keys {
			labels[k] = s.values[j][s.idx[j]]
		}
		if fn(&s.node) {
			return true
		}
		// Advance the combination like an odometer; done when it wraps.
		j := 0
		for ; j < len(s.idx); j++ {
			s.idx[j]++
			if s.idx[j] < len(s.values[j]) {
				break
			}
			s.idx[j] = 0
		}
		if j == len(s.idx) {
			return false
		}
	}
}

// anyShape reports whether fn holds for some shape of any platform.
func (s *shapes) anyShape(fn func(*corev1.Node) bool) bool {
	for i := range max(1, len(s.platforms)) {
		if s.any(i, fn) {
			return true
		}
	}
	return false
}
