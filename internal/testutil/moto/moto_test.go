package moto_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

func TestServerActsAsTheChosenAccount(t *testing.T) {
	s := moto.Start(t)
	ctx := moto.Context(t)
	tests := map[string]struct {
		cfg  aws.Config
		want string
	}{
		"the default config acts as the default account": {cfg: s.Config(), want: moto.DefaultAccount},
		"ConfigAs acts as the given account":             {cfg: s.ConfigAs("210987654321"), want: "210987654321"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := sts.NewFromConfig(tc.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(out.Account); got != tc.want {
				t.Errorf("account = %s, want %s", got, tc.want)
			}
		})
	}
	s.Reset(t)
}

func TestWithAccountIDActsAsThatAccountForAnyCredentials(t *testing.T) {
	s := moto.Start(t, moto.WithAccountID("1234567890"))
	out, err := sts.NewFromConfig(s.Config()).GetCallerIdentity(moto.Context(t), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Account); got != "1234567890" {
		t.Errorf("account = %s, want 1234567890", got)
	}
}
