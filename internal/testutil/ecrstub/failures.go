package ecrstub

import "net/http"

// Failure is an error the stub answers an ECR operation with instead of
// answering or forwarding it.
type Failure struct {
	// Status is the HTTP status, e.g. 400.
	Status int
	// Code is the error code, sent as ECR sends it (X-Amzn-Errortype and
	// the body's __type), e.g. "AccessDeniedException". Empty sends the
	// bare status with no body, as a failing proxy or load balancer might.
	Code    string
	Message string
	// Times is how many requests fail before the operation works again;
	// 0 fails every request until Clear.
	Times int
}

// AccessDenied is ECR's answer to credentials without the permission for
// operation (e.g. "DescribeImages").
func AccessDenied(operation string) Failure {
	return Failure{Status: http.StatusBadRequest, Code: "AccessDeniedException",
		Message: "User: arn:aws:sts::123456789012:assumed-role/preflight/test is not authorized to perform: ecr:" + operation}
}

// Throttling is ECR's answer to a caller over its rate limit.
func Throttling() Failure {
	return Failure{Status: http.StatusBadRequest, Code: "ThrottlingException", Message: "Rate exceeded"}
}

// ServerError is ECR's answer when it fails internally.
func ServerError() Failure {
	return Failure{Status: http.StatusInternalServerError, Code: "ServerException", Message: "internal error"}
}

// Fail makes requests for the ECR operation (e.g. "DescribeImages") fail
// with f, replacing any failure set for it before.
func (s *Stub) Fail(operation string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[operation] = &f
}

// Clear ends the failure set for operation.
func (s *Stub) Clear(operation string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, operation)
}

// takeFailure returns the failure for op, if any, and uses up one of its
// Times. Callers hold mu.
func (s *Stub) takeFailure(op string) (Failure, bool) {
	f, ok := s.failures[op]
	if !ok {
		return Failure{}, false
	}
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(s.failures, op)
		}
	}
	return *f, true
}
