package lifecycle_test

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/lifecycle"
)

// evalNow is the injected clock of the evaluation tables.
var evalNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func daysAgo(d int) time.Time    { return evalNow.AddDate(0, 0, -d) }
func daysLater(d int) *time.Time { t := evalNow.AddDate(0, 0, d); return &t }

// img is a standard image pushed d days before evalNow.
func img(digest string, d int, tags ...string) lifecycle.Image {
	return lifecycle.Image{Digest: digest, Tags: tags, PushedAt: daysAgo(d)}
}

func selected(priority int) wantFate {
	return wantFate{RulePriority: priority, Action: "expire", Selected: true}
}
func archivedNow(priority int) wantFate {
	return wantFate{RulePriority: priority, Action: "transition", Selected: true}
}
func expiresAt(priority int, at *time.Time) wantFate {
	return wantFate{RulePriority: priority, Action: "expire", At: at}
}
func archivedAt(priority int, at *time.Time) wantFate {
	return wantFate{RulePriority: priority, Action: "transition", At: at}
}
func afterPushes(priority, n int) wantFate {
	return wantFate{RulePriority: priority, Action: "expire", AfterPushes: n}
}

func TestEvaluate(t *testing.T) {
	restored := func(digest string, pushed, pulled, activated int) lifecycle.Image {
		i := img(digest, pushed, "v-"+digest)
		if pulled > 0 {
			i.LastPulledAt = daysAgo(pulled)
		}
		i.LastTransitionedAt = daysAgo(activated + 30)
		i.LastActivatedAt = daysAgo(activated)
		return i
	}
	withStorage := func(i lifecycle.Image, class string) lifecycle.Image { i.StorageClass = class; return i }
	withPull := func(i lifecycle.Image, d int) lifecycle.Image { i.LastPulledAt = daysAgo(d); return i }
	tie := evalNow.Add(-time.Hour)
	tests := map[string]struct {
		policy string
		images []lifecycle.Image
		now    time.Time // evalNow when zero
		want   map[string]wantFate
	}{
		"a higher rule's tags protect the images it keeps from a lower rule": {
			policy(rule(1, prod10, expire), rule(2, `{"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}`, expire)),
			[]lifecycle.Image{img("P", 30, "prod-1"), img("X", 30, "dev-1")},
			time.Time{},
			map[string]wantFate{"P": afterPushes(1, 10), "X": selected(2)},
		},
		"a lower count rule counts the images higher rules claim": {
			policy(rule(1, `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 100}`, expire),
				rule(2, `{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2}`, expire)),
			[]lifecycle.Image{img("P1", 1, "prod-1"), img("P2", 2, "prod-2"), img("D1", 3, "dev-1"), img("D2", 4, "dev-2")},
			time.Time{},
			map[string]wantFate{"P1": expiresAt(1, daysLater(99)), "P2": expiresAt(1, daysLater(98)), "D1": selected(2), "D2": selected(2)},
		},
		"keeping N, the i-th newest is selected after N-i+1 more pushes": {
			policy(rule(1, `{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3}`, expire)),
			[]lifecycle.Image{img("I5", 5, "v5"), img("I1", 1, "v1"), img("I3", 3), img("I2", 2, "v2"), img("I4", 4, "v4")},
			time.Time{},
			map[string]wantFate{"I1": afterPushes(1, 3), "I2": afterPushes(1, 2), "I3": afterPushes(1, 1), "I4": selected(1), "I5": selected(1)},
		},
		"an untagged rule sees only untagged images, an any rule all of them": {
			policy(rule(1, `{"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}`, expire), rule(2, keep1, expire)),
			[]lifecycle.Image{img("U1", 1), img("U2", 2), img("T1", 3, "v1")},
			time.Time{},
			map[string]wantFate{"U1": afterPushes(1, 1), "U2": selected(1), "T1": selected(2)},
		},
		"every prefix must start one of the tags, not necessarily the same one": {
			policy(rule(1, `{"tagStatus": "tagged", "tagPrefixList": ["prod", "eu"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 10}`, expire)),
			[]lifecycle.Image{img("A", 20, "prod-1", "eu-1"), img("B", 20, "prod-eu"), img("C", 20, "prod"), img("D", 5, "eu-prod", "prod")},
			time.Time{},
			map[string]wantFate{"A": selected(1), "D": expiresAt(1, daysLater(5))},
		},
		"sinceImagePulled counts from the pull, the push if never pulled, the restore if not pulled since": {
			policy(rule(1, pulled90, transition)),
			[]lifecycle.Image{
				img("never-pulled", 100, "a"), img("never-pulled-new", 10, "b"), withPull(img("pulled", 300, "c"), 30),
				restored("restored-unpulled", 300, 200, 10), restored("restored-pulled-since", 300, 20, 50), restored("restored-never-pulled", 300, 0, 95),
			},
			time.Time{},
			map[string]wantFate{
				"never-pulled": archivedNow(1), "never-pulled-new": archivedAt(1, daysLater(80)), "pulled": archivedAt(1, daysLater(60)),
				"restored-unpulled": archivedAt(1, daysLater(80)), "restored-pulled-since": archivedAt(1, daysLater(70)), "restored-never-pulled": archivedNow(1),
			},
		},
		"a restored image is ordered by its restore time": {
			policy(rule(1, keep1, expire)),
			[]lifecycle.Image{restored("old-restored", 300, 0, 1), img("new", 5, "v2")},
			time.Time{},
			map[string]wantFate{"old-restored": afterPushes(1, 1), "new": selected(1)},
		},
		"an archived image without lastArchivedAt counts from its push": {
			policy(rule(1, archived90, expire)),
			[]lifecycle.Image{withStorage(img("A", 20, "v1"), lifecycle.ImageArchive)},
			time.Time{},
			map[string]wantFate{"A": expiresAt(1, daysLater(70))},
		},
		"a transition rule archives standard images; archived ones wait for the archive rule": {
			policy(rule(1, `{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}`, transition),
				rule(2, archived90, expire)),
			[]lifecycle.Image{img("S", 40, "prod-1"), func() lifecycle.Image {
				i := withStorage(img("A", 100, "prod-0"), lifecycle.ImageArchive)
				i.LastTransitionedAt = daysAgo(10)
				return i
			}()},
			time.Time{},
			map[string]wantFate{"S": archivedNow(1), "A": expiresAt(2, daysLater(80))},
		},
		"an image being restored is neither selected nor counted": {
			policy(rule(1, keep1, expire)),
			[]lifecycle.Image{withStorage(img("A", 1, "v3"), lifecycle.StorageClassOf("ACTIVATING")), img("B", 2, "v2"), img("C", 3, "v1")},
			time.Time{},
			map[string]wantFate{"B": afterPushes(1, 1), "C": selected(1)},
		},
		"an image listed twice counts once": {
			policy(rule(1, `{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2}`, expire)),
			[]lifecycle.Image{img("A", 1, "v3"), img("A", 1, "v3"), img("B", 2, "v2"), img("C", 3, "v1")},
			time.Time{},
			map[string]wantFate{"A": afterPushes(1, 2), "B": afterPushes(1, 1), "C": selected(1)},
		},
		"exactly countNumber days old is not yet selected, a second more is": {
			policy(rule(1, untagged14, expire)),
			[]lifecycle.Image{img("U1", 14), {Digest: "U2", PushedAt: daysAgo(14).Add(-time.Second)}},
			time.Time{},
			map[string]wantFate{"U1": expiresAt(1, daysLater(0)), "U2": selected(1)},
		},
		"the clock's time zone does not matter": {
			policy(rule(1, untagged14, expire)),
			[]lifecycle.Image{{Digest: "U1", PushedAt: daysAgo(10).In(time.FixedZone("UTC+9", 9*3600))}, img("U2", 15)},
			evalNow.In(time.FixedZone("UTC-5", -5*3600)),
			map[string]wantFate{"U1": expiresAt(1, daysLater(4)), "U2": selected(1)},
		},
		"pushed at the same instant, the greater digest counts as the newer": {
			policy(rule(1, keep1, expire)),
			[]lifecycle.Image{{Digest: "sha256:b", PushedAt: tie}, {Digest: "sha256:a", PushedAt: tie}},
			time.Time{},
			map[string]wantFate{"sha256:b": afterPushes(1, 1), "sha256:a": selected(1)},
		},
		"images no rule takes in are absent": {
			policy(rule(1, prod10, expire), rule(2, untagged14, expire)),
			[]lifecycle.Image{img("dev", 400, "dev-1"), withStorage(img("old-prod", 400), lifecycle.ImageArchive)},
			time.Time{},
			map[string]wantFate{},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, tt.policy)
			now := tt.now
			if now.IsZero() {
				now = evalNow
			}
			got := lifecycle.Evaluate(p, tt.images, now)
			gotWant := make(map[string]wantFate, len(got))
			for digest, fate := range got {
				gotWant[digest] = toWant(fate)
				i := slices.IndexFunc(p.Rules, func(r lifecycle.Rule) bool { return r.Priority == fate.Rule.Priority })
				if i < 0 || !reflect.DeepEqual(p.Rules[i], fate.Rule) {
					t.Errorf("image %s: Fate.Rule %+v is not a rule of the policy", digest, fate.Rule)
				}
			}
			for _, digest := range slices.Sorted(maps.Keys(tt.want)) {
				if g, ok := gotWant[digest]; !ok || g.String() != tt.want[digest].String() {
					t.Errorf("image %s: fate %v (present %v), want %v", digest, g, ok, tt.want[digest])
				}
			}
			for _, digest := range slices.Sorted(maps.Keys(gotWant)) {
				if _, ok := tt.want[digest]; !ok {
					t.Errorf("image %s: fate %v, want none", digest, gotWant[digest])
				}
			}
		})
	}
}

func TestEvaluateWithoutPolicy(t *testing.T) {
	if got := lifecycle.Evaluate(nil, []lifecycle.Image{img("A", 1)}, evalNow); got == nil || len(got) != 0 {
		t.Errorf("Evaluate(nil) = %v, want an empty map", got)
	}
}

func TestStorageClassOf(t *testing.T) {
	for status, want := range map[string]string{
		"":           lifecycle.ImageStandard,
		"ACTIVE":     lifecycle.ImageStandard,
		"ARCHIVED":   lifecycle.ImageArchive,
		"ACTIVATING": "ACTIVATING",
	} {
		if got := lifecycle.StorageClassOf(status); got != want {
			t.Errorf("StorageClassOf(%q) = %q, want %q", status, got, want)
		}
	}
}
