package ecrstub

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

const (
	// defaultMaxResults is how many rules ECR answers per page when the
	// request has no maxResults; maxMaxResults is the most it allows.
	defaultMaxResults = 100
	maxMaxResults     = 1000
	// tokenPrefix starts every (decoded) nextToken the stub hands out.
	tokenPrefix = "ecrstub-rules:"
)

// Rule is a pull-through-cache rule as DescribePullThroughCacheRules
// answers it.
type Rule struct {
	// RegistryID is the registry the rule belongs to. Empty puts the rule
	// in every registry's answer, with that registry's ID.
	RegistryID               string `json:"registryId"`
	EcrRepositoryPrefix      string `json:"ecrRepositoryPrefix"`
	UpstreamRegistryURL      string `json:"upstreamRegistryUrl"`
	UpstreamRegistry         string `json:"upstreamRegistry,omitempty"`
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix,omitempty"`
}

// SetPullThroughCacheRules replaces the rules DescribePullThroughCacheRules
// answers with, in this order; none at all by default.
func (s *Stub) SetPullThroughCacheRules(rules ...Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = slices.Clone(rules)
}

// describeRulesInput is a DescribePullThroughCacheRules request.
type describeRulesInput struct {
	RegistryID string   `json:"registryId"`
	Prefixes   []string `json:"ecrRepositoryPrefixes"`
	MaxResults *int     `json:"maxResults"`
	NextToken  string   `json:"nextToken"`
}

// describeRulesOutput is a DescribePullThroughCacheRules answer. ECR sends
// an empty list, not null, for a registry without rules.
type describeRulesOutput struct {
	Rules     []Rule `json:"pullThroughCacheRules"`
	NextToken string `json:"nextToken,omitempty"`
}

// describeRules answers DescribePullThroughCacheRules from the rules set.
// A request without registryId is for the caller's account (see
// callerAccount); one naming a prefix no rule has fails with
// PullThroughCacheRuleNotFoundException, as ECR's does.
func (s *Stub) describeRules(w http.ResponseWriter, r *http.Request, body []byte) {
	var in describeRulesInput
	if !decode(w, body, &in) {
		return
	}
	if in.RegistryID == "" {
		in.RegistryID = callerAccount(r)
	}
	rules := s.registryRules(in.RegistryID)
	rules, missing := withPrefixes(rules, in.Prefixes)
	if missing != "" {
		writeError(w, http.StatusBadRequest, "PullThroughCacheRuleNotFoundException",
			fmt.Sprintf("The pull through cache rule with prefix '%s' does not exist in the registry with id '%s'", missing, in.RegistryID))
		return
	}
	page, next, err := paginate(rules, in.MaxResults, in.NextToken)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.code, err.message)
		return
	}
	writeJSON(w, describeRulesOutput{Rules: page, NextToken: next})
}

// callerAccount is the account a request acts as in moto when it sends
// the x-moto-account-id header (ConfigAs), and moto.DefaultAccount
// otherwise. The stub cannot see moto.WithAccountID or an assumed role's
// account: requests under those must name their registryId.
func callerAccount(r *http.Request) string {
	if a := r.Header.Get("x-moto-account-id"); a != "" {
		return a
	}
	return moto.DefaultAccount
}

// registryRules returns the rules of registry, each with its RegistryID.
func (s *Stub) registryRules(registry string) []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Rule{}
	for _, rule := range s.rules {
		if rule.RegistryID == "" {
			rule.RegistryID = registry
		}
		if rule.RegistryID == registry {
			out = append(out, rule)
		}
	}
	return out
}

// withPrefixes keeps the rules whose prefix is in prefixes (all of them
// when prefixes is empty). missing is a prefix no rule has, if any.
func withPrefixes(rules []Rule, prefixes []string) (kept []Rule, missing string) {
	if len(prefixes) == 0 {
		return rules, ""
	}
	for _, p := range prefixes {
		if !slices.ContainsFunc(rules, func(r Rule) bool { return r.EcrRepositoryPrefix == p }) {
			return nil, p
		}
	}
	kept = []Rule{}
	for _, r := range rules {
		if slices.Contains(prefixes, r.EcrRepositoryPrefix) {
			kept = append(kept, r)
		}
	}
	return kept, ""
}

// requestError is an ECR error answer: its code and message.
type requestError struct{ code, message string }

// paginate returns the page of rules that token (empty for the first
// page) starts and the token of the next page ("" after the last), with
// ECR's page sizes: maxResults from 1 to 1000, 100 when not given.
func paginate(rules []Rule, maxResults *int, token string) ([]Rule, string, *requestError) {
	size := defaultMaxResults
	if maxResults != nil {
		size = *maxResults
	}
	if size < 1 || size > maxMaxResults {
		return nil, "", &requestError{"ValidationException", fmt.Sprintf(
			"1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", size, maxMaxResults)}
	}
	start := 0
	if token != "" {
		var ok bool
		if start, ok = decodeToken(token); !ok || start > len(rules) {
			return nil, "", &requestError{"InvalidParameterException", "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid token'"}
		}
	}
	end := min(start+size, len(rules))
	next := ""
	if end < len(rules) {
		next = encodeToken(end)
	}
	return rules[start:end], next, nil
}

// encodeToken makes an opaque nextToken for the page starting at offset.
func encodeToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + strconv.Itoa(offset)))
}

// decodeToken reads the offset back from a token of encodeToken.
func decodeToken(token string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), tokenPrefix)
	if !ok {
		return 0, false
	}
	offset, err := strconv.Atoi(rest)
	return offset, err == nil && offset >= 0
}
