package preflight

import (
	"time"

	gocache "github.com/patrickmn/go-cache"

	"github.com/ecr-preflight/ecr-preflight/internal/iampolicy"
)

// policyCache keeps parsed policies by their document text, so a warm check
// never parses: AWS answers come from the lookup cache as the same text.
type policyCache struct {
	parsed *gocache.Cache
}

type parsedPolicy struct {
	policy *iampolicy.Policy
	err    error
}

func newPolicyCache() *policyCache {
	// Texts that stop appearing age out; an hour bounds the memory held by
	// policies that were edited away.
	return &policyCache{parsed: gocache.New(time.Hour, 10*time.Minute)}
}

func (c *policyCache) identity(text string) (*iampolicy.Policy, error) {
	return c.parse(iampolicy.SourceIdentity, text)
}

func (c *policyCache) boundary(text string) (*iampolicy.Policy, error) {
	return c.parse(iampolicy.SourceBoundary, text)
}

func (c *policyCache) resource(text string) (*iampolicy.Policy, error) {
	return c.parse(iampolicy.SourceResource, text)
}

func (c *policyCache) parse(kind iampolicy.Source, text string) (*iampolicy.Policy, error) {
	key := string(kind) + "\x00" + text
	if v, ok := c.parsed.Get(key); ok {
		p := v.(parsedPolicy)
		return p.policy, p.err
	}
	p, err := iampolicy.ParseAs([]byte(text), kind)
	c.parsed.SetDefault(key, parsedPolicy{policy: p, err: err})
	return p, err
}

func namedPolicy(name string, p *iampolicy.Policy) iampolicy.NamedPolicy {
	return iampolicy.NamedPolicy{Name: name, Policy: p}
}
