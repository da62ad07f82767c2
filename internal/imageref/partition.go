package imageref

import (
	"regexp"
	"slices"
)

// partition describes the DNS names ECR registries use in one AWS partition.
// The region patterns and suffixes follow the SDK's partitions.json (region
// regex, dnsSuffix, dualStackDnsSuffix with "api." replaced by "on.", the
// ECR dual-stack registry form).
type partition struct {
	id     string
	region *regexp.Regexp
	// ipv4 is the suffix of ACCOUNT.dkr.ecr[-fips].REGION.<suffix>.
	ipv4 []string
	// dualStack is the suffix of ACCOUNT.dkr-ecr[-fips].REGION.<suffix>.
	dualStack []string
}

// partitions is ordered from the most specific region pattern to the most
// general, so that us-gov-west-1 is never taken for a commercial region.
var partitions = []partition{
	{id: "aws-us-gov", region: regexp.MustCompile(`^us-gov-[a-z]+-\d+$`), ipv4: []string{"amazonaws.com"}, dualStack: []string{"on.aws"}},
	{id: "aws-iso", region: regexp.MustCompile(`^us-iso-[a-z]+-\d+$`), ipv4: []string{"c2s.ic.gov"}, dualStack: []string{"on.aws.ic.gov"}},
	{id: "aws-iso-b", region: regexp.MustCompile(`^us-isob-[a-z]+-\d+$`), ipv4: []string{"sc2s.sgov.gov"}, dualStack: []string{"on.aws.scloud"}},
	{id: "aws-iso-e", region: regexp.MustCompile(`^eu-isoe-[a-z]+-\d+$`), ipv4: []string{"cloud.adc-e.uk"}, dualStack: []string{"on.cloud-aws.adc-e.uk"}},
	{id: "aws-iso-f", region: regexp.MustCompile(`^us-isof-[a-z]+-\d+$`), ipv4: []string{"csp.hci.ic.gov"}, dualStack: []string{"on.aws.hci.ic.gov"}},
	// The European Sovereign Cloud's dual-stack registry name is not in the
	// SDK's tables; both the "on." form and the bare form seen in AWS agent
	// sources are accepted.
	{id: "aws-eusc", region: regexp.MustCompile(`^eusc-[a-z]+-[a-z]+-\d+$`), ipv4: []string{"amazonaws.eu"}, dualStack: []string{"on.amazonwebservices.eu", "amazonwebservices.eu"}},
	{id: "aws-cn", region: regexp.MustCompile(`^cn-[a-z]+-\d+$`), ipv4: []string{"amazonaws.com.cn"}, dualStack: []string{"on.amazonwebservices.com.cn"}},
	{id: "aws", region: regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+$`), ipv4: []string{"amazonaws.com"}, dualStack: []string{"on.aws"}},
}

// partitionForRegion returns the partition a region belongs to.
func partitionForRegion(region string) (partition, bool) {
	for _, p := range partitions {
		if p.region.MatchString(region) {
			return p, true
		}
	}
	return partition{}, false
}

// isKnownSuffix reports whether suffix is the registry DNS suffix of any
// partition, in either form. It separates a malformed ECR host (an error)
// from an unrelated host that merely looks alike (skipped).
func isKnownSuffix(suffix string) bool {
	for _, p := range partitions {
		if slices.Contains(p.ipv4, suffix) || slices.Contains(p.dualStack, suffix) {
			return true
		}
	}
	return false
}

// PartitionForRegion returns the AWS partition ID (aws, aws-cn, aws-us-gov,
// aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc) of a region name, or
// false for a name that matches no partition's region pattern.
func PartitionForRegion(region string) (string, bool) {
	p, ok := partitionForRegion(region)
	return p.id, ok
}
