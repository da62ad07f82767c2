package awsclient_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

func TestClassOf(t *testing.T) {
	tests := map[string]struct {
		err  error
		want awsclient.Class
	}{
		"no error":                       {nil, awsclient.ClassOK},
		"a missing image":                {&types.ImageNotFoundException{}, awsclient.ClassNotFound},
		"a wrapped missing repository":   {fmt.Errorf("x: %w", &types.RepositoryNotFoundException{}), awsclient.ClassNotFound},
		"IAM's access denied":            {&smithy.GenericAPIError{Code: "AccessDenied"}, awsclient.ClassAccessDenied},
		"ECR's access denied":            {&smithy.GenericAPIError{Code: "AccessDeniedException"}, awsclient.ClassAccessDenied},
		"an expired token":               {&smithy.GenericAPIError{Code: "ExpiredTokenException"}, awsclient.ClassAccessDenied},
		"ECR throttling":                 {&smithy.GenericAPIError{Code: "ThrottlingException"}, awsclient.ClassThrottled},
		"IAM throttling":                 {&smithy.GenericAPIError{Code: "Throttling"}, awsclient.ClassThrottled},
		"a deadline":                     {fmt.Errorf("op: %w", context.DeadlineExceeded), awsclient.ClassTimeout},
		"a server error":                 {&smithy.GenericAPIError{Code: "ServerException"}, awsclient.ClassUnavailable},
		"an HTTP 500 without error code": {httpErr(500), awsclient.ClassUnavailable},
		"an HTTP 429":                    {httpErr(429), awsclient.ClassThrottled},
		"a validation error":             {&smithy.GenericAPIError{Code: "InvalidParameterException"}, awsclient.ClassOther},
		"something else":                 {errors.New("boom"), awsclient.ClassOther},
		"no credentials, the metadata service answering 403": {
			fmt.Errorf("operation error ECR: DescribeImages, get identity: get credentials: failed to refresh cached credentials: %w", httpErr(403)),
			awsclient.ClassNoCredentials},
		"a LookupError keeps its class": {&awsclient.LookupError{Class: awsclient.ClassThrottled, Err: errors.New("x")}, awsclient.ClassThrottled},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := awsclient.ClassOf(tc.err); got != tc.want {
				t.Errorf("ClassOf(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func httpErr(code int) error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("http")}
}

func TestLookupErrorCause(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := map[string]struct {
		err  error
		want string
	}{
		"a network error, under the SDK's wrapping": {fmt.Errorf("operation error ECR: DescribeImages, exceeded maximum number of attempts: %w", refused), "dial tcp: connect: connection refused"},
		"an AWS error code and message":             {fmt.Errorf("operation error: %w", &smithy.GenericAPIError{Code: "ServerException", Message: "try later"}), "ServerException: try later"},
		"an AWS error code alone":                   {&smithy.GenericAPIError{Code: "InternalFailure"}, "InternalFailure"},
		"an HTTP status without an AWS error":       {httpErr(502), "HTTP 502"},
		"anything else as it is":                    {errors.New("boom"), "boom"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			le := &awsclient.LookupError{What: "x", Action: "ecr:DescribeImages", Class: awsclient.ClassUnavailable, Err: tc.err}
			if got := le.Cause(); got != tc.want {
				t.Errorf("Cause() = %q, want %q", got, tc.want)
			}
		})
	}
}
