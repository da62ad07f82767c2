// Package imageplatform answers, before a pod exists, whether an image has
// a variant a node pool's platform can run: the check behind
// PlatformNotAvailable (containerd's "no match for platform in manifest",
// or the "exec format error" of a single-architecture image on the wrong
// nodes).
//
// Resolver reads what an image offers: the runnable entries of an OCI
// index or Docker manifest list (attestation manifests left out, nested
// indexes followed), or, in ModeFull, the os and architecture of a
// single-architecture image's config blob. Manifests and configs are
// cached by digest for the life of the process: a digest names immutable
// content, so each costs one ECR call however many admissions ask.
// Supports and Missing then match those platforms with a pool's as
// containerd's CRI plugin does on the node (github.com/containerd/platforms).
//
// Apart from the Fetcher (awsclient.Lookups in production) the package does
// no I/O.
package imageplatform
