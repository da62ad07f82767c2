package imageref

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"nginx", "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:v1",
		"123456789012.dkr-ecr-fips.us-east-1.on.aws:443/a/b@" + dgst,
		"public.ecr.aws/x/y", "::", "", "a:b:c", "123456789012.dkr.ecr..amazonaws.com/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		img, err := Parse(s)
		if len(s) > MaxReferenceLength && err == nil {
			t.Fatalf("Parse accepted a reference of %d bytes, longer than MaxReferenceLength", len(s))
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidReference", s, err)
			}
			return
		}
		if img.Tag == "" && img.Digest == "" {
			t.Fatalf("Parse(%q) gave neither tag nor digest", s)
		}
		if img.Kind == ECRPrivate {
			if !strings.HasPrefix(img.RepositoryARN(), "arn:"+img.Partition+":ecr:") || img.Repository == "" {
				t.Fatalf("Parse(%q) = %+v: inconsistent ECR image", s, img)
			}
		} else if img.SkipReason == "" {
			t.Fatalf("Parse(%q) = %+v: NotECR without a reason", s, img)
		}
	})
}
