package imageref

import (
	"errors"
	"testing"
)

const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	tests := map[string]struct {
		in   string
		want Image
	}{
		"a commercial-region ECR image with a tag": {
			in: "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.us-west-2.amazonaws.com",
				Account: "123456789012", Region: "us-west-2", Partition: "aws", Repository: "app", Tag: "v1"},
		},
		"an ECR image without tag or digest pulls latest, as the kubelet does": {
			in: "123456789012.dkr.ecr.eu-central-1.amazonaws.com/team/app/api",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.eu-central-1.amazonaws.com",
				Account: "123456789012", Region: "eu-central-1", Partition: "aws", Repository: "team/app/api", Tag: "latest"},
		},
		"an ECR image by digest has no tag": {
			in: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@" + dgst,
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
				Account: "123456789012", Region: "us-east-1", Partition: "aws", Repository: "app", Digest: dgst},
		},
		"an ECR image with tag and digest keeps both": {
			in: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v2@" + dgst,
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
				Account: "123456789012", Region: "us-east-1", Partition: "aws", Repository: "app", Tag: "v2", Digest: dgst},
		},
		"an explicit :443 port is still ECR": {
			in: "123456789012.dkr.ecr.us-west-2.amazonaws.com:443/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.us-west-2.amazonaws.com:443",
				Account: "123456789012", Region: "us-west-2", Partition: "aws", Repository: "app", Tag: "v1"},
		},
		"a FIPS endpoint": {
			in: "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
				Account: "123456789012", Region: "us-gov-west-1", Partition: "aws-us-gov", Repository: "app", Tag: "v1", FIPS: true},
		},
		"GovCloud uses amazonaws.com and the aws-us-gov partition": {
			in: "123456789012.dkr.ecr.us-gov-east-1.amazonaws.com/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.us-gov-east-1.amazonaws.com",
				Account: "123456789012", Region: "us-gov-east-1", Partition: "aws-us-gov", Repository: "app", Tag: "v1"},
		},
		"a China region": {
			in: "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
				Account: "123456789012", Region: "cn-north-1", Partition: "aws-cn", Repository: "app", Tag: "v1"},
		},
		"a dual-stack endpoint": {
			in: "123456789012.dkr-ecr.us-west-2.on.aws/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr-ecr.us-west-2.on.aws",
				Account: "123456789012", Region: "us-west-2", Partition: "aws", Repository: "app", Tag: "v1", DualStack: true},
		},
		"a dual-stack FIPS endpoint": {
			in: "123456789012.dkr-ecr-fips.us-east-1.on.aws/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr-ecr-fips.us-east-1.on.aws",
				Account: "123456789012", Region: "us-east-1", Partition: "aws", Repository: "app", Tag: "v1", DualStack: true, FIPS: true},
		},
		"a dual-stack China endpoint": {
			in: "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
				Account: "123456789012", Region: "cn-northwest-1", Partition: "aws-cn", Repository: "app", Tag: "v1", DualStack: true},
		},
		"a dual-stack GovCloud endpoint": {
			in: "123456789012.dkr-ecr.us-gov-west-1.on.aws/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr-ecr.us-gov-west-1.on.aws",
				Account: "123456789012", Region: "us-gov-west-1", Partition: "aws-us-gov", Repository: "app", Tag: "v1", DualStack: true},
		},
		"the ISO partition (C2S)": {
			in: "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
				Account: "123456789012", Region: "us-iso-east-1", Partition: "aws-iso", Repository: "app", Tag: "v1"},
		},
		"the ISO-B partition (SC2S)": {
			in: "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
				Account: "123456789012", Region: "us-isob-east-1", Partition: "aws-iso-b", Repository: "app", Tag: "v1"},
		},
		"the ISO-E partition": {
			in: "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
				Account: "123456789012", Region: "eu-isoe-west-1", Partition: "aws-iso-e", Repository: "app", Tag: "v1"},
		},
		"the ISO-F partition, dual-stack": {
			in: "123456789012.dkr-ecr.us-isof-south-1.on.aws.hci.ic.gov/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr-ecr.us-isof-south-1.on.aws.hci.ic.gov",
				Account: "123456789012", Region: "us-isof-south-1", Partition: "aws-iso-f", Repository: "app", Tag: "v1", DualStack: true},
		},
		"the European Sovereign Cloud": {
			in: "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
				Account: "123456789012", Region: "eusc-de-east-1", Partition: "aws-eusc", Repository: "app", Tag: "v1"},
		},
		"a pull-through-cache repository is an ordinary ECR repository": {
			in: "123456789012.dkr.ecr.us-west-2.amazonaws.com/docker-hub/library/nginx:1.27",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.dkr.ecr.us-west-2.amazonaws.com",
				Account: "123456789012", Region: "us-west-2", Partition: "aws", Repository: "docker-hub/library/nginx", Tag: "1.27"},
		},
		"an upper-case host is matched case-insensitively, as DNS is": {
			in: "123456789012.DKR.ECR.US-WEST-2.AMAZONAWS.COM/app:v1",
			want: Image{Kind: ECRPrivate, Registry: "123456789012.DKR.ECR.US-WEST-2.AMAZONAWS.COM",
				Account: "123456789012", Region: "us-west-2", Partition: "aws", Repository: "app", Tag: "v1"},
		},
		"a bare Docker Hub name is normalised and skipped": {
			in:   "nginx",
			want: Image{Kind: NotECR, Registry: "docker.io", Repository: "library/nginx", Tag: "latest"},
		},
		"a fully qualified Docker Hub name is skipped": {
			in:   "docker.io/library/nginx:1.27",
			want: Image{Kind: NotECR, Registry: "docker.io", Repository: "library/nginx", Tag: "1.27"},
		},
		"ECR Public is skipped": {
			in:   "public.ecr.aws/eks-distro/kubernetes/pause:3.9",
			want: Image{Kind: NotECR, Registry: "public.ecr.aws", Repository: "eks-distro/kubernetes/pause", Tag: "3.9"},
		},
		"GHCR is skipped": {
			in:   "ghcr.io/fluxcd/source-controller@" + dgst,
			want: Image{Kind: NotECR, Registry: "ghcr.io", Repository: "fluxcd/source-controller", Digest: dgst},
		},
		"registry.k8s.io is skipped": {
			in:   "registry.k8s.io/pause:3.10",
			want: Image{Kind: NotECR, Registry: "registry.k8s.io", Repository: "pause", Tag: "3.10"},
		},
		"a local registry with a port is skipped": {
			in:   "localhost:5000/app:dev",
			want: Image{Kind: NotECR, Registry: "localhost:5000", Repository: "app", Tag: "dev"},
		},
		"an ECR host on a port other than 443 is not ECR": {
			in:   "123456789012.dkr.ecr.us-west-2.amazonaws.com:5000/app:v1",
			want: Image{Kind: NotECR, Registry: "123456789012.dkr.ecr.us-west-2.amazonaws.com:5000", Repository: "app", Tag: "v1"},
		},
		"an ECR-looking host under someone else's domain is not ECR": {
			in:   "123456789012.dkr.ecr.us-west-2.example.com/app:v1",
			want: Image{Kind: NotECR, Registry: "123456789012.dkr.ecr.us-west-2.example.com", Repository: "app", Tag: "v1"},
		},
		"the ECR API endpoint is not a registry": {
			in:   "api.ecr.us-west-2.amazonaws.com/app:v1",
			want: Image{Kind: NotECR, Registry: "api.ecr.us-west-2.amazonaws.com", Repository: "app", Tag: "v1"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tc.in, err)
			}
			if (got.Kind == NotECR) != (got.SkipReason != "") {
				t.Errorf("Parse(%q): Kind %v with SkipReason %q; a skip reason is required exactly for NotECR", tc.in, got.Kind, got.SkipReason)
			}
			tc.want.Original = tc.in
			tc.want.SkipReason = got.SkipReason
			if got != tc.want {
				t.Errorf("Parse(%q)\n got  %+v\n want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]string{
		"an empty reference":                                     "",
		"garbage":                                                "::not an image::",
		"an upper-case repository name":                          "123456789012.dkr.ecr.us-west-2.amazonaws.com/App:v1",
		"an upper-case Docker Hub name":                          "NGINX",
		"a bare ECR registry host":                               "123456789012.dkr.ecr.us-west-2.amazonaws.com",
		"a bare ECR registry host with a tag":                    "123456789012.dkr.ecr.us-west-2.amazonaws.com:v1",
		"a truncated digest":                                     "123456789012.dkr.ecr.us-west-2.amazonaws.com/app@sha256:abc",
		"a bare image ID, which the kubelet cannot pull by name": dgst[len("sha256:"):],
		"an ECR host whose account is longer than 12 digits":     "1234567890123.dkr.ecr.us-west-2.amazonaws.com/app:v1",
		"an ECR host whose account is not digits":                "12345abc.dkr.ecr.us-west-2.amazonaws.com/app:v1",
		"an ECR host with a region that is not a region":         "123456789012.dkr.ecr.moon-base-1.amazonaws.com/app:v1",
		"a China region under the commercial suffix":             "123456789012.dkr.ecr.cn-north-1.amazonaws.com/app:v1",
		"a commercial region under the China suffix":             "123456789012.dkr.ecr.us-west-2.amazonaws.com.cn/app:v1",
		"a dual-stack host with an IPv4 suffix":                  "123456789012.dkr-ecr.us-west-2.amazonaws.com/app:v1",
		"a tag longer than 128 characters": "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:" +
			"t123456789t123456789t123456789t123456789t123456789t123456789t123456789t123456789t123456789t123456789t123456789t123456789t1234567890",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", in, got)
			}
			if !errors.Is(err, ErrInvalidReference) {
				t.Errorf("Parse(%q) error %v does not wrap ErrInvalidReference", in, err)
			}
			var invalid *InvalidReferenceError
			if !errors.As(err, &invalid) || invalid.Cause == nil || invalid.Reference != in {
				t.Errorf("Parse(%q) error %#v: want an *InvalidReferenceError naming the reference and its cause", in, err)
			}
			if got.Original != in {
				t.Errorf("Parse(%q).Original = %q, want the input even on error", in, got.Original)
			}
		})
	}
}

func TestRepositoryARN(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"commercial partition, nested repository": {
			in:   "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app/api:v1",
			want: "arn:aws:ecr:us-west-2:123456789012:repository/team/app/api",
		},
		"China partition": {
			in:   "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app",
			want: "arn:aws-cn:ecr:cn-north-1:123456789012:repository/app",
		},
		"GovCloud partition": {
			in:   "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com/app",
			want: "arn:aws-us-gov:ecr:us-gov-west-1:123456789012:repository/app",
		},
		"not ECR has no ARN": {in: "nginx", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			img, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := img.RepositoryARN(); got != tc.want {
				t.Errorf("RepositoryARN() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReference(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"a bare name gains registry, library/ and latest": {in: "nginx", want: "docker.io/library/nginx:latest"},
		"tag and digest are both kept": {
			in:   "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:v1@" + dgst,
			want: "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:v1@" + dgst,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			img, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := img.Reference(); got != tc.want {
				t.Errorf("Reference() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPartitionForRegion(t *testing.T) {
	tests := map[string]struct {
		region, want string
		ok           bool
	}{
		"a commercial region":         {"ap-southeast-7", "aws", true},
		"a GovCloud region":           {"us-gov-east-1", "aws-us-gov", true},
		"a China region":              {"cn-northwest-1", "aws-cn", true},
		"an ISO-B region":             {"us-isob-east-1", "aws-iso-b", true},
		"a sovereign-cloud region":    {"eusc-de-east-1", "aws-eusc", true},
		"something that is no region": {"mars-north-1", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := PartitionForRegion(tc.region)
			if got != tc.want || ok != tc.ok {
				t.Errorf("PartitionForRegion(%q) = %q, %v; want %q, %v", tc.region, got, ok, tc.want, tc.ok)
			}
		})
	}
}
