// Package flight shares one fetch among the concurrent callers that ask for
// the same key (golang.org/x/sync/singleflight) while each caller still
// stops waiting when its own context ends. The AWS lookups (awsclient),
// node role discovery (nodepools/discover) and image platform reads
// (imageplatform) all wait this way: an admission that times out answers
// at once, and the lookup it started goes on for the callers still waiting
// and for the cache.
package flight
