package webhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// internalHost stands for what the text of an AWS error can carry: an
// internal host name and port of the endpoint or a proxy in between.
const internalHost = "internal-host.corp.example:8443"

// sdkError is an AWS error as the SDK returns it: the operation, the HTTP
// response, and AWS's code and message.
func sdkError(op string, status int, code string) error {
	var cause error = &smithy.GenericAPIError{Code: code, Message: internalHost + " said no"}
	if code == "" {
		cause = errors.New("upstream " + internalHost + " said no")
	}
	return &smithy.OperationError{ServiceID: "ECR", OperationName: op, Err: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: cause}}
}

// TestAWSTextStaysInTheLog fails ECR calls with errors whose message names
// an internal host, through the real engine and awsclient: the warnings
// and the denial the user reads carry our words and AWS's error code, never
// AWS's text, and the engine's log has the text in full.
func TestAWSTextStaysInTheLog(t *testing.T) {
	const (
		missing = "1234567890.dkr.ecr.us-west-2.amazonaws.com/retail-sample-app-ui:9.9.9"
		nested  = "1234567890.dkr.ecr.us-west-2.amazonaws.com/docker-hub/library/nginx:1"
	)
	tests := map[string]struct {
		op     string
		err    error
		images []string
		// warning is what the user reads instead (a warning keeps the
		// start and the end of the engine's message, which ends with the
		// cause).
		warning string
		// logged: the failure went through the engine's lookupFailed,
		// which logs it.
		logged bool
	}{
		"the repository policy refused": {
			op: "GetRepositoryPolicy", err: sdkError("GetRepositoryPolicy", 400, "AccessDeniedException"),
			images: []string{uiImage, missing}, warning: "(AccessDeniedException)", logged: true,
		},
		"the repository policy throttled": {
			op: "GetRepositoryPolicy", err: sdkError("GetRepositoryPolicy", 400, "ThrottlingException"),
			images: []string{uiImage, missing}, warning: "(ThrottlingException)", logged: true,
		},
		"the repository policy failing with a server error": {
			op: "GetRepositoryPolicy", err: sdkError("GetRepositoryPolicy", 500, "ServerException"),
			images: []string{uiImage, missing}, warning: "failed: ServerException", logged: true,
		},
		"the images answered by a proxy's 503 without an AWS error code": {
			op: "DescribeImages", err: sdkError("DescribeImages", 503, ""),
			images: []string{uiImage}, warning: "failed: HTTP 503", logged: true,
		},
		"the pull-through cache rules refused for a missing nested repository": {
			op: "DescribePullThroughCacheRules", err: sdkError("DescribePullThroughCacheRules", 400, "AccessDeniedException"),
			images: []string{nested, missing}, warning: "RepositoryNotFound",
		},
	}
	for name, tc := range tests {
		for _, mode := range []Mode{ModeWarn, ModeDeny} {
			t.Run(name+" in "+string(mode)+" mode", func(t *testing.T) {
				logs := &logBuffer{}
				engine, ecrFake := fakeAWSEngine(t, logs.slog())
				ecrFake.SetErr(tc.op, tc.err)
				a, err := newAdmitter(Options{Checker: engine, Pools: StaticRoles{nodeRole}, Mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				warnings, err := deploymentValidator(a).ValidateCreate(context.Background(), deployment("ui-private", tc.images...))
				if ecrFake.Calls(tc.op) == 0 {
					t.Fatalf("%s was never called", tc.op)
				}
				user := strings.Join(warnings, "\n")
				if err != nil {
					user += "\n" + err.Error()
				}
				if strings.Contains(user, "internal-host") || strings.Contains(user, "said no") {
					t.Errorf("AWS's text reached the user:\n%s", user)
				}
				if !strings.Contains(user, tc.warning) {
					t.Errorf("the user is not told %q:\n%s", tc.warning, user)
				}
				if mode == ModeDeny && len(tc.images) > 1 && err == nil {
					t.Errorf("the missing tag was not denied:\n%s", user)
				}
				if tc.logged && !strings.Contains(logs.String(), internalHost+" said no") {
					t.Errorf("the log lacks AWS's text:\n%s", logs.String())
				}
			})
		}
	}
}
