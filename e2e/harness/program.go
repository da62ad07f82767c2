package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Exit codes of RunProgram.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitInterrupted = 130 // as a shell reports death by SIGINT
)

const (
	// interruptGrace is how long the body gets to return after Ctrl-C (its
	// context is cancelled, which kills the commands it runs) before the
	// cleanups stop the processes underneath it anyway.
	interruptGrace = 10 * time.Second
	// cleanupTimeout bounds each cleanup; each stop has its own shorter
	// bound, this only guards against a hung one.
	cleanupTimeout = 2 * time.Minute
)

// RunProgram runs body as a program rather than a test, so `make demo`
// reuses the helpers the e2e tests use (envtestutil.Start, moto.Start,
// Env.Serve, ...), which take a testing.TB. It gives body a testing.TB
// whose Fatal ends body, whose Cleanup functions run when body ends, is
// interrupted (SIGINT, SIGTERM) or fails, and whose Context is cancelled on
// interruption. Log output is kept and printed to stderr only on failure,
// as `go test` does. It returns the exit code: ExitOK, ExitFailed or
// ExitInterrupted.
func RunProgram(name string, body func(tb testing.TB)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := os.MkdirTemp("", name+"-")
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitFailed
	}
	p := &program{name: name, ctx: ctx, root: root}

	done := make(chan struct{})
	go p.run(done, func() { body(p) })
	code := ExitOK
	select {
	case <-done:
	case <-ctx.Done():
		// A second Ctrl-C now kills the program outright.
		stop()
		code = ExitInterrupted
		p.interrupted.Store(true)
		_, _ = fmt.Fprintln(stderr, "\ninterrupted: stopping everything this program started (Ctrl-C again to force)")
		select {
		case <-done:
		case <-time.After(interruptGrace):
		}
	}
	p.runCleanups()
	if err := os.RemoveAll(root); err != nil {
		p.Errorf("removing %s: %v", root, err)
	}
	if p.Failed() && code != ExitInterrupted {
		if logs := p.logs(); logs != "" {
			_, _ = fmt.Fprintf(stderr, "--- %s log:\n%s", name, logs)
		}
		if code == ExitOK {
			code = ExitFailed
		}
	}
	return code
}

// program is the testing.TB that RunProgram hands out.
//
// testing.TB has an unexported method, so only a type embedding it can
// implement it. The embedded TB is nil: the methods below are the ones
// the shared helpers call; any other would panic, which run turns into a
// failure.
type program struct {
	testing.TB

	name string
	ctx  context.Context
	root string

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	log      strings.Builder
	tempDirs int
	// interrupted silences failures: once the body's commands are killed
	// by Ctrl-C, its checks fail for no reason worth printing.
	interrupted atomic.Bool
}

var _ testing.TB = (*program)(nil)

// run calls f on its own goroutine, as testing runs a test: Fatal's
// runtime.Goexit ends f, not the program; a panic becomes a failure.
func (p *program) run(done chan<- struct{}, f func()) {
	defer close(done)
	defer func() {
		if r := recover(); r != nil {
			p.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	f()
}

// runCleanups runs the cleanups last first, each on its own goroutine (a
// Fatal in one must not skip the others) and each bounded.
func (p *program) runCleanups() {
	p.mu.Lock()
	cleanups := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		done := make(chan struct{})
		go p.run(done, cleanups[i])
		select {
		case <-done:
		case <-time.After(cleanupTimeout):
			p.Errorf("a cleanup did not finish within %s; some process or directory may be left behind", cleanupTimeout)
		}
	}
}

func (p *program) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Name implements testing.TB.
func (p *program) Name() string { return p.name }

// Context implements testing.TB: cancelled on SIGINT or SIGTERM.
func (p *program) Context() context.Context { return p.ctx }

// Helper implements testing.TB.
func (p *program) Helper() {}

// Cleanup implements testing.TB.
func (p *program) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// TempDir implements testing.TB: a new directory under the program's
// root, removed after the cleanups.
func (p *program) TempDir() string {
	p.mu.Lock()
	p.tempDirs++
	dir := filepath.Join(p.root, strconv.Itoa(p.tempDirs))
	p.mu.Unlock()
	if err := os.Mkdir(dir, 0o700); err != nil {
		p.Fatalf("TempDir: %v", err)
	}
	return dir
}

// Log implements testing.TB: kept, printed on failure.
func (p *program) Log(args ...any) { p.logf("%s", fmt.Sprintln(args...)) }

// Logf implements testing.TB.
func (p *program) Logf(format string, args ...any) { p.logf(format, args...) }

func (p *program) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	p.log.WriteString(line)
	if !strings.HasSuffix(line, "\n") {
		p.log.WriteByte('\n')
	}
}

// Fail implements testing.TB.
func (p *program) Fail() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed = true
}

// Failed implements testing.TB.
func (p *program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// FailNow implements testing.TB: ends the calling goroutine, which must be
// the body or a cleanup.
func (p *program) FailNow() {
	p.Fail()
	runtime.Goexit()
}

// Error implements testing.TB: printed at once, on stderr.
func (p *program) Error(args ...any) { p.report(fmt.Sprintln(args...)) }

// Errorf implements testing.TB.
func (p *program) Errorf(format string, args ...any) { p.report(fmt.Sprintf(format, args...)) }

// Fatal implements testing.TB.
func (p *program) Fatal(args ...any) {
	p.report(fmt.Sprintln(args...))
	p.FailNow()
}

// Fatalf implements testing.TB.
func (p *program) Fatalf(format string, args ...any) {
	p.report(fmt.Sprintf(format, args...))
	p.FailNow()
}

func (p *program) report(msg string) {
	p.Fail()
	if p.interrupted.Load() {
		return
	}
	_, _ = fmt.Fprintf(stderr, "FAIL: %s\n", strings.TrimRight(msg, "\n"))
}

// stderr is where failures and the failure log go; a variable so the
// tests of this file can capture it. Write errors are dropped: with stderr
// gone there is no one left to tell, and the exit code still says it.
var stderr io.Writer = os.Stderr
