package awsclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// ImageID names an image in a repository by tag or digest. When a
// reference has both, pass only the digest: that is what the runtime pulls.
type ImageID struct {
	Tag    string
	Digest string
}

func (id ImageID) String() string {
	if id.Digest != "" {
		return id.Digest
	}
	return id.Tag
}

// ImageDetail is the metadata ECR holds for an image.
type ImageDetail struct {
	// ID is the ImageID that was asked for; RepositoryImages, which asks
	// for none, sets the digest.
	ID     ImageID
	Digest string
	Tags   []string
	// ManifestMediaType is the media type of the image manifest (or index).
	ManifestMediaType string
	PushedAt          time.Time
	// Status is ECR's image status: "ACTIVE", or "ARCHIVED"/"ACTIVATING" for
	// an image in ECR's archive tier, which cannot be pulled until restored.
	// Empty when ECR does not report it.
	Status string
	// LastPulledAt is ECR's lastRecordedPullTime, which lifecycle rules with
	// countType sinceImagePulled read. ECR refreshes it at least once every
	// 24 hours, so for an image pulled more often it can be up to a day
	// behind. Zero when ECR has recorded no pull.
	LastPulledAt time.Time
	// LastArchivedAt is when the image last moved to ECR's archive tier:
	// where countType sinceImageTransitioned counts from. Zero if never.
	LastArchivedAt time.Time
	// LastActivatedAt is when the image was last restored from the archive
	// tier to ACTIVE. Zero if never.
	LastActivatedAt time.Time
}

// maxImageIDs is DescribeImages' limit on imageIds per call.
const maxImageIDs = 100

// imageAnswer is what is cached per ImageID: a detail or a known absence.
type imageAnswer struct {
	detail  ImageDetail
	missing bool
}

// DescribeImages looks up images of one repository: found holds the images
// that exist, missing the ids that do not; each distinct id appears once,
// in one of them. The ids not in the cache are
// asked for in one DescribeImages call (per 100 ids). A repository that does
// not exist gives an error wrapping ErrRepositoryNotFound.
//
// ECR fails the whole DescribeImages call with ImageNotFoundException if any
// one id is missing, so a batch that fails so is asked again id by id to
// learn which ones are missing. Images found by tag are also cached under
// their digest.
//
// Images in every status are found: an archived image (ECR's archive tier,
// e.g. moved there by a lifecycle rule) is in found with Status "ARCHIVED",
// or "ACTIVATING" while it is being restored, not in missing. Its answer is
// cached like any other, for TTLs.ImageByTag or TTLs.ImageByDigest: a
// restore is a deliberate, minutes-long operation like a push, and a caller
// that refuses an image for its status should first take a WithFresh second
// look, as the engine does before any rejection, which sees a restore at once.
func (l *Lookups) DescribeImages(ctx context.Context, r Repository, ids []ImageID) (found []ImageDetail, missing []ImageID, err error) {
	what := fmt.Sprintf("describing images in %s", r.Name)
	if _, ok := l.peek(ctx, KindImage, repoMissingKey(r)); ok {
		return nil, nil, &LookupError{What: what, Class: ClassNotFound, Err: ErrRepositoryNotFound}
	}
	var todo []ImageID
	for _, id := range dedupe(ids) {
		v, ok := l.get(ctx, KindImage, imageKey(r, id))
		switch {
		case !ok:
			todo = append(todo, id)
		case v.(imageAnswer).missing:
			missing = append(missing, id)
		default:
			found = append(found, v.(imageAnswer).detail)
		}
	}
	for chunk := range slices.Chunk(todo, maxImageIDs) {
		answers, err := shared(ctx, l, KindImage, batchKey(r, chunk), what,
			func(ctx context.Context) (map[ImageID]imageAnswer, error) {
				return l.describeImages(ctx, what, r, chunk)
			})
		if err != nil {
			return nil, nil, err
		}
		for _, id := range chunk {
			if a := answers[id]; a.missing {
				missing = append(missing, id)
			} else {
				found = append(found, a.detail)
			}
		}
	}
	return found, missing, nil
}

// describeImages asks ECR about the ids whose answers are not (or no
// longer) cached, and caches each answer. The re-check makes callers that
// join after a flight has ended reuse its answers instead of calling again.
func (l *Lookups) describeImages(ctx context.Context, what string, r Repository, ids []ImageID) (map[ImageID]imageAnswer, error) {
	if _, ok := l.peek(ctx, KindImage, repoMissingKey(r)); ok {
		return nil, &LookupError{What: what, Class: ClassNotFound, Err: ErrRepositoryNotFound}
	}
	known := map[ImageID]imageAnswer{}
	var ask []ImageID
	for _, id := range ids {
		if v, ok := l.peek(ctx, KindImage, imageKey(r, id)); ok {
			known[id] = v.(imageAnswer)
		} else {
			ask = append(ask, id)
		}
	}
	if len(ask) == 0 {
		return known, nil
	}
	answers, err := l.askImages(ctx, what, r, ask)
	if err != nil {
		return nil, err
	}
	for id, a := range known {
		answers[id] = a
	}
	return answers, nil
}

// askImages calls DescribeImages for ids and caches each answer.
func (l *Lookups) askImages(ctx context.Context, what string, r Repository, ids []ImageID) (map[ImageID]imageAnswer, error) {
	client, err := l.clients.ECR(r.Region, r.Account)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	answers, err := l.describeBatch(ctx, client, what, r, ids)
	var notFound *ecrtypes.ImageNotFoundException
	if errors.As(err, &notFound) && len(ids) > 1 {
		answers, err = map[ImageID]imageAnswer{}, nil
		for _, id := range ids {
			one, oneErr := l.describeBatch(ctx, client, what, r, []ImageID{id})
			if errors.As(oneErr, &notFound) {
				one, oneErr = map[ImageID]imageAnswer{id: {missing: true}}, nil
			}
			if oneErr != nil {
				return nil, l.imagesError(what, r, oneErr)
			}
			answers[id] = one[id]
		}
	} else if errors.As(err, &notFound) {
		answers, err = map[ImageID]imageAnswer{ids[0]: {missing: true}}, nil
	}
	if err != nil {
		return nil, l.imagesError(what, r, err)
	}
	for id, a := range answers {
		if a.missing {
			l.put(imageKey(r, id), a, l.opts.TTL.NotFound)
			continue
		}
		ttl := l.opts.TTL.ImageByTag
		if id.Digest != "" {
			ttl = l.opts.TTL.ImageByDigest
		}
		l.put(imageKey(r, id), a, ttl)
		if id.Digest == "" && a.detail.Digest != "" {
			byDigest := ImageID{Digest: a.detail.Digest}
			d := a.detail
			d.ID = byDigest
			l.put(imageKey(r, byDigest), imageAnswer{detail: d}, l.opts.TTL.ImageByDigest)
		}
	}
	return answers, nil
}

// imagesError turns a failed DescribeImages into the error to return,
// remembering a missing repository.
func (l *Lookups) imagesError(what string, r Repository, err error) error {
	var repoNF *ecrtypes.RepositoryNotFoundException
	if errors.As(err, &repoNF) {
		l.put(repoMissingKey(r), true, l.opts.TTL.NotFound)
		return &LookupError{What: what, Action: "ecr:DescribeImages", Class: ClassNotFound, Err: fmt.Errorf("%w: %w", ErrRepositoryNotFound, err)}
	}
	return lookupError(what, "ecr:DescribeImages", err)
}

// anyStatus is the filter every DescribeImages call sends. Without it ECR
// answers for ACTIVE images only, so an image a lifecycle rule moved to the
// archive tier would read as missing (ImageNotFoundException) instead of as
// present but unpullable until restored: a different finding with a
// different fix.
func anyStatus() *ecrtypes.DescribeImagesFilter {
	return &ecrtypes.DescribeImagesFilter{ImageStatus: ecrtypes.ImageStatusFilterAny}
}

// describeBatch makes one DescribeImages call and matches its answer to ids.
// An id that ECR returns nothing for is reported missing.
func (l *Lookups) describeBatch(ctx context.Context, client ECRAPI, what string, r Repository, ids []ImageID) (map[ImageID]imageAnswer, error) {
	in := &ecr.DescribeImagesInput{RepositoryName: aws.String(r.Name), RegistryId: aws.String(r.Account), Filter: anyStatus()}
	for _, id := range ids {
		var eid ecrtypes.ImageIdentifier
		if id.Tag != "" {
			eid.ImageTag = aws.String(id.Tag)
		}
		if id.Digest != "" {
			eid.ImageDigest = aws.String(id.Digest)
		}
		in.ImageIds = append(in.ImageIds, eid)
	}
	out, err := call(ctx, l, "DescribeImages", func(ctx context.Context) (*ecr.DescribeImagesOutput, error) {
		return client.DescribeImages(ctx, in)
	})
	if err != nil {
		return nil, err
	}
	answers := make(map[ImageID]imageAnswer, len(ids))
	for _, id := range ids {
		answers[id] = imageAnswer{missing: true}
		for _, d := range out.ImageDetails {
			if matches(id, d) {
				answers[id] = imageAnswer{detail: toDetail(id, d)}
				break
			}
		}
	}
	return answers, nil
}

func matches(id ImageID, d ecrtypes.ImageDetail) bool {
	if id.Digest != "" && aws.ToString(d.ImageDigest) != id.Digest {
		return false
	}
	return id.Tag == "" || slices.Contains(d.ImageTags, id.Tag)
}

func toDetail(id ImageID, d ecrtypes.ImageDetail) ImageDetail {
	return ImageDetail{
		ID:                id,
		Digest:            aws.ToString(d.ImageDigest),
		Tags:              slices.Clone(d.ImageTags),
		ManifestMediaType: aws.ToString(d.ImageManifestMediaType),
		PushedAt:          aws.ToTime(d.ImagePushedAt),
		Status:            string(d.ImageStatus),
		LastPulledAt:      aws.ToTime(d.LastRecordedPullTime),
		LastArchivedAt:    aws.ToTime(d.LastArchivedAt),
		LastActivatedAt:   aws.ToTime(d.LastActivatedAt),
	}
}

func dedupe(ids []ImageID) []ImageID {
	var out []ImageID
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// Cache keys are "kind|field|field...". Fields never contain "|": regions,
// account IDs, repository names, tags and digests exclude it.
func key(parts ...string) string { return strings.Join(parts, "|") }

func imageKey(r Repository, id ImageID) string {
	return key("image", r.Region, r.Account, r.Name, id.Tag, id.Digest)
}

func repoMissingKey(r Repository) string {
	return key("repomissing", r.Region, r.Account, r.Name)
}

func batchKey(r Repository, ids []ImageID) string {
	parts := []string{"batch", r.Region, r.Account, r.Name}
	for _, id := range ids {
		parts = append(parts, id.Tag+"@"+id.Digest)
	}
	return key(parts...)
}
