package awsclient_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

func testConfig() aws.Config {
	return aws.Config{Region: "us-west-2", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer: awsclient.NewRetryer(awsclient.RetryOptions{})}
}

func TestFactorySharesClientsPerRegionAndCredentials(t *testing.T) {
	f, err := awsclient.NewFactory(testConfig(), awsclient.FactoryOptions{
		AssumeRoles: map[string]string{"210987654321": "arn:aws:iam::210987654321:role/reader"},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.ECR("us-west-2", "123456789012")
	b, _ := f.ECR("us-west-2", "111111111111") // no assume-role: default credentials, same client
	c, _ := f.ECR("eu-west-1", "123456789012")
	d, _ := f.ECR("us-west-2", "210987654321")
	if a != b {
		t.Error("accounts without an assume-role should share the default-credentials client")
	}
	if a == c {
		t.Error("regions should have their own client")
	}
	if a == d {
		t.Error("an assume-role account should have its own client")
	}
	if _, err := f.ECR("", "123456789012"); err == nil {
		t.Error("an empty region should be an error")
	}
	i1, _ := f.IAM("123456789012")
	i2, _ := f.IAM("210987654321")
	if i1 == i2 {
		t.Error("an assume-role account should have its own IAM client")
	}
}

func TestNewFactoryRejectsBadAssumeRoles(t *testing.T) {
	tests := map[string]map[string]string{
		"an account ID over 12 digits": {"1234567890123": "arn:aws:iam::1234567890123:role/r"},
		"a user, not a role":           {"210987654321": "arn:aws:iam::210987654321:user/u"},
		"not an ARN at all":            {"210987654321": "reader"},
		"a role in another account":    {"210987654321": "arn:aws:iam::123456789012:role/reader"},
		"a session, not a role":        {"210987654321": "arn:aws:sts::210987654321:assumed-role/reader/s"},
	}
	for name, roles := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := awsclient.NewFactory(testConfig(), awsclient.FactoryOptions{AssumeRoles: roles}); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestNewRetryerIsBounded(t *testing.T) {
	r := awsclient.NewRetryer(awsclient.RetryOptions{})()
	if got := r.MaxAttempts(); got != 2 {
		t.Errorf("MaxAttempts = %d, want 2", got)
	}
	for attempt := 1; attempt < 5; attempt++ {
		d, err := r.RetryDelay(attempt, &throttle{})
		if err != nil || d > 100*time.Millisecond {
			t.Errorf("RetryDelay(%d) = %v, %v; want at most 100ms", attempt, d, err)
		}
	}
	if got := awsclient.NewRetryer(awsclient.RetryOptions{MaxAttempts: 4})().MaxAttempts(); got != 4 {
		t.Errorf("configured MaxAttempts = %d, want 4", got)
	}
}

type throttle struct{}

func (throttle) Error() string     { return "throttled" }
func (throttle) ErrorCode() string { return "ThrottlingException" }
