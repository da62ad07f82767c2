package lifecycle_test

import (
	"testing"

	"github.com/ecr-preflight/ecr-preflight/internal/lifecycle"
)

func TestSelectionMatches(t *testing.T) {
	patterns := func(p ...string) lifecycle.Selection {
		return lifecycle.Selection{TagStatus: lifecycle.TagStatusTagged, TagPatternList: p, StorageClass: lifecycle.StorageClassStandard}
	}
	prefixes := func(p ...string) lifecycle.Selection {
		return lifecycle.Selection{TagStatus: lifecycle.TagStatusTagged, TagPrefixList: p, StorageClass: lifecycle.StorageClassStandard}
	}
	status := func(s lifecycle.TagStatus, class string) lifecycle.Selection {
		return lifecycle.Selection{TagStatus: s, StorageClass: class}
	}
	standard := func(tags ...string) lifecycle.Image { return lifecycle.Image{Tags: tags} }
	archived := func(tags ...string) lifecycle.Image {
		return lifecycle.Image{Tags: tags, StorageClass: lifecycle.ImageArchive}
	}
	tests := map[string]struct {
		sel  lifecycle.Selection
		img  lifecycle.Image
		want bool
	}{
		"prod* matches prod itself":                        {patterns("prod*"), standard("prod"), true},
		"prod* matches production-team1":                   {patterns("prod*"), standard("production-team1"), true},
		"prod* does not match a tag containing prod later": {patterns("prod*"), standard("repo-production"), false},
		"*prod* matches repo-production":                   {patterns("*prod*"), standard("repo-production"), true},
		"*prod* matches prod-team":                         {patterns("*prod*"), standard("prod-team"), true},
		"a pattern without wildcard is the whole tag":      {patterns("latest"), standard("latest-2"), false},
		"a pattern without wildcard matches itself":        {patterns("latest"), standard("old", "latest"), true},
		"*-rc* matches v1-rc1":                             {patterns("*-rc*"), standard("v1-rc1"), true},
		"*-rc* matches v1-rc":                              {patterns("*-rc*"), standard("v1-rc"), true},
		"*-rc* does not match rc1":                         {patterns("*-rc*"), standard("rc1"), false},
		"patterns are case-sensitive":                      {patterns("*-rc*"), standard("v1-RC1"), false},
		"a*b*c needs a, b and c in order":                  {patterns("a*b*c"), standard("axxbyyc"), true},
		"a*b*c fails out of order":                         {patterns("a*b*c"), standard("acb"), false},
		"a*a does not match a single a":                    {patterns("a*a"), standard("a"), false},
		"a*a matches aa":                                   {patterns("a*a"), standard("aa"), true},
		"four wildcards":                                   {patterns("*test*1*2*3"), standard("my-test-v1.2.3"), true},
		"a lone * matches any tag":                         {patterns("*"), standard("x"), true},
		"a lone * does not match an untagged image":        {patterns("*"), standard(), false},
		"every pattern must match some tag":                {patterns("alpha*", "beta*"), standard("alpha-1"), false},
		"patterns may match different tags":                {patterns("alpha*", "beta*"), standard("beta-2", "alpha-2"), true},
		"one tag may satisfy every pattern":                {patterns("*alpha*", "*beta*"), standard("alpha-beta"), true},
		"a prefix is a plain prefix, * included":           {prefixes("prod*"), standard("production"), false},
		"every prefix must start some tag":                 {prefixes("prod", "eu"), standard("prod-1", "us-1"), false},
		"prefixes may start different tags":                {prefixes("prod", "eu"), standard("eu-1", "prod-1"), true},
		"untagged takes only untagged images":              {status(lifecycle.TagStatusUntagged, lifecycle.StorageClassStandard), standard("v1"), false},
		"untagged takes an image without tags":             {status(lifecycle.TagStatusUntagged, lifecycle.StorageClassStandard), standard(), true},
		"any takes tagged images":                          {status(lifecycle.TagStatusAny, lifecycle.StorageClassStandard), standard("v1"), true},
		"a standard rule ignores archived images":          {status(lifecycle.TagStatusAny, lifecycle.StorageClassStandard), archived("v1"), false},
		"an archive rule takes archived images":            {status(lifecycle.TagStatusAny, lifecycle.StorageClassArchive), archived("v1"), true},
		"an archive rule ignores standard images":          {status(lifecycle.TagStatusAny, lifecycle.StorageClassArchive), standard("v1"), false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.sel.Matches(&tt.img); got != tt.want {
				t.Errorf("Matches(%v) = %v, want %v", tt.img.Tags, got, tt.want)
			}
		})
	}
}
