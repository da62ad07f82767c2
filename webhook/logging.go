package webhook

import (
	"slices"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Every admission adds the request's values (object, user, request ID,
// kind, operation, mode) to its logger, and almost no admission writes a
// line at the default verbosity. A JSON handler formats values as they are
// added, which costs a warm admission more than its whole check: lazyValues
// keeps what it is given and hands it to the sink beneath only when a line
// is written. What reaches the log is the same.

// lazyValues is a logr.LogSink over sink that defers WithValues (and the
// request logger's values, see requestLogger) until Info or Error.
type lazyValues struct {
	sink logr.LogSink
	// depth is the call depth still to be added to sink.
	depth int
	// with adds values to the sink beneath before any in values: the
	// request's, built only when a line is written.
	with func(logr.Logger) logr.Logger
	// values holds each WithValues call's key/values, oldest first, each
	// applied on its own as the sink beneath would have seen it. They are
	// kept as given, not copied: callers pass fresh variadic lists.
	values [][]any
}

var _ logr.CallDepthLogSink = lazyValues{}

// lazyLogger makes log's further WithValues lazy, after with (if not nil)
// adds its own values.
func lazyLogger(log logr.Logger, with func(logr.Logger) logr.Logger) logr.Logger {
	sink := log.GetSink()
	if sink == nil {
		return log
	}
	if _, ok := sink.(lazyValues); ok && with == nil {
		return log
	}
	// lazyValues.Info and Error are one more frame between the caller and
	// the sink beneath.
	return log.WithSink(lazyValues{sink: sink, depth: 1, with: with})
}

// Init does nothing: the sink beneath was initialized by its own logger.
func (lazyValues) Init(logr.RuntimeInfo) {}

func (l lazyValues) Enabled(level int) bool { return l.sink.Enabled(level) }

func (l lazyValues) Info(level int, msg string, keysAndValues ...any) {
	l.resolved().Info(level, msg, keysAndValues...)
}

func (l lazyValues) Error(err error, msg string, keysAndValues ...any) {
	l.resolved().Error(err, msg, keysAndValues...)
}

func (l lazyValues) WithValues(keysAndValues ...any) logr.LogSink {
	l.values = append(slices.Clip(l.values), keysAndValues)
	return l
}

// WithName names the sink beneath at once: names are rare and cheap, and
// logr keeps names and values apart, so the order does not matter.
func (l lazyValues) WithName(name string) logr.LogSink {
	l.sink = l.sink.WithName(name)
	return l
}

func (l lazyValues) WithCallDepth(depth int) logr.LogSink {
	l.depth += depth
	return l
}

// resolved is the sink beneath with the deferred call depth and values.
func (l lazyValues) resolved() logr.LogSink {
	s := l.sink
	if d, ok := s.(logr.CallDepthLogSink); ok && l.depth != 0 {
		s = d.WithCallDepth(l.depth)
	}
	if l.with != nil {
		s = l.with(logr.Logger{}.WithSink(s)).GetSink()
	}
	for _, kv := range l.values {
		s = s.WithValues(kv...)
	}
	return s
}

// requestLogger is the LogConstructor of the validators served on a bare
// webhook.Server: controller-runtime's default values, added lazily.
func requestLogger(base logr.Logger, req *admission.Request) logr.Logger {
	return lazyLogger(base, func(l logr.Logger) logr.Logger {
		return admission.DefaultLogConstructor(l, req)
	})
}

// builderRequestLogger is the LogConstructor of the validators the
// manager's builder registers for gvk: the builder's default values (those
// of controller-runtime's builder.WebhookBuilder), added lazily.
func builderRequestLogger(gvk schema.GroupVersionKind) func(logr.Logger, *admission.Request) logr.Logger {
	return func(base logr.Logger, req *admission.Request) logr.Logger {
		return lazyLogger(base, func(l logr.Logger) logr.Logger {
			l = l.WithValues("webhookGroup", gvk.Group, "webhookKind", gvk.Kind)
			if req == nil {
				return l
			}
			return l.WithValues(
				gvk.Kind, klog.KRef(req.Namespace, req.Name),
				"namespace", req.Namespace, "name", req.Name,
				"resource", req.Resource, "user", req.UserInfo.Username,
				"requestID", req.UID,
			)
		})
	}
}
