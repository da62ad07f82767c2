package preflight

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/logcap"
)

// logLookupFailure logs the full text of a failed lookup, which no finding
// carries: a finding says what failed in our words and AWS's error code
// (lookupFailed), while AWS's own message, which can name internal hosts,
// endpoints or ARNs, is for the operator only. Every value is capped
// (logcap). A lookup cut short by the admission's budget is logged at debug
// level: its finding ("could not verify in time") says all there is.
func (e *Engine) logLookupFailure(ctx context.Context, what string, err error) {
	level := slog.LevelWarn
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		level = slog.LevelDebug
	}
	e.log.Log(ctx, level, "AWS lookup failed", "what", logcap.String(what),
		"class", string(awsclient.ClassOf(err)), "error", logcap.String(err.Error()))
}
