package awsclient_test

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
)

// slowECR answers DescribeImages only when the context ends, like a call to
// an unreachable endpoint.
type slowECR struct{ *fake.ECR }

func (s *slowECR) DescribeImages(ctx context.Context, _ *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

type fakeClientsECR struct{ ecr awsclient.ECRAPI }

func (c *fakeClientsECR) ECR(string, string) (awsclient.ECRAPI, error) { return c.ecr, nil }
func (c *fakeClientsECR) IAM(string) (awsclient.IAMAPI, error)         { return nil, nil }
func (c *fakeClientsECR) STS(string) (awsclient.STSAPI, error)         { return nil, nil }
