package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ecr-preflight/ecr-preflight/e2e/harness"
)

// narrator prints the demo: step headers, commands as typed, their output
// as printed, and what each step showed. Bold and colour only on a
// terminal, so `make demo > demo.txt` stays plain text.
type narrator struct {
	w     io.Writer
	color bool
}

func newNarrator(f *os.File) *narrator {
	info, err := f.Stat()
	return &narrator{w: f, color: err == nil && info.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == ""}
}

// printf writes to the terminal. Its errors are dropped: when stdout is
// gone there is no one left to tell, and the checks decide the exit code.
func (n *narrator) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(n.w, format, args...)
}

// style wraps s in an ANSI SGR code when printing to a terminal.
func (n *narrator) style(code, s string) string {
	if !n.color {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

// step starts step num.
func (n *narrator) step(num int, title string) {
	n.printf("\n%s\n", n.style("1;36", fmt.Sprintf("── %d. %s ", num, title)+strings.Repeat("─", max(0, 66-len(title)))))
}

// say is narration: what happens and why.
func (n *narrator) say(format string, args ...any) {
	n.printf("%s\n", fmt.Sprintf(format, args...))
}

// command shows a command as typed.
func (n *narrator) command(cmd string) {
	n.printf("\n%s\n", n.style("1", "$ "+cmd))
}

// equivalent introduces a call the demo makes through the AWS SDK, shown
// as the AWS CLI command that makes the same call.
func (n *narrator) equivalent(cmd string) {
	n.printf("\n%s\n", n.style("2", "# same API call as: "+cmd))
}

// output prints a command's output as it came.
func (n *narrator) output(text string) {
	if text == "" {
		return
	}
	n.printf("%s", text)
	if !strings.HasSuffix(text, "\n") {
		n.printf("\n")
	}
}

// kubectl shows a kubectl command and its output.
func (n *narrator) kubectl(res harness.Result) {
	n.command(res.Command)
	n.output(res.Output)
}

// ok confirms that a step behaved as narrated.
func (n *narrator) ok(format string, args ...any) {
	n.printf("%s %s\n", n.style("1;32", "✔"), fmt.Sprintf(format, args...))
}

// finish prints the verdict after everything was stopped.
func (n *narrator) finish(code int) {
	switch code {
	case harness.ExitOK:
		n.ok("every step behaved as narrated; everything the demo started is stopped and its files removed")
	case harness.ExitInterrupted:
		n.printf("\n%s interrupted; everything the demo started is stopped and its files removed\n", n.style("1;33", "!"))
	default:
		n.printf("\n%s a step did not behave as narrated (see FAIL above); everything the demo started is stopped\n", n.style("1;31", "✘"))
	}
}
