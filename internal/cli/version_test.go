package cli

import (
	"bytes"
	"runtime"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	goSuffix := ", " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	cases := []struct {
		name            string
		version, commit string
		want            string
	}{
		{"unstamped", "dev", "", "ecr-preflight dev (commit unknown" + goSuffix},
		{"stamped", "v0.3.1", "678d9864ce4769dda408e61cb44079e87942add2", "ecr-preflight v0.3.1 (commit 678d9864ce47" + goSuffix},
		{"short commit", "v0.3.1-2-g678d986", "678d986", "ecr-preflight v0.3.1-2-g678d986 (commit 678d986" + goSuffix},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			oldVersion, oldCommit := version, commit
			t.Cleanup(func() { version, commit = oldVersion, oldCommit })
			version, commit = c.version, c.commit

			var out, errOut bytes.Buffer
			code := Execute([]string{"--version"}, nil, &out, &errOut)
			if code != ExitOK {
				t.Fatalf("exit code = %d, want 0; stderr: %s", code, errOut.String())
			}
			if got := out.String(); got != c.want {
				t.Errorf("stdout = %q, want %q", got, c.want)
			}
			if errOut.Len() != 0 {
				t.Errorf("stderr = %q, want empty", errOut.String())
			}
		})
	}
}

// -v stays free for serve's --verbosity: the root command has no -v.
func TestVersionHasNoShorthand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Execute([]string{"-v"}, nil, &out, &errOut); code != ExitUsage {
		t.Errorf("ecr-preflight -v: exit code = %d, want %d (usage); stdout %q", code, ExitUsage, out.String())
	}
}
