package fake

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
)

// STS answers GetCallerIdentity with Account.
type STS struct {
	awsclient.STSAPI
	recorder

	// Account the credentials act as.
	Account string
}

var _ awsclient.STSAPI = (*STS)(nil)

// GetCallerIdentity implements awsclient.STSAPI.
func (f *STS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	if err := f.begin("GetCallerIdentity"); err != nil {
		return nil, err
	}
	return &sts.GetCallerIdentityOutput{Account: aws.String(f.Account)}, nil
}

// Clients hands out the same fakes for every region and account.
type Clients struct {
	ECRClient awsclient.ECRAPI
	IAMClient awsclient.IAMAPI
	STSClient awsclient.STSAPI
	// STSByAccount, if set, overrides STSClient per account, to model
	// assumed-role credentials.
	STSByAccount map[string]awsclient.STSAPI
}

var _ awsclient.Clients = (*Clients)(nil)

// ECR implements awsclient.Clients.
func (c *Clients) ECR(string, string) (awsclient.ECRAPI, error) { return c.ECRClient, nil }

// IAM implements awsclient.Clients.
func (c *Clients) IAM(string) (awsclient.IAMAPI, error) { return c.IAMClient, nil }

// STS implements awsclient.Clients.
func (c *Clients) STS(account string) (awsclient.STSAPI, error) {
	if s, ok := c.STSByAccount[account]; ok {
		return s, nil
	}
	return c.STSClient, nil
}
