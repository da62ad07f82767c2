package imageplatform

import "fmt"

// Mode is how far the platform check reads (--platform-check).
type Mode string

const (
	// ModeOff makes no check: every image's platforms are unknown.
	ModeOff Mode = "off"
	// ModeIndex reads indexes and manifest lists (one BatchGetImage per
	// digest); a single-architecture image's platform stays unknown.
	ModeIndex Mode = "index"
	// ModeFull also reads a single-architecture image's config blob
	// (GetDownloadUrlForLayer and a GET of its URL) for its os and
	// architecture, and an index entry's when the entry names no platform.
	ModeFull Mode = "full"
)

// DefaultMode is the mode when none is configured: the check is on, at the
// cost of one BatchGetImage per index digest, and needs no access to the
// layer bucket.
const DefaultMode = ModeIndex

// Modes lists every mode, in the order help text shows them.
var Modes = []Mode{ModeOff, ModeIndex, ModeFull}

// ParseMode turns a flag value into a Mode.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown platform check %q (want off, index or full)", s)
}
