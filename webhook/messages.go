package webhook

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ecr-preflight/ecr-preflight/internal/nodepools"
	"github.com/ecr-preflight/ecr-preflight/internal/preflight"
)

// Limits on what goes back to the API server. It drops a warning with
// control characters and truncates long ones, and kubectl prints every
// warning on the user's terminal: short, clean and few is the contract.
const (
	// warningAim is the length a warning's free-text detail is cut to fit.
	warningAim = 120
	// warningMax is the hard limit on one warning, in bytes.
	warningMax = 256
	// maxWarnings caps the warnings of one admission; the rest are
	// summarised in a last warning.
	maxWarnings = 10
	// maxDenialLines caps the findings spelled out in a denial: enough for
	// every image of any real pod, while bounding a pathological one.
	maxDenialLines = 100
	// fieldMax caps any single finding field quoted in a denial.
	fieldMax = 512
)

// sanitize makes s safe for a header-borne warning or a one-line log:
// control and format characters (newlines, bidi overrides, zero-width
// marks) become spaces, and runs of spaces collapse to one.
func sanitize(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) || r == utf8.RuneError {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut
// with "...". ASCII dots keep the byte arithmetic exact.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 3 {
		return strings.Repeat(".", max(n, 0))
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// elide shortens s to at most n bytes by cutting its middle: an image
// reference is identified by its start (account, region) and its end
// (repository, tag), rarely by what lies between.
func elide(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 3 {
		return truncate(s, n)
	}
	head := (n - 3) / 2
	tail := n - 3 - head
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	start := len(s) - tail
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return s[:head] + "..." + s[start:]
}

// clip is truncate(sanitize(s), n) that reads at most the first 4n+4
// bytes of s (n runes of UTF-8, and then some): a hostile megabyte costs
// what a short string does. A cut before sanitizing still ends in "...".
func clip(s string, n int) string {
	if len(s) <= 4*n+4 {
		return truncate(sanitize(s), n)
	}
	head := sanitize(prefix(s, 4*n+4))
	if len(head) > n {
		return truncate(head, n)
	}
	return truncate(head+"...", n)
}

// clipMiddle is elide(sanitize(s), n) that reads at most 4n+4 bytes at
// each end of s.
func clipMiddle(s string, n int) string {
	if len(s) <= 8*n+8 {
		return elide(sanitize(s), n)
	}
	return elide(sanitize(prefix(s, 4*n+4))+"..."+sanitize(suffix(s, 4*n+4)), n)
}

// prefix is s cut to at most n bytes, on a rune boundary.
func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// suffix is the last n bytes of s at most, from a rune boundary.
func suffix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return s[i:]
}

// containerList names the containers running one image, e.g.
// `container "ui"` or `containers "a", "b" and 2 more`: short, for a warning.
func containerList(names []string) string { return containerNames(names, 2, 40) }

// containerNames names up to shown containers, each cut to nameMax bytes.
// A denial passes every name whole (a container name has at most 63).
func containerNames(names []string, shown, nameMax int) string {
	quoted := make([]string, 0, min(shown, len(names)))
	for i, n := range names {
		if i == shown {
			break
		}
		quoted = append(quoted, fmt.Sprintf("%q", clip(n, nameMax)))
	}
	switch {
	case len(names) == 0:
		return "pod"
	case len(names) == 1:
		return "container " + quoted[0]
	case len(names) <= shown:
		return "containers " + strings.Join(quoted, ", ")
	default:
		return fmt.Sprintf("containers %s and %d more", strings.Join(quoted, ", "), len(names)-shown)
	}
}

// findingWarning renders one finding as a warning such as
//
//	container "ui": 1234567890.dkr.ecr.us-west-2.amazonaws.com/app:1.2.1 will not pull: RepositoryPolicyDenies (statement "new policy")
//
// The code is the stable cause; the detail in brackets is the deciding
// statement, the condition keys left open, or for findings with neither,
// the start of the engine's message.
func findingWarning(containers []string, image string, against bool, f preflight.Finding, nameRole bool) string {
	pool := ""
	if f.Pool != nil {
		pool = clip(nodepools.Kind(f.Pool.Kind).Describe(f.Pool.Name), 64)
	}
	verb := "will not pull"
	switch {
	case f.Code == preflight.CodePlatformNotAvailable && !against && pool != "":
		verb, pool = "will not pull on some nodes of "+pool, ""
	case f.Code == preflight.CodeImageExpiring && f.Lifecycle != nil && f.Lifecycle.Action == "transition":
		verb = "will be archived by a lifecycle rule"
	case f.Code == preflight.CodeImageExpiring:
		verb = "will be removed by a lifecycle rule"
	case f.Code == preflight.CodeImageExpired && f.Lifecycle != nil && f.Lifecycle.Action == "transition":
		verb = "is being archived by a lifecycle rule"
	case f.Code == preflight.CodeImageExpired:
		verb = "is being removed by a lifecycle rule"
	case !against:
		verb = "could not be verified"
	}
	if pool != "" {
		verb += " on " + pool
	}
	head := fmt.Sprintf("%s: %s %s", containerList(containers), clipMiddle(image, 100), verb)
	if f.Code != "" {
		head += ": " + clip(string(f.Code), 40)
	}

	var details []string
	switch {
	case f.Statement != "":
		details = append(details, fmt.Sprintf("statement %q", clip(f.Statement, 48)))
	case len(f.Platforms) > 0:
		details = append(details, "no variant for "+clip(strings.Join(f.Platforms, ", "), 60))
	case f.Lifecycle != nil:
		details = append(details, lifecycleDetail(*f.Lifecycle))
	case len(f.UnknownKeys) > 0:
		details = append(details, "condition keys "+clip(strings.Join(f.UnknownKeys, ", "), 60))
	}
	if (nameRole || f.Pool != nil) && f.Role != "" {
		details = append(details, "role "+clip(preflight.RoleName(f.Role), 48))
	}
	if len(details) == 0 && !against && f.Message != "" {
		// An unknown without a statement is only actionable with its reason;
		// messages put the cause last, so keep both ends.
		details = append(details, clipMiddle(f.Message, max(warningAim-len(head)-3, 64)))
	}
	if len(details) > 0 {
		head += " (" + strings.Join(details, ", ") + ")"
	}
	return truncate(head, warningMax)
}

// lifecycleDetail is "rule 2, on 2026-12-03", "rule 1, after the next
// push" or "rule 3, selected now".
func lifecycleDetail(l preflight.LifecycleRef) string {
	d := fmt.Sprintf("rule %d", l.Priority)
	switch {
	case l.At != nil:
		return d + ", on " + l.At.UTC().Format("2006-01-02")
	case l.AfterPushes == 1:
		return d + ", after the next push"
	case l.AfterPushes > 1:
		return fmt.Sprintf("%s, after %d more pushes", d, l.AfterPushes)
	}
	return d + ", selected now"
}

// noticeWarning renders a warning that is about the admission rather than
// one image (a skip, a bad label, a saturated server).
func noticeWarning(format string, args ...any) string {
	return clip("ecr-preflight: "+fmt.Sprintf(format, args...), warningMax)
}

// capWarnings removes duplicates (one finding per candidate role often
// reads the same) and keeps at most maxWarnings, the last one pointing at
// the logs for the rest.
func capWarnings(ws []string) []string {
	seen := make(map[string]bool, len(ws))
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil
	}
	if len(out) <= maxWarnings {
		return out
	}
	dropped := len(out) - (maxWarnings - 1)
	return append(out[:maxWarnings-1],
		noticeWarning("%d more findings not shown; see the webhook logs or run ecr-preflight check", dropped))
}

// denialLine is one failing image in a denial.
type denialLine struct {
	containers []string
	image      string
	finding    preflight.Finding
}

// denialMessage is the full story of a rejection in one string: every
// failing image with its containers, the deciding statement, the engine's
// message and the fix. It is what the user reads after kubectl apply
// fails, so it spends words where warnings cannot.
func denialMessage(kind, namespace, name string, lines []denialLine) string {
	var b strings.Builder
	obj := name
	if namespace != "" {
		obj = namespace + "/" + name
	}
	if obj == "" || obj == namespace+"/" {
		obj = "(new object)"
	}
	what := "the node role cannot pull"
	if slices.ContainsFunc(lines, func(l denialLine) bool { return l.finding.Pool != nil }) {
		what = "that will not pull where it can run"
	}
	fmt.Fprintf(&b, "ecr-preflight: %s %s uses images %s:", clip(kind, fieldMax), clip(obj, fieldMax), what)
	for i, l := range lines {
		if i == maxDenialLines {
			fmt.Fprintf(&b, "\n- and %d more; run ecr-preflight check for all", len(lines)-i)
			break
		}
		f := l.finding
		fmt.Fprintf(&b, "\n- %s: %s", containerNames(l.containers, len(l.containers), fieldMax), clip(l.image, fieldMax))
		if f.Code != "" {
			fmt.Fprintf(&b, ": %s", clip(string(f.Code), 64))
		}
		if f.Message != "" {
			// The engine's message names the statement and the action(s)
			// (preflight.Finding's contract); the role only by name, so the
			// full ARN follows it.
			fmt.Fprintf(&b, ": %s", clip(f.Message, fieldMax))
		}
		if f.Role != "" {
			fmt.Fprintf(&b, " (role %s)", clip(f.Role, 256))
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, ". Fix: %s", clip(f.Fix, fieldMax))
		}
	}
	return b.String()
}

// plural is "1 image" or "3 images".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
