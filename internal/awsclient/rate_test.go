package awsclient_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
)

// TestCallsPerSecond: with a bound of one call per second, a second call
// whose context ends before its turn never reaches AWS and fails as a
// timeout (an unknown answer, never a definite one).
func TestCallsPerSecond(t *testing.T) {
	e := newEnv()
	l := awsclient.NewLookups(&fake.Clients{ECRClient: e.ecr, IAMClient: e.iam, STSClient: e.sts},
		awsclient.Options{CallsPerSecond: 1})
	if _, _, err := l.RepositoryPolicy(t.Context(), teamApp); err != nil {
		t.Fatal(err)
	}
	calls := e.ecr.TotalCalls()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, _, err := l.RepositoryPolicy(ctx, awsclient.Repository{Registry: teamApp.Registry, Name: "empty"})
	if !errors.Is(err, context.DeadlineExceeded) || awsclient.ClassOf(err) != awsclient.ClassTimeout {
		t.Errorf("err %v (class %s), want a timeout", err, awsclient.ClassOf(err))
	}
	if e.ecr.TotalCalls() != calls {
		t.Errorf("the paced call reached AWS")
	}
}
