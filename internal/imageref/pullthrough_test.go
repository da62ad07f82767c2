package imageref

import "testing"

func TestMatchPullThroughCachePrefix(t *testing.T) {
	const repo = "123456789012.dkr.ecr.us-west-2.amazonaws.com/"
	tests := map[string]struct {
		in       string
		prefixes []string
		want     PullThroughCache
		ok       bool
	}{
		"a custom prefix matches whole segments": {
			in: repo + "mirror/hub/library/nginx", prefixes: []string{"mirror/hub"},
			want: PullThroughCache{Prefix: "mirror/hub", UpstreamRepository: "library/nginx"}, ok: true,
		},
		"the longest prefix wins": {
			in: repo + "cache/quay/coreos/etcd", prefixes: []string{"cache", "cache/quay"},
			want: PullThroughCache{Prefix: "cache/quay", UpstreamRepository: "coreos/etcd"}, ok: true,
		},
		"a prefix never matches part of a segment": {
			in: repo + "quayside/app", prefixes: []string{"quay"},
		},
		"a trailing slash in a rule is tolerated": {
			in: repo + "quay/app", prefixes: []string{"quay/"},
			want: PullThroughCache{Prefix: "quay", UpstreamRepository: "app"}, ok: true,
		},
		"ROOT matches any repository when nothing else does": {
			in: repo + "team/app", prefixes: []string{"quay", "ROOT"},
			want: PullThroughCache{Prefix: "ROOT", UpstreamRepository: "team/app"}, ok: true,
		},
		"a real prefix beats ROOT": {
			in: repo + "quay/app", prefixes: []string{"ROOT", "quay"},
			want: PullThroughCache{Prefix: "quay", UpstreamRepository: "app"}, ok: true,
		},
		"no rules, no match": {in: repo + "quay/app"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			img, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := img.MatchPullThroughCachePrefix(tc.prefixes)
			if got != tc.want || ok != tc.ok {
				t.Errorf("MatchPullThroughCachePrefix(%q) = %+v, %v; want %+v, %v", tc.prefixes, got, ok, tc.want, tc.ok)
			}
		})
	}
}
