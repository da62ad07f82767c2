package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ecr-preflight/ecr-preflight/internal/imageref"
	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

const (
	// defaultConcurrency is how many checks run at once when Options
	// leaves it unset.
	defaultConcurrency = 8
	// maxImagesPerCheck bounds one CheckPools call, so that progress moves
	// and one call's cost stays that of a large pod, not a whole cluster.
	maxImagesPerCheck = 100
)

// Checker answers whether images will pull for the node pools a pod
// template can run on (preflight.Engine satisfies it), one Result per
// image in the order given.
type Checker interface {
	CheckPools(ctx context.Context, images []string, pl nodepools.Placement) []preflight.Result
}

var _ Checker = (*preflight.Engine)(nil)

// Placer says where pods of a template can run (webhook.StaticRoles and
// webhook.Pools satisfy it).
type Placer interface {
	Placement(ctx context.Context, t nodepools.Template) (nodepools.Placement, error)
}

// Options configures Run.
type Options struct {
	// Checker and Placer are required.
	Checker Checker
	Placer  Placer
	// Concurrency is how many CheckPools calls run at once; 0 means 8.
	Concurrency int
	// Progress, if set, is called with (0, total) before the first check
	// and again as each check finishes; done and total count distinct
	// (placement, image) pairs. Calls never overlap and done only grows.
	Progress func(done, total int)
	// Now is the clock for Report.GeneratedAt; nil means time.Now.
	Now func() time.Time
}

// Run checks every container of targets and builds the report.
//
// Targets are grouped by placement (Placement.Key()): each distinct image
// of a group is checked once, in CheckPools calls of at most 100 images,
// at most Concurrency calls at a time. Every container then gets its
// image's answer as an Item. A target the Placer cannot place gets unknown
// items with a LookupFailed finding; the run goes on. A Checker that
// panics or answers short leaves its images unknown the same way.
//
// When ctx ends, Run stops starting checks and returns the report with
// ctx.Err(): the containers not answered by then are unknown ("not
// checked: the audit ran out of time"); answers that arrive after the end
// are dropped, since they may have been cut short. It returns an error
// without running when Checker or Placer is nil.
func Run(ctx context.Context, targets []Target, o Options) (Report, error) {
	if o.Checker == nil || o.Placer == nil {
		return Report{}, errors.New("audit: Options.Checker and Options.Placer are required")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}

	placed, groups, err := placeTargets(ctx, targets, o.Placer)
	if err == nil {
		err = checkGroups(ctx, groups, o)
	}

	// What was not answered when ctx ended is unknown, never left out: a
	// report of only what was checked would read as clean.
	late := unknownResult("not checked: the audit ran out of time", "give the audit more time (--timeout) or more AWS calls per second")
	var items []Item
	for i, t := range targets {
		for _, c := range t.Containers {
			r, ok := placed[i].answer(c.Image)
			if !ok {
				if err == nil {
					continue
				}
				r = *late
				r.Image = c.Image
			}
			items = append(items, Item{
				Workload: t.Workload, Container: c.Name, Image: c.Image,
				Verdict: r.Verdict, Findings: r.Findings, Pools: r.Pools,
			})
		}
	}
	return Build(o.Now(), items), err
}

// placementGroup is the targets that share a placement: each of their
// distinct images is checked once for it.
type placementGroup struct {
	pl nodepools.Placement
	// images are the distinct images, in first-seen order.
	images []string
	// answers holds every image of the group; an answer is nil until
	// received. checkGroups writes it under its lock.
	answers map[string]*preflight.Result
}

// placement is where one target's answers come from: its group, or the
// reason it has none.
type placement struct {
	g *placementGroup
	// failed, when g is nil, is the answer for every image of the target.
	failed *preflight.Result
}

func (p placement) answer(image string) (preflight.Result, bool) {
	if p.g == nil {
		if p.failed == nil {
			return preflight.Result{}, false
		}
		r := *p.failed
		r.Image = image
		return r, true
	}
	if r := p.g.answers[image]; r != nil {
		return *r, true
	}
	return preflight.Result{}, false
}

// placeTargets places every target and groups them by placement, in
// first-seen order. It stops with ctx.Err() when ctx ends.
func placeTargets(ctx context.Context, targets []Target, p Placer) ([]placement, []*placementGroup, error) {
	placed := make([]placement, len(targets))
	byKey := map[string]*placementGroup{}
	var groups []*placementGroup
	for i, t := range targets {
		if len(t.Containers) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return placed, groups, err
		}
		pl, err := p.Placement(ctx, t.Template)
		if err != nil && ctx.Err() != nil {
			return placed, groups, ctx.Err()
		}
		if err != nil {
			placed[i].failed = unknownResult(fmt.Sprintf("could not determine node pools: %v", err),
				"run `ecr-preflight pools` to see what node pool discovery finds")
			continue
		}
		key := pl.Key()
		g := byKey[key]
		if g == nil {
			g = &placementGroup{pl: pl, answers: map[string]*preflight.Result{}}
			byKey[key] = g
			groups = append(groups, g)
		}
		for _, c := range t.Containers {
			if _, seen := g.answers[c.Image]; !seen {
				g.answers[c.Image] = nil
				g.images = append(g.images, c.Image)
			}
		}
		placed[i].g = g
	}
	return placed, groups, nil
}

// imageChunk is one CheckPools call: up to maxImagesPerCheck images of a
// group.
type imageChunk struct {
	g      *placementGroup
	images []string
}

// checkGroups asks o.Checker about every group's images, o.Concurrency
// calls at a time, and stores the answers in the groups.
func checkGroups(ctx context.Context, groups []*placementGroup, o Options) error {
	var chunks []imageChunk
	total := 0
	for _, g := range groups {
		total += len(g.images)
		for _, images := range byRepository(g.images, maxImagesPerCheck) {
			chunks = append(chunks, imageChunk{g: g, images: images})
		}
	}
	var mu sync.Mutex // guards answers, done and Progress calls
	done := 0
	if o.Progress != nil {
		o.Progress(0, total)
	}
	slots := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for _, c := range chunks {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			results := checkImages(ctx, o.Checker, c)
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			for i, img := range c.images {
				c.g.answers[img] = &results[i]
			}
			done += len(c.images)
			if o.Progress != nil {
				o.Progress(done, total)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// byRepository splits images into chunks of at most size, keeping the
// images of one repository together (unless it alone has more): the
// engine looks up each repository once per call, so a repository split
// across calls would cost AWS a lookup per call. Chunks keep the images'
// first-seen order within each repository.
func byRepository(images []string, size int) [][]string {
	var repos []string
	of := map[string][]string{}
	for _, img := range images {
		repo := img // not a parsable reference: a chunk member like any other
		if ref, err := imageref.Parse(img); err == nil {
			repo = ref.Registry + "/" + ref.Repository
		}
		if _, ok := of[repo]; !ok {
			repos = append(repos, repo)
		}
		of[repo] = append(of[repo], img)
	}
	var chunks [][]string
	var cur []string
	for _, repo := range repos {
		imgs := of[repo]
		if len(cur) > 0 && len(cur)+len(imgs) > size {
			chunks, cur = append(chunks, cur), nil
		}
		for len(imgs) > size {
			chunks, imgs = append(chunks, imgs[:size]), imgs[size:]
		}
		cur = append(cur, imgs...)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// checkImages is one CheckPools call, with one Result per image whatever
// the Checker does: a panic (which would end the webhook's process in
// the continuous audit) or a wrong number of results leaves images
// unknown.
func checkImages(ctx context.Context, ch Checker, c imageChunk) (out []preflight.Result) {
	defer func() {
		if v := recover(); v != nil {
			logf.FromContext(ctx).Error(fmt.Errorf("panic: %v", v), "checking images panicked",
				"images", len(c.images), "stack", string(debug.Stack()))
			out = unknownAll(c.images, "internal error while checking")
		}
	}()
	results := ch.CheckPools(ctx, c.images, c.g.pl)
	if len(results) != len(c.images) {
		logf.FromContext(ctx).Error(nil, "checker answered with the wrong number of results", "images", len(c.images), "answers", len(results))
		answered := results
		results = unknownAll(c.images, "no answer from the check")
		copy(results, answered)
	}
	return results
}

// unknownAll is an unknown result for each of images.
func unknownAll(images []string, reason string) []preflight.Result {
	out := make([]preflight.Result, len(images))
	for i, img := range images {
		out[i] = *unknownResult(reason, "")
		out[i].Image = img
	}
	return out
}

// unknownResult is a result with nothing definite against the pull and a
// LookupFailed finding saying why: "could not check" is never "cannot
// pull".
func unknownResult(reason, fix string) *preflight.Result {
	return &preflight.Result{Verdict: preflight.VerdictUnknown, Findings: []preflight.Finding{{
		Code: preflight.CodeLookupFailed, Severity: preflight.SeverityWarning, Message: reason, Fix: fix,
	}}}
}
