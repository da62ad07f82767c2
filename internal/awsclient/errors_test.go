package awsclient_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
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

// TestLookupErrorCause: what a user reads of an AWS failure is our words,
// AWS's error code or HTTP status, and a network error without addresses;
// never the text of AWS's message, which can name internal hosts.
func TestLookupErrorCause(t *testing.T) {
	const secret = "internal-host.corp.example"
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8443},
		Source: &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 51234}, Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := map[string]struct {
		err   error
		class awsclient.Class
		want  string
	}{
		"a refused connection, under the SDK's wrapping, without its addresses": {
			fmt.Errorf("operation error ECR: DescribeImages, exceeded maximum number of attempts, https://api.ecr.%s: %w", secret, refused),
			awsclient.ClassUnavailable, "dial tcp: connect: connection refused"},
		"a host that does not resolve, without its name or the DNS server": {
			&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.ecr." + secret, Server: "10.0.0.2:53", IsNotFound: true}},
			awsclient.ClassUnavailable, "dial tcp: lookup: no such host"},
		"a read that timed out": {
			&net.OpError{Op: "read", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443}, Err: os.ErrDeadlineExceeded},
			awsclient.ClassTimeout, "read tcp: i/o timeout"},
		"an unknown network failure": {
			&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("proxy " + secret + " refused")},
			awsclient.ClassUnavailable, "dial tcp: network error"},
		"an AWS error: its code, never its message": {
			fmt.Errorf("operation error: %w", &smithy.GenericAPIError{Code: "ServerException", Message: secret + ":8443 said no"}),
			awsclient.ClassUnavailable, "ServerException"},
		"an AWS error code alone": {&smithy.GenericAPIError{Code: "InternalFailure"}, awsclient.ClassUnavailable, "InternalFailure"},
		"access denied: the code, not the ARNs AWS's message names": {
			&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/ecr-preflight/i-0abc is not authorized"},
			awsclient.ClassAccessDenied, "AccessDeniedException"},
		"an HTTP status without an AWS error": {httpErr(502), awsclient.ClassUnavailable, "HTTP 502"},
		"a code that is no AWS error code is replaced by the HTTP status": {
			&smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}},
				Err: &smithy.GenericAPIError{Code: "<html>" + secret + "</html>", Message: "x"}},
			awsclient.ClassUnavailable, "HTTP 503"},
		"a deadline":                   {fmt.Errorf("calling %s: %w", secret, context.DeadlineExceeded), awsclient.ClassTimeout, "timed out"},
		"no credentials":               {fmt.Errorf("get identity: calling %s: %w", secret, httpErr(403)), awsclient.ClassNoCredentials, "no AWS credentials"},
		"our own sentinel":             {fmt.Errorf("%w: our credentials act as 111122223333", awsclient.ErrNotOwnAccount), awsclient.ClassAccessDenied, awsclient.ErrNotOwnAccount.Error()},
		"anything else":                {errors.New("boom at " + secret), awsclient.ClassOther, "unexpected error"},
		"a policy we could not decode": {errors.New(`invalid URL escape "%zz"`), awsclient.ClassOther, "unexpected error"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			le := &awsclient.LookupError{What: "x", Action: "ecr:DescribeImages", Class: tc.class, Err: tc.err}
			if got := le.Cause(); got != tc.want {
				t.Errorf("Cause() = %q, want %q", got, tc.want)
			}
			if got, want := le.Brief(), "ecr:DescribeImages failed: "+tc.want; got != want {
				t.Errorf("Brief() = %q, want %q", got, want)
			}
			for _, leak := range []string{secret, "10.1.2.3", "10.9.8.7", "10.0.0.2", "arn:aws:sts"} {
				if strings.Contains(le.Cause(), leak) {
					t.Errorf("Cause() %q shows %q", le.Cause(), leak)
				}
			}
			// The log keeps everything: Error is the full text.
			if !strings.Contains(le.Error(), tc.err.Error()) {
				t.Errorf("Error() %q lost the cause's text %q", le.Error(), tc.err.Error())
			}
		})
	}
}

func TestBriefWithoutAction(t *testing.T) {
	le := &awsclient.LookupError{What: "x", Class: awsclient.ClassThrottled, Err: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}}
	if got := le.Brief(); got != "ThrottlingException" {
		t.Errorf("Brief() = %q, want the code alone", got)
	}
}
