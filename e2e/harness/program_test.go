package harness

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestRunProgram(t *testing.T) {
	tests := map[string]struct {
		body     func(tb testing.TB, order *[]string)
		wantCode int
		wantErr  string
	}{
		"a body that returns exits 0 after running the cleanups last first": {
			body:     func(tb testing.TB, order *[]string) {},
			wantCode: ExitOK,
		},
		"Fatal ends the body, still runs the cleanups, and exits 1": {
			body: func(tb testing.TB, order *[]string) {
				tb.Fatalf("step %d did not behave", 3)
				*order = append(*order, "after Fatal")
			},
			wantCode: ExitFailed,
			wantErr:  "FAIL: step 3 did not behave",
		},
		"a panic is a failure, not a crash": {
			body:     func(tb testing.TB, order *[]string) { panic("boom") },
			wantCode: ExitFailed,
			wantErr:  "FAIL: panic: boom",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var errs bytes.Buffer
			stderr = &errs
			t.Cleanup(func() { stderr = os.Stderr })

			var order []string
			var dir string
			code := RunProgram("harness-test", func(tb testing.TB) {
				dir = tb.TempDir()
				tb.Cleanup(func() { order = append(order, "first registered") })
				tb.Cleanup(func() { order = append(order, "second registered") })
				tc.body(tb, &order)
			})

			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d", code, tc.wantCode)
			}
			if got, want := strings.Join(order, ", "), "second registered, first registered"; got != want {
				t.Errorf("order = %q, want %q", got, want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("TempDir %s still there after the program (stat: %v)", dir, err)
			}
			if !strings.Contains(errs.String(), tc.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", errs.String(), tc.wantErr)
			}
		})
	}
}
