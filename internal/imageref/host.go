package imageref

import (
	"fmt"
	"slices"
	"strings"
)

// registryHost is what an ECR registry host name says about the registry.
type registryHost struct {
	account, region, partition string
	fips, dualStack            bool
}

// parseHost recognises an ECR private registry host. It returns ok=false
// with a reason for a host that is not one, and an error for a host that has
// the ECR shape and a known AWS suffix but cannot be a real registry (such a
// reference would fail to pull, so it must not be silently skipped).
func parseHost(domain string) (h registryHost, ok bool, reason string, err error) {
	host := strings.ToLower(domain)
	if name, port, hasPort := strings.Cut(host, ":"); hasPort {
		if port != "443" {
			return h, false, fmt.Sprintf("registry %s is not an ECR registry (port %s)", domain, port), nil
		}
		host = name
	}
	switch host {
	case "public.ecr.aws", "ecr-public.aws.com":
		return h, false, "ECR Public images are public and need no node IAM permission", nil
	case "docker.io":
		return h, false, "Docker Hub image, not in a private ECR registry", nil
	}

	labels := strings.Split(host, ".")
	var rest []string
	switch {
	case len(labels) >= 5 && labels[1] == "dkr" && (labels[2] == "ecr" || labels[2] == "ecr-fips"):
		h.fips = labels[2] == "ecr-fips"
		h.region, rest = labels[3], labels[4:]
	case len(labels) >= 4 && (labels[1] == "dkr-ecr" || labels[1] == "dkr-ecr-fips"):
		h.fips = labels[1] == "dkr-ecr-fips"
		h.dualStack = true
		h.region, rest = labels[2], labels[3:]
	default:
		return h, false, fmt.Sprintf("registry %s is not a private ECR registry", domain), nil
	}
	suffix := strings.Join(rest, ".")
	if !isKnownSuffix(suffix) {
		// Someone's own host that happens to look like ECR: not ours to judge.
		return h, false, fmt.Sprintf("registry %s is not a private ECR registry (unknown DNS suffix %s)", domain, suffix), nil
	}

	h.account = labels[0]
	if !IsAccountID(h.account) {
		return h, false, "", fmt.Errorf("ECR registry host %s: %q is not an AWS account ID (digits only, at most 12)", domain, h.account)
	}
	p, known := partitionForRegion(h.region)
	if !known {
		return h, false, "", fmt.Errorf("ECR registry host %s: %q is not an AWS region name", domain, h.region)
	}
	want := p.ipv4
	if h.dualStack {
		want = p.dualStack
	}
	if !slices.Contains(want, suffix) {
		return h, false, "", fmt.Errorf("ECR registry host %s: region %s (partition %s) does not use the DNS suffix %s", domain, h.region, p.id, suffix)
	}
	h.partition = p.id
	return h, true, "", nil
}

// IsAccountID reports whether s is an AWS account ID as ecr-preflight
// accepts them everywhere (image hosts, role ARNs, --assume-role): 1 to 12
// digits. Real account IDs have 12, but documentation, workshops (the seed
// scenario's 1234567890) and emulators use shorter ones, and a registry
// that does not exist is reported by ECR itself as RepositoryNotFound, which
// tells the user more than "invalid".
func IsAccountID(s string) bool {
	if len(s) == 0 || len(s) > 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
