package iampolicy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy/corpustest"
)

// TestCorpus runs every case of testdata/corpus through ParseEvalRequest and
// Evaluate, the same path `policy eval` takes.
func TestCorpus(t *testing.T) {
	files, err := corpustest.Load("testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no corpus files in testdata/corpus")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(f.Path[strings.LastIndexByte(f.Path, '/')+1:], ".json"), func(t *testing.T) {
			for _, c := range f.Cases {
				t.Run(c.Name, func(t *testing.T) {
					if err := c.Validate(); err != nil {
						t.Fatal(err)
					}
					req, set, err := iampolicy.ParseEvalRequest(c.Request)
					if c.Expect.Error != "" {
						for _, d := range c.CheckError(err) {
							t.Error(d)
						}
						return
					}
					if err != nil {
						t.Fatalf("ParseEvalRequest: %v", err)
					}
					if req.Now.IsZero() {
						req.Now = time.Now()
					}
					for _, d := range c.CheckDecision(iampolicy.Evaluate(req, set)) {
						t.Error(d)
					}
				})
			}
		})
	}
}
