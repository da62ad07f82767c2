package awsclient_test

import (
	"context"
	"errors"
	"fmt"
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
