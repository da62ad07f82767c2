package preflight

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	gocache "github.com/patrickmn/go-cache"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/lifecycle"
)

// LifecycleLookups reads what predicting lifecycle expiry needs
// (*awsclient.Lookups implements it).
type LifecycleLookups interface {
	LifecyclePolicy(ctx context.Context, repo awsclient.Repository) (text string, found bool, err error)
	RepositoryImages(ctx context.Context, repo awsclient.Repository) ([]awsclient.ImageDetail, error)
}

// LifecycleOptions turn on lifecycle expiry prediction.
type LifecycleOptions struct {
	// Lookups reads lifecycle policies and repositories' images. Nil: no
	// prediction.
	Lookups LifecycleLookups
	// WarnWithin is how far ahead a dated expiry (sinceImagePushed,
	// sinceImagePulled, sinceImageTransitioned) is warned about
	// (--lifecycle-warn-days). Zero: DefaultLifecycleWarnWithin.
	WarnWithin time.Duration
	// WarnPushes is how few further matching pushes before an
	// imageCountMoreThan rule selects the image are warned about
	// (--lifecycle-warn-pushes). Zero: DefaultLifecycleWarnPushes.
	WarnPushes int
	// ListWait bounds the wait for a repository's image listing (count
	// rules need it; a large repository takes many pages). The listing
	// goes on without the caller and is cached, so a later check has it;
	// this one predicts only what needs no listing. Zero: no bound but
	// the caller's. The webhook keeps it short: it is advice.
	ListWait time.Duration
}

// Defaults of LifecycleOptions.
const (
	DefaultLifecycleWarnWithin = 7 * 24 * time.Hour
	DefaultLifecycleWarnPushes = 1
)

// lifecycles predicts lifecycle expiry for the engine.
type lifecycles struct {
	LifecycleOptions
	// parsed keeps parsed policies by text, as policyCache does for IAM.
	parsed *gocache.Cache
}

func newLifecycles(o LifecycleOptions) *lifecycles {
	if o.Lookups == nil {
		return nil
	}
	if o.WarnWithin <= 0 {
		o.WarnWithin = DefaultLifecycleWarnWithin
	}
	if o.WarnPushes <= 0 {
		o.WarnPushes = DefaultLifecycleWarnPushes
	}
	return &lifecycles{LifecycleOptions: o, parsed: gocache.New(time.Hour, 10*time.Minute)}
}

type parsedLifecycle struct {
	policy *lifecycle.Policy
	err    error
}

func (l *lifecycles) parse(text string) (*lifecycle.Policy, error) {
	if v, ok := l.parsed.Get(text); ok {
		p := v.(parsedLifecycle)
		return p.policy, p.err
	}
	p, err := lifecycle.Parse(text)
	l.parsed.SetDefault(text, parsedLifecycle{p, err})
	return p, err
}

// expiryFindings predicts, for each of found (the images checked, as
// DescribeImages answered), whether a lifecycle rule of t will expire or
// archive it soon, as ImageExpiring or ImageExpired findings by index of
// found. A policy or listing that cannot be read costs the prediction
// only: it is logged, and no finding is made (lifecycle findings are
// advice about tomorrow, never a verdict about today).
func (e *Engine) expiryFindings(ctx context.Context, t target, found []awsclient.ImageDetail) [][]Finding {
	out := make([][]Finding, len(found))
	l := e.lifecycle
	if l == nil || len(found) == 0 {
		return out
	}
	text, ok, err := l.Lookups.LifecyclePolicy(ctx, t.Repository)
	if err != nil {
		e.logLookupFailure(ctx, "reading the lifecycle policy of "+t.Name, err)
		return out
	}
	if !ok {
		return out
	}
	policy, err := l.parse(text)
	if err != nil {
		e.log.WarnContext(ctx, "lifecycle policy not understood; expiry not predicted", "repository", t.Name, "error", err)
		return out
	}
	images := found
	if slices.ContainsFunc(policy.Rules, func(r lifecycle.Rule) bool {
		return r.Selection.CountType == lifecycle.CountImageCountMoreThan
	}) {
		// A count rule ranks an image among all that the rule matches.
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if l.ListWait > 0 {
			lctx, cancel = context.WithTimeout(ctx, l.ListWait)
		}
		images, err = l.Lookups.RepositoryImages(lctx, t.Repository)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && lctx.Err() != nil:
			e.log.DebugContext(ctx, "repository listing not ready; count rules predicted on a later check", "repository", t.Name)
			return out
		case err != nil:
			e.logLookupFailure(ctx, "listing the images of "+t.Name, err)
			return out
		}
	}
	now := e.decider.now()
	fates := lifecycle.Evaluate(policy, lifecycleImages(images), now)
	for i, d := range found {
		fate, ok := fates[d.Digest]
		if !ok {
			continue
		}
		if f, warn := l.finding(t, fate, now, d.ID.Tag); warn {
			out[i] = append(out[i], f)
		}
	}
	return out
}

// lifecycleImages are the images as the evaluator reads them.
func lifecycleImages(details []awsclient.ImageDetail) []lifecycle.Image {
	out := make([]lifecycle.Image, 0, len(details))
	for _, d := range details {
		out = append(out, lifecycle.Image{
			Digest: d.Digest, Tags: d.Tags, PushedAt: d.PushedAt, LastPulledAt: d.LastPulledAt,
			StorageClass:       lifecycle.StorageClassOf(d.Status),
			LastTransitionedAt: d.LastArchivedAt, LastActivatedAt: d.LastActivatedAt,
		})
	}
	return out
}

// finding is the finding for fate, and whether it is near enough to warn.
func (l *lifecycles) finding(t target, fate lifecycle.Fate, now time.Time, tag string) (Finding, bool) {
	r := fate.Rule
	verb := "expire"
	if r.Action.Type == lifecycle.ActionTransition {
		verb = "archive"
	}
	rule := fmt.Sprintf("lifecycle rule %d", r.Priority)
	if r.Description != "" {
		rule += fmt.Sprintf(" (%q)", r.Description)
	}
	f := Finding{
		Severity:   SeverityWarning,
		Repository: t.ref(),
		Lifecycle:  &LifecycleRef{Priority: r.Priority, Action: string(r.Action.Type), AfterPushes: fate.AfterPushes},
		Command:    []string{"aws", "ecr", "get-lifecycle-policy", "--repository-name", t.Name, "--region", t.Region},
	}
	keep := fmt.Sprintf("pin the workload to an image the rule keeps, or change %s so that it keeps this one (aws ecr get-lifecycle-policy --repository-name %s); a rule never acts on an image that a rule of higher priority selects by its tags",
		rule, t.Name)
	switch {
	case fate.Selected:
		f.Code = CodeImageExpired
		f.Message = fmt.Sprintf("%s of repository %s already selects the image: ECR will %s it shortly (usually within 24 hours)", rule, t.Name, verb)
		f.Fix = keep
		return f, true
	case !fate.At.IsZero():
		if fate.At.Sub(now) > l.WarnWithin {
			return Finding{}, false
		}
		at := fate.At.UTC()
		f.Lifecycle.At = &at
		f.Code = CodeImageExpiring
		f.Message = fmt.Sprintf("%s of repository %s will %s the image on %s (%s)", rule, t.Name, verb, at.Format("2006-01-02 15:04 MST"), countWords(r.Selection))
		f.Fix = keep
		return f, true
	case fate.AfterPushes > 0:
		if fate.AfterPushes > l.WarnPushes {
			return Finding{}, false
		}
		f.Code = CodeImageExpiring
		pushes := "the next push"
		if fate.AfterPushes > 1 {
			pushes = fmt.Sprintf("%d more pushes", fate.AfterPushes)
		}
		f.Message = fmt.Sprintf("%s of repository %s keeps the newest %d images it selects: %s it matches will %s this one", rule, t.Name, r.Selection.CountNumber, pushes, verb)
		if tag != "" {
			// Pods that pull by this tag then get whatever it names.
			f.Message += fmt.Sprintf(" (unless that push moves tag %s to the new image)", tag)
		}
		f.Fix = keep
		return f, true
	}
	return Finding{}, false
}

// countWords is a rule's age criterion in words: "30 days after its push".
func countWords(s lifecycle.Selection) string {
	since := strings.TrimPrefix(string(s.CountType), "sinceImage")
	return fmt.Sprintf("%d %s since it was %s", s.CountNumber, s.CountUnit, strings.ToLower(since))
}
