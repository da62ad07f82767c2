package imageplatform

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's media types, beside the OCI ones of ocispec. A Docker manifest
// list and image manifest have the JSON shape of an OCI index and manifest.
const (
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
)

// BuildKit marks the attestation manifests (SBOM, provenance) it adds to an
// index with this annotation and the platform unknown/unknown; no node can
// run them. See BuildKit's docs/attestations/attestation-storage.md.
const (
	referenceTypeAnnotation = "vnd.docker.reference.type"
	attestationManifest     = "attestation-manifest"
)

// kind is what a media type says a manifest is.
type kind int

const (
	kindOther    kind = iota // schema 1, an artifact, or not a manifest at all
	kindIndex                // OCI index or Docker manifest list
	kindManifest             // OCI or Docker (schema 2) image manifest
)

func kindOf(mediaType string) kind {
	switch mediaType {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		return kindIndex
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		return kindManifest
	}
	return kindOther
}

// isImageConfig reports whether a config media type is an image config,
// whose os and architecture say where the image runs (an artifact's config,
// such as a Helm chart's, does not).
func isImageConfig(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageConfig || mediaType == mediaTypeDockerConfig
}

// manifest is what the resolver keeps of a manifest, by digest: an index's
// entries, or an image manifest's config.
type manifest struct {
	kind    kind
	entries []entry
	config  ocispec.Descriptor // kindManifest: only MediaType and Digest are kept
}

// entry is one descriptor of an index.
type entry struct {
	mediaType string
	digest    string
	platform  *ocispec.Platform
	// runnable is false for attestation manifests (see attestationManifest).
	runnable bool
}

// parseManifest reads body, whose media type is the first non-empty of
// answered (ECR's answer), described (DescribeImages') and the body's own
// mediaType field; with none, the body's shape decides.
func parseManifest(answered, described string, body []byte) (manifest, error) {
	var doc struct {
		MediaType string               `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return manifest{}, err
	}
	k := kindOther
	switch {
	case answered != "":
		k = kindOf(answered)
	case described != "":
		k = kindOf(described)
	case doc.MediaType != "":
		k = kindOf(doc.MediaType)
	case doc.Manifests != nil:
		k = kindIndex
	case doc.Config != nil:
		k = kindManifest
	}
	m := manifest{kind: k}
	switch k {
	case kindIndex:
		for _, d := range doc.Manifests {
			m.entries = append(m.entries, entry{
				mediaType: d.MediaType,
				digest:    d.Digest.String(),
				platform:  d.Platform,
				runnable:  d.Annotations[referenceTypeAnnotation] != attestationManifest && !isUnknown(d.Platform),
			})
		}
	case kindManifest:
		if doc.Config == nil {
			return manifest{}, fmt.Errorf("an image manifest without a config")
		}
		m.config = ocispec.Descriptor{MediaType: doc.Config.MediaType, Digest: doc.Config.Digest}
	}
	return m, nil
}

// isUnknown reports whether p is unknown/unknown, the platform BuildKit
// gives attestation manifests.
func isUnknown(p *ocispec.Platform) bool {
	return p != nil && p.OS == "unknown" && p.Architecture == "unknown"
}

// parseConfig returns the platform an image config names; ok is false when
// it names no os or architecture.
func parseConfig(body []byte) (p ocispec.Platform, ok bool, err error) {
	var img ocispec.Image
	if err := json.Unmarshal(body, &img); err != nil {
		return ocispec.Platform{}, false, err
	}
	return img.Platform, img.OS != "" && img.Architecture != "", nil
}
