package lifecycle

import "time"

// Image storage classes as DescribeImages and the lifecycle policy preview
// spell them (LifecyclePolicyStorageClass: STANDARD, ARCHIVE).
const (
	ImageStandard = "STANDARD"
	ImageArchive  = "ARCHIVE"
)

// Image is what Evaluate needs of one image of the repository: the fields of
// a DescribeImages ImageDetail.
type Image struct {
	// Digest is imageDigest; Evaluate answers by it.
	Digest string
	// Tags is imageTags; empty for an untagged image.
	Tags []string
	// PushedAt is imagePushedAt.
	PushedAt time.Time
	// LastPulledAt is lastRecordedPullTime (refreshed "at least once every 24
	// hours"). Zero when the image was never pulled: sinceImagePulled then
	// uses the push time ("If an image was never pulled, the image's
	// pushed_at_time is used instead of the last_recorded_pulltime").
	LastPulledAt time.Time
	// StorageClass is ImageStandard or ImageArchive; see StorageClassOf to
	// derive it from imageStatus. "" counts as ImageStandard (responses
	// without imageStatus predate archiving).
	StorageClass string
	// LastTransitionedAt is lastArchivedAt: when the image entered the
	// archive, the start of a sinceImageTransitioned rule's countdown. When
	// zero for an archived image, the push time stands in: the image cannot
	// have been archived earlier, so the predicted date is the earliest one.
	LastTransitionedAt time.Time
	// LastActivatedAt is lastActivatedAt: when the image was last restored
	// from the archive; zero if never. A restored image is ordered by it
	// instead of its push time, and counts from it for sinceImagePulled until
	// it is pulled again (evaluation rules in "Automate the cleanup of images
	// by using lifecycle policies").
	LastActivatedAt time.Time
}

// StorageClassOf maps a DescribeImages imageStatus to the storage class the
// lifecycle rules select on: ACTIVE (or "", from registries that do not
// report it) is ImageStandard, ARCHIVED is ImageArchive. ACTIVATING (being
// restored) is returned as is: no documented rule selects an image while it
// moves between classes, so Evaluate leaves it alone.
func StorageClassOf(imageStatus string) string {
	switch imageStatus {
	case "", "ACTIVE":
		return ImageStandard
	case "ARCHIVED":
		return ImageArchive
	default:
		return imageStatus
	}
}

// storageClass is the policy spelling of the image's storage class, "" for
// one no rule selects.
func (img *Image) storageClass() string {
	switch img.StorageClass {
	case "", ImageStandard:
		return StorageClassStandard
	case ImageArchive:
		return StorageClassArchive
	default:
		return ""
	}
}

// orderedAt is the time imageCountMoreThan sorts by: "Expiration is always
// ordered by pushed_at_time ... If an image was archived and then restored at
// any point in the past, the image's last_activated_at is used instead of
// pushed_at_time."
func (img *Image) orderedAt() time.Time {
	if !img.LastActivatedAt.IsZero() {
		return img.LastActivatedAt
	}
	return img.PushedAt
}

// lastPulledAt is the time sinceImagePulled counts from: the recorded pull;
// the restore time if the image was restored and not pulled since; the push
// time if it was never pulled.
func (img *Image) lastPulledAt() time.Time {
	restored := !img.LastActivatedAt.IsZero()
	switch {
	case restored && img.LastPulledAt.Before(img.LastActivatedAt):
		return img.LastActivatedAt
	case !img.LastPulledAt.IsZero():
		return img.LastPulledAt
	default:
		return img.PushedAt
	}
}

// transitionedAt is the time sinceImageTransitioned counts from.
func (img *Image) transitionedAt() time.Time {
	if img.LastTransitionedAt.IsZero() {
		return img.PushedAt
	}
	return img.LastTransitionedAt
}
