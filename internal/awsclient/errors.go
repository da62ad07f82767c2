package awsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Definite absences. They are answers, not failures: the engine turns them
// into findings (RepositoryNotFound, ...) and they are cached as negative
// answers.
var (
	// ErrRepositoryNotFound: the ECR repository does not exist in the
	// registry (as seen by our credentials for that registry).
	ErrRepositoryNotFound = errors.New("repository not found")
	// ErrRoleNotFound: the IAM role does not exist.
	ErrRoleNotFound = errors.New("role not found")
	// ErrNotOwnAccount: the registry-level ECR settings (registry policy,
	// policy scope) can only be read with credentials of the registry's own
	// account, and no assumed role is configured for it.
	ErrNotOwnAccount = errors.New("registry settings are readable only from the registry's own account")
)

// Class sorts failures by what the caller can do about them.
type Class string

const (
	// ClassOK: no error.
	ClassOK Class = "ok"
	// ClassNotFound: a definite absence (repository, image, policy, role).
	ClassNotFound Class = "not_found"
	// ClassAccessDenied: our own credentials lack a permission; the fix is
	// on the webhook's IAM role, not on the workload.
	ClassAccessDenied Class = "access_denied"
	// ClassThrottled: AWS throttled us even after the bounded retries.
	ClassThrottled Class = "throttled"
	// ClassTimeout: the per-call deadline or the caller's context expired.
	ClassTimeout Class = "timeout"
	// ClassUnavailable: the service failed (5xx), could not be reached, or
	// does not implement the operation (as with some emulators).
	ClassUnavailable Class = "unavailable"
	// ClassNoCredentials: no credentials could be found or refreshed
	// (no IRSA, Pod Identity, profile or instance role), so nothing was
	// asked of AWS at all.
	ClassNoCredentials Class = "no_credentials"
	// ClassOther: anything else, e.g. a validation error.
	ClassOther Class = "error"
)

// LookupError is the error every failed AWS call is wrapped in. Its message
// reads "<what>: <class detail>: <cause>", e.g. "describing images in
// team/app: our credentials are not allowed ecr:DescribeImages: ...".
//
// Error is the full text, AWS's own message included, and belongs in the
// log only: AWS's words can name internal hosts, endpoints, accounts or
// ARNs. Messages for the user (warnings, denials, findings) use Brief or
// Cause, which are our fixed words and AWS's error code.
type LookupError struct {
	// What names the lookup and its resource, e.g. "describing images in team/app".
	What string
	// Action is the IAM action of the call, e.g. "ecr:DescribeImages": the
	// permission our credentials need.
	Action string
	Class  Class
	Err    error
}

func (e *LookupError) Error() string {
	switch e.Class {
	case ClassAccessDenied:
		return fmt.Sprintf("%s: our credentials are not allowed %s: %v", e.What, e.Action, e.Err)
	case ClassNoCredentials:
		return fmt.Sprintf("%s: no AWS credentials: %v", e.What, e.Err)
	case ClassThrottled:
		return fmt.Sprintf("%s: throttled by AWS: %v", e.What, e.Err)
	case ClassTimeout:
		return fmt.Sprintf("%s: timed out: %v", e.What, e.Err)
	case ClassUnavailable:
		return fmt.Sprintf("%s: %s unavailable: %v", e.What, e.Action, e.Err)
	default:
		return fmt.Sprintf("%s: %v", e.What, e.Err)
	}
}

func (e *LookupError) Unwrap() error { return e.Err }

// Brief is "ACTION failed: CAUSE" (or CAUSE when the action is not
// known), for messages that already say what was being looked up. Like
// Cause it is safe to show to the user.
func (e *LookupError) Brief() string {
	if e.Action == "" {
		return e.Cause()
	}
	return e.Action + " failed: " + e.Cause()
}

// Cause says in a few words what went wrong, safe to show to the user: see
// CauseOf.
func (e *LookupError) Cause() string {
	if e.Class == ClassNoCredentials {
		// The cause may be an answer of the instance metadata service, which
		// would read as if AWS had refused the call.
		return "no AWS credentials"
	}
	return CauseOf(e.Err)
}

// CauseOf describes err for a message the user reads (a warning, a
// denial, a finding) in our fixed words and the error's identifiers only,
// never its text, which can carry internal host names, endpoints,
// accounts or ARNs:
//
//   - an AWS error: its error code, e.g. AccessDeniedException (without
//     AWS's message);
//   - an HTTP error without an AWS error code: its status, e.g. HTTP 503;
//   - a network error: operation, network and system error without any
//     address, e.g. "dial tcp: connect: connection refused" or
//     "dial tcp: lookup: no such host";
//   - a deadline: "timed out";
//   - an untrusted TLS certificate: "TLS certificate not trusted";
//   - one of this package's sentinel errors: its own words;
//   - anything else: "unexpected error".
//
// The full text goes to the log (err.Error()).
func CauseOf(err error) string {
	var (
		opErr   *net.OpError
		apiErr  smithy.APIError
		respErr *smithyhttp.ResponseError
		certErr *tls.CertificateVerificationError
	)
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, ErrNotOwnAccount):
		return ErrNotOwnAccount.Error()
	case errors.Is(err, ErrRepositoryNotFound):
		return ErrRepositoryNotFound.Error()
	case errors.Is(err, ErrRoleNotFound):
		return ErrRoleNotFound.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &certErr):
		return "TLS certificate not trusted"
	case errors.As(err, &opErr):
		return netCause(opErr)
	case errors.As(err, &apiErr) && isErrorCode(apiErr.ErrorCode()):
		return apiErr.ErrorCode()
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() != 0:
		return fmt.Sprintf("HTTP %d", respErr.HTTPStatusCode())
	}
	return "unexpected error"
}

// maxErrorCode bounds an AWS error code shown to the user; real ones are
// short (RepositoryPolicyNotFoundException has 33 characters).
const maxErrorCode = 64

// isErrorCode reports whether code looks like an AWS error code
// (AccessDeniedException, Throttling, InternalFailure, ...): a code comes
// from the response, and a proxy or an odd endpoint could put anything
// there.
func isErrorCode(code string) bool {
	if code == "" || len(code) > maxErrorCode {
		return false
	}
	for _, r := range code {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == ':', r == '#':
		default:
			return false
		}
	}
	return true
}

// netCause is a network error without the addresses net.OpError.Error
// puts in (Source, Addr) and without a DNS error's host name and server:
// "OP NET: DETAIL", e.g. "dial tcp: connect: connection refused".
func netCause(op *net.OpError) string {
	head := op.Op
	if op.Net != "" {
		head += " " + op.Net
	}
	var (
		dnsErr  *net.DNSError
		sysErr  *os.SyscallError
		errno   syscall.Errno
		timeout interface{ Timeout() bool }
	)
	detail := "network error"
	switch {
	case errors.As(op.Err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			detail = "lookup: no such host"
		case dnsErr.IsTimeout:
			detail = "lookup: i/o timeout"
		default:
			detail = "lookup failed"
		}
	case errors.As(op.Err, &sysErr) && errors.As(sysErr.Err, &errno):
		detail = sysErr.Syscall + ": " + errno.Error()
	case errors.As(op.Err, &errno):
		detail = errno.Error()
	case errors.As(op.Err, &timeout) && timeout.Timeout():
		detail = "i/o timeout"
	}
	if head == "" {
		return detail
	}
	return head + ": " + detail
}

// ClassOf classifies an error returned by Lookups or by an SDK call.
func ClassOf(err error) Class {
	if err == nil {
		return ClassOK
	}
	var le *LookupError
	if errors.As(err, &le) {
		return le.Class
	}
	return classify(err)
}

// classify looks at the cause of an SDK error.
func classify(err error) Class {
	var (
		repoNF   *ecrtypes.RepositoryNotFoundException
		imageNF  *ecrtypes.ImageNotFoundException
		repoPNF  *ecrtypes.RepositoryPolicyNotFoundException
		regPNF   *ecrtypes.RegistryPolicyNotFoundException
		noEntity *iamtypes.NoSuchEntityException
	)
	switch {
	case errors.Is(err, ErrRepositoryNotFound), errors.Is(err, ErrRoleNotFound),
		errors.As(err, &repoNF), errors.As(err, &imageNF), errors.As(err, &repoPNF),
		errors.As(err, &regPNF), errors.As(err, &noEntity):
		return ClassNotFound
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ClassTimeout
	case strings.Contains(err.Error(), "get identity: "):
		// smithy's auth middleware wraps every credential failure so, and
		// the cause may be an HTTP 403 from the instance metadata service,
		// which must not read as "AWS denied ecr:DescribeImages".
		return ClassNoCredentials
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
			"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch":
			return ClassAccessDenied
		case "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
			"TooManyRequestsException", "LimitExceededException", "RequestThrottled", "RequestThrottledException":
			return ClassThrottled
		case "ServiceUnavailable", "ServiceUnavailableException", "ServerException", "InternalFailure", "InternalError", "NotImplemented":
			return ClassUnavailable
		}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		switch code := respErr.HTTPStatusCode(); {
		case code == http.StatusForbidden:
			return ClassAccessDenied
		case code == http.StatusTooManyRequests:
			return ClassThrottled
		case code >= 500:
			return ClassUnavailable
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return ClassTimeout
	}
	var reqErr *aws.RequestCanceledError
	if errors.As(err, &reqErr) {
		return ClassTimeout
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return ClassUnavailable
	}
	return ClassOther
}

// lookupError wraps err with what was being done; nil stays nil.
func lookupError(what, action string, err error) error {
	if err == nil {
		return nil
	}
	return &LookupError{What: what, Action: action, Class: classify(err), Err: err}
}
