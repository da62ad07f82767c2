package ecrstub_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/ecrstub"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

const otherAccount = "210987654321"

// push pushes a manifest with one layer of digest sha256:<layer, 64 times>
// to repo under tag and returns moto's digest: moto derives it from the
// layers, so distinct layers give distinct images.
func push(t *testing.T, c *ecr.Client, repo, tag string, layer byte) string {
	t.Helper()
	ctx := moto.Context(t)
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)}); err != nil &&
		!strings.Contains(err.Error(), "RepositoryAlreadyExists") {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:%s"},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:%s"}]}`,
		strings.Repeat("c", 64), strings.Repeat(string(layer), 64))
	out, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageTag: aws.String(tag), ImageManifest: aws.String(manifest)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Image.ImageId.ImageDigest)
}

// errorCode returns err's API error code and HTTP status ("" and 0 for
// none).
func errorCode(err error) (string, int) {
	var apiErr smithy.APIError
	var respErr *smithyhttp.ResponseError
	code, status := "", 0
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	return code, status
}

func prefixes(rules []ecrtypes.PullThroughCacheRule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, aws.ToString(r.RegistryId)+"/"+aws.ToString(r.EcrRepositoryPrefix))
	}
	return out
}

// TestStubAgainstMoto runs every test of the stub against one moto server
// and stub: starting moto takes seconds of CPU. Each test leaves the stub's
// state as it found it, apart from the images it pushes.
func TestStubAgainstMoto(t *testing.T) {
	s := ecrstub.Start(t, moto.Start(t))
	t.Run("DescribePullThroughCacheRules", func(t *testing.T) { describePullThroughCacheRules(t, s) })
	t.Run("GetAccountSetting", func(t *testing.T) { getAccountSetting(t, s) })
	t.Run("DescribeImages", func(t *testing.T) { describeImages(t, s) })
	t.Run("injected failures", func(t *testing.T) { injectedFailures(t, s) })
}

func describePullThroughCacheRules(t *testing.T, s *ecrstub.Stub) {
	ctx := moto.Context(t)
	c := ecr.NewFromConfig(s.Config())
	if out, err := c.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{}); err != nil || len(out.PullThroughCacheRules) != 0 || out.PullThroughCacheRules == nil {
		t.Fatalf("by default: %+v, err %v; want an empty list", out, err)
	}
	t.Cleanup(func() { s.SetPullThroughCacheRules() })
	s.SetPullThroughCacheRules(
		ecrstub.Rule{EcrRepositoryPrefix: "docker-hub", UpstreamRegistryURL: "registry-1.docker.io", UpstreamRegistry: "docker-hub"},
		ecrstub.Rule{EcrRepositoryPrefix: "quay", UpstreamRegistryURL: "quay.io", UpstreamRegistry: "quay", UpstreamRepositoryPrefix: "prod"},
		ecrstub.Rule{EcrRepositoryPrefix: "ghcr", UpstreamRegistryURL: "ghcr.io", UpstreamRegistry: "github-container-registry"},
		ecrstub.Rule{RegistryID: otherAccount, EcrRepositoryPrefix: "k8s", UpstreamRegistryURL: "registry.k8s.io", UpstreamRegistry: "k8s"},
	)
	own := moto.DefaultAccount + "/"
	tests := map[string]struct {
		cfg      aws.Config
		in       ecr.DescribePullThroughCacheRulesInput
		want     []string
		wantCode string
	}{
		"every rule of the caller's registry": {
			cfg: s.Config(), want: []string{own + "docker-hub", own + "quay", own + "ghcr"},
		},
		"the named registry's rules": {
			cfg: s.Config(), in: ecr.DescribePullThroughCacheRulesInput{RegistryId: aws.String(otherAccount)},
			want: []string{otherAccount + "/docker-hub", otherAccount + "/quay", otherAccount + "/ghcr", otherAccount + "/k8s"},
		},
		"ConfigAs's account is the caller's registry": {
			cfg:  s.ConfigAs(otherAccount),
			want: []string{otherAccount + "/docker-hub", otherAccount + "/quay", otherAccount + "/ghcr", otherAccount + "/k8s"},
		},
		"ecrRepositoryPrefixes keeps those rules": {
			cfg: s.Config(), in: ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{"ghcr", "docker-hub"}},
			want: []string{own + "docker-hub", own + "ghcr"},
		},
		"a prefix no rule has is PullThroughCacheRuleNotFoundException": {
			cfg: s.Config(), in: ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{"ghcr", "k8s"}},
			wantCode: "PullThroughCacheRuleNotFoundException",
		},
		"maxResults out of range is a ValidationException": {
			cfg: s.Config(), in: ecr.DescribePullThroughCacheRulesInput{MaxResults: aws.Int32(1001)},
			wantCode: "ValidationException",
		},
		"a nextToken the stub did not hand out is an InvalidParameterException": {
			cfg: s.Config(), in: ecr.DescribePullThroughCacheRulesInput{NextToken: aws.String("bogus")},
			wantCode: "InvalidParameterException",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := ecr.NewFromConfig(tc.cfg).DescribePullThroughCacheRules(ctx, &tc.in)
			if code, _ := errorCode(err); code != tc.wantCode {
				t.Fatalf("err = %v, want code %q", err, tc.wantCode)
			}
			if err != nil {
				return
			}
			if got := prefixes(out.PullThroughCacheRules); !slices.Equal(got, tc.want) {
				t.Errorf("rules = %v, want %v", got, tc.want)
			}
			if out.NextToken != nil {
				t.Errorf("nextToken = %q on the only page", *out.NextToken)
			}
		})
	}
	t.Run("maxResults pages through every rule once, in order", func(t *testing.T) {
		pages := ecr.NewDescribePullThroughCacheRulesPaginator(c, &ecr.DescribePullThroughCacheRulesInput{MaxResults: aws.Int32(2)})
		var got []string
		n := 0
		for pages.HasMorePages() {
			out, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, n = append(got, prefixes(out.PullThroughCacheRules)...), n+1
		}
		if want := []string{own + "docker-hub", own + "quay", own + "ghcr"}; !slices.Equal(got, want) || n != 2 {
			t.Errorf("%d pages of %v, want 2 pages of %v", n, got, want)
		}
	})
	t.Run("rules come back with every field", func(t *testing.T) {
		out, err := c.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{"quay"}})
		if err != nil || len(out.PullThroughCacheRules) != 1 {
			t.Fatalf("%+v, err %v", out, err)
		}
		r := out.PullThroughCacheRules[0]
		if aws.ToString(r.UpstreamRegistryUrl) != "quay.io" || r.UpstreamRegistry != ecrtypes.UpstreamRegistryQuay ||
			aws.ToString(r.UpstreamRepositoryPrefix) != "prod" || aws.ToString(r.RegistryId) != moto.DefaultAccount {
			t.Errorf("rule = %+v", r)
		}
	})
}

func getAccountSetting(t *testing.T, s *ecrstub.Stub) {
	ctx := moto.Context(t)
	c := ecr.NewFromConfig(s.Config())
	get := func(name string) (string, error) {
		out, err := c.GetAccountSetting(ctx, &ecr.GetAccountSettingInput{Name: aws.String(name)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.Value), nil
	}
	if v, err := get(ecrstub.RegistryPolicyScope); err != nil || v != "V2" {
		t.Errorf("default scope: %q, err %v; want V2", v, err)
	}
	t.Cleanup(func() { s.SetAccountSetting(ecrstub.RegistryPolicyScope, "V2") })
	s.SetAccountSetting(ecrstub.RegistryPolicyScope, "V1")
	if v, err := get(ecrstub.RegistryPolicyScope); err != nil || v != "V1" {
		t.Errorf("after setting V1: %q, err %v", v, err)
	}
	// moto does not implement GetAccountSetting: a name the stub does not
	// hold reaches moto, which fails.
	if _, err := get("BASIC_SCAN_TYPE_VERSION"); err == nil {
		t.Error("an unset setting was answered; want moto's failure")
	}
}

func describeImages(t *testing.T, s *ecrstub.Stub) {
	ctx := moto.Context(t)
	c := ecr.NewFromConfig(s.Config())
	live := push(t, c, "team/app", "v1", 'a')
	cold := push(t, c, "team/app", "v0", 'b')
	waking := push(t, c, "team/app", "v2", 'd')
	s.SetImageStatus("team/app", cold, ecrtypes.ImageStatusArchived)
	s.SetImageStatus("team/app", waking, ecrtypes.ImageStatusActivating)
	t.Cleanup(func() {
		s.SetImageStatus("team/app", cold, ecrtypes.ImageStatusActive)
		s.SetImageStatus("team/app", waking, ecrtypes.ImageStatusActive)
	})
	filter := func(f ecrtypes.ImageStatusFilter) *ecrtypes.DescribeImagesFilter {
		return &ecrtypes.DescribeImagesFilter{ImageStatus: f}
	}
	tag := func(t string) ecrtypes.ImageIdentifier { return ecrtypes.ImageIdentifier{ImageTag: aws.String(t)} }
	tests := map[string]struct {
		in       ecr.DescribeImagesInput
		want     []string // digest=status
		wantCode string
	}{
		"no filter lists ACTIVE images only": {
			want: []string{live + "=ACTIVE"},
		},
		"ANY lists every image with its status": {
			in:   ecr.DescribeImagesInput{Filter: filter(ecrtypes.ImageStatusFilterAny)},
			want: []string{live + "=ACTIVE", cold + "=ARCHIVED", waking + "=ACTIVATING"},
		},
		"ARCHIVED lists archived images only": {
			in: ecr.DescribeImagesInput{Filter: filter(ecrtypes.ImageStatusFilterArchived)}, want: []string{cold + "=ARCHIVED"},
		},
		"ACTIVATING lists images being restored only": {
			in: ecr.DescribeImagesInput{Filter: filter(ecrtypes.ImageStatusFilterActivating)}, want: []string{waking + "=ACTIVATING"},
		},
		"a filter on tags only still hides archived images": {
			in:   ecr.DescribeImagesInput{Filter: &ecrtypes.DescribeImagesFilter{TagStatus: ecrtypes.TagStatusTagged}},
			want: []string{live + "=ACTIVE"},
		},
		"an archived image named without a filter is ImageNotFoundException": {
			in: ecr.DescribeImagesInput{ImageIds: []ecrtypes.ImageIdentifier{tag("v1"), tag("v0")}}, wantCode: "ImageNotFoundException",
		},
		"an archived image named with ANY is found ARCHIVED": {
			in:   ecr.DescribeImagesInput{ImageIds: []ecrtypes.ImageIdentifier{tag("v1"), {ImageDigest: aws.String(cold)}}, Filter: filter(ecrtypes.ImageStatusFilterAny)},
			want: []string{live + "=ACTIVE", cold + "=ARCHIVED"},
		},
		"a missing image is still moto's ImageNotFoundException": {
			in: ecr.DescribeImagesInput{ImageIds: []ecrtypes.ImageIdentifier{tag("nope")}, Filter: filter(ecrtypes.ImageStatusFilterAny)}, wantCode: "ImageNotFoundException",
		},
		"a missing repository is still moto's RepositoryNotFoundException": {
			in: ecr.DescribeImagesInput{RepositoryName: aws.String("ghost")}, wantCode: "RepositoryNotFoundException",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.in.RepositoryName == nil {
				tc.in.RepositoryName = aws.String("team/app")
			}
			out, err := c.DescribeImages(ctx, &tc.in)
			if code, _ := errorCode(err); code != tc.wantCode {
				t.Fatalf("err = %v, want code %q", err, tc.wantCode)
			}
			if err != nil {
				return
			}
			var got []string
			for _, d := range out.ImageDetails {
				got = append(got, aws.ToString(d.ImageDigest)+"="+string(d.ImageStatus))
			}
			slices.Sort(got)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Errorf("images = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("a restored image is ACTIVE again", func(t *testing.T) {
		s.SetImageStatus("team/app", cold, ecrtypes.ImageStatusActive)
		out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("team/app"), ImageIds: []ecrtypes.ImageIdentifier{tag("v0")}})
		if err != nil || len(out.ImageDetails) != 1 || out.ImageDetails[0].ImageStatus != ecrtypes.ImageStatusActive {
			t.Fatalf("%+v, err %v", out, err)
		}
	})
}

func injectedFailures(t *testing.T, s *ecrstub.Stub) {
	ctx := moto.Context(t)
	c := ecr.NewFromConfig(s.Config())
	push(t, c, "team/failing", "v1", 'a')
	tests := map[string]struct {
		failure    ecrstub.Failure
		wantCode   string
		wantStatus int
	}{
		"access denied":                     {failure: ecrstub.AccessDenied("DescribeImages"), wantCode: "AccessDeniedException", wantStatus: http.StatusBadRequest},
		"throttling":                        {failure: ecrstub.Throttling(), wantCode: "ThrottlingException", wantStatus: http.StatusBadRequest},
		"a server error":                    {failure: ecrstub.ServerError(), wantCode: "ServerException", wantStatus: http.StatusInternalServerError},
		"a bare HTTP status without a code": {failure: ecrstub.Failure{Status: http.StatusServiceUnavailable}, wantStatus: http.StatusServiceUnavailable},
	}
	in := &ecr.DescribeImagesInput{RepositoryName: aws.String("team/failing")}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s.Fail("DescribeImages", tc.failure)
			defer s.Clear("DescribeImages")
			_, err := c.DescribeImages(ctx, in)
			code, status := errorCode(err)
			if status != tc.wantStatus || (tc.wantCode != "" && code != tc.wantCode) {
				t.Fatalf("err = %v (code %q, HTTP %d), want %q, HTTP %d", err, code, status, tc.wantCode, tc.wantStatus)
			}
			// Other operations are untouched.
			if _, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err != nil {
				t.Errorf("DescribeRepositories: %v", err)
			}
		})
	}
	t.Run("Times fails that many requests, then works", func(t *testing.T) {
		s.Fail("DescribeImages", ecrstub.Failure{Status: http.StatusBadRequest, Code: "ThrottlingException", Times: 2})
		before := s.Calls("DescribeImages")
		var errs []error
		for range 3 {
			_, err := c.DescribeImages(ctx, in)
			errs = append(errs, err)
		}
		if errs[0] == nil || errs[1] == nil || errs[2] != nil {
			t.Errorf("errors = %v, want two failures then success", errs)
		}
		if got := s.Calls("DescribeImages") - before; got != 3 {
			t.Errorf("Calls grew by %d, want 3", got)
		}
	})
	t.Run("Clear ends a failure", func(t *testing.T) {
		s.Fail("DescribeImages", ecrstub.ServerError())
		s.Clear("DescribeImages")
		if _, err := c.DescribeImages(ctx, in); err != nil {
			t.Fatal(err)
		}
	})
}
