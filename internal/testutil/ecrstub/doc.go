// Package ecrstub puts a small HTTP proxy on 127.0.0.1 in front of a moto
// server, for integration tests that need ECR behaviour moto lacks.
//
// Every request is forwarded to moto unchanged, except these ECR JSON
// requests (X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>):
//
//   - DescribePullThroughCacheRules, which moto does not implement, is
//     answered from the rules set with SetPullThroughCacheRules (none by
//     default), with the registryId, ecrRepositoryPrefixes, maxResults and
//     nextToken parameters treated as ECR treats them.
//   - GetAccountSetting, which moto does not implement, is answered from
//     the settings set with SetAccountSetting; REGISTRY_POLICY_SCOPE is "V2"
//     unless set. Other names go to moto.
//   - DescribeImages goes to moto, whose answer is then given the image
//     statuses set with SetImageStatus (moto reports none, and ignores the
//     request's filter.imageStatus). As ECR does, an answer to a request
//     without an imageStatus filter (or with ACTIVE) leaves out images that
//     are not ACTIVE, and a request naming such an image by tag or digest
//     fails with ImageNotFoundException, as moto fails for a missing one.
//
// Fail makes an ECR operation fail with an injected error (access denied,
// throttling, a server error) until cleared, for failure-path tests.
//
// Config and ConfigAs mirror moto.Server's, pointed at the stub, so seeding
// helpers (package awsseed) and clients under test go through it. The stub
// holds one set of rules, settings and statuses for all accounts, except
// that a rule with a RegistryID is only in that registry's answers.
package ecrstub
