package awsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	godigest "github.com/opencontainers/go-digest"
)

// AcceptedManifestTypes returns the manifest media types ImageManifest
// accepts (BatchGetImage's acceptedMediaTypes): OCI image index and
// manifest, and Docker manifest list and image manifest (schema 2). The
// index types are named so that ECR answers an index as stored rather
// than refusing or converting it (its API reference lists only manifest
// types, but ECR stores and serves indexes, and the Docker and containerd
// clients ask for them).
//
// Docker schema 1 (application/vnd.docker.distribution.manifest.v1+json) is
// left out: naming it lets ECR convert a schema 2 manifest down to it, and
// containerd 2 no longer pulls schema 1 images at all.
func AcceptedManifestTypes() []string {
	return []string{
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
	}
}

// OperationLayerDownload is the operation the Observer is told for the GET
// of a layer's download URL, which is not an ECR API call.
const OperationLayerDownload = "LayerDownload"

// ImageManifest returns the manifest (an image manifest, OCI index or
// Docker manifest list) of repo's image with digest, as ECR stores it, with
// its media type (empty when ECR does not say; the body's own mediaType
// field then tells). It asks ECR every time: callers cache by digest, which
// names immutable content.
//
// BatchGetImage is the pull API itself: ECR counts the call as a pull and
// updates the image's lastRecordedPullTime, which lifecycle rules on
// "days since last pull" read. Registering the caller's role as a pull
// time update exclusion (ecr:RegisterPullTimeUpdateExclusion; the
// registry then records no pull time for that principal) keeps the check
// from keeping images alive by looking at them.
//
// The body is not checked against digest: moto does not make digests from
// content, and ECR answers over TLS with what it stored under that digest.
//
// A repository that does not exist gives an error wrapping
// ErrRepositoryNotFound; an image that does not exist, a LookupError of
// ClassNotFound whose cause is an ImageNotFoundException. Other failures ECR
// reports for the image (KmsError, UpstreamUnavailable, ...) are an
// *ImageFailure inside a LookupError.
func (l *Lookups) ImageManifest(ctx context.Context, repo Repository, digest string) (mediaType string, body []byte, err error) {
	what := fmt.Sprintf("getting the manifest %s in %s", digest, repo.Name)
	client, err := l.clients.ECR(repo.Region, repo.Account)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", what, err)
	}
	in := &ecr.BatchGetImageInput{
		RepositoryName:     aws.String(repo.Name),
		RegistryId:         aws.String(repo.Account),
		ImageIds:           []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}},
		AcceptedMediaTypes: AcceptedManifestTypes(),
	}
	out, err := call(ctx, l, "BatchGetImage", func(ctx context.Context) (*ecr.BatchGetImageOutput, error) {
		return client.BatchGetImage(ctx, in)
	})
	if err != nil {
		return "", nil, repositoryError(what, "ecr:BatchGetImage", err)
	}
	for _, img := range out.Images {
		if img.ImageManifest != nil && img.ImageId != nil && aws.ToString(img.ImageId.ImageDigest) == digest {
			return aws.ToString(img.ImageManifestMediaType), []byte(*img.ImageManifest), nil
		}
	}
	if len(out.Failures) > 0 {
		return "", nil, failureError(what, out.Failures[0])
	}
	return "", nil, &LookupError{What: what, Action: "ecr:BatchGetImage", Class: ClassOther,
		Err: errors.New("ECR answered neither the image nor a failure")}
}

// ImageBlob returns the blob (a config or layer) with digest of repo, read
// from the URL GetDownloadUrlForLayer gives (a presigned S3 URL in AWS),
// with the HTTP client of repo's ECR client, so that its proxy and CA
// settings apply; with a fake client, a plain one. It refuses a blob longer
// than maxBytes and one whose content does not match digest. Like
// ImageManifest it caches nothing.
//
// The GET is reported to the Observer as OperationLayerDownload, under
// its own CallTimeout and concurrency slot. Its failures are LookupErrors
// with the action s3:GetObject: with ECR's VPC endpoints the S3 gateway
// endpoint's policy must allow it on the layer bucket (an HTTP 403 is
// ClassAccessDenied). A repository that does not exist gives an error
// wrapping ErrRepositoryNotFound; a blob ECR does not hold, a LookupError
// of ClassNotFound.
func (l *Lookups) ImageBlob(ctx context.Context, repo Repository, digest string, maxBytes int64) ([]byte, error) {
	what := fmt.Sprintf("downloading the blob %s of %s", digest, repo.Name)
	want, err := godigest.Parse(digest)
	if err != nil {
		return nil, &LookupError{What: what, Class: ClassOther, Err: err}
	}
	client, err := l.clients.ECR(repo.Region, repo.Account)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := call(ctx, l, "GetDownloadUrlForLayer", func(ctx context.Context) (*ecr.GetDownloadUrlForLayerOutput, error) {
		return client.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{
			RepositoryName: aws.String(repo.Name), RegistryId: aws.String(repo.Account), LayerDigest: aws.String(digest),
		})
	})
	var noLayer *ecrtypes.LayersNotFoundException
	switch {
	case errors.As(err, &noLayer):
		return nil, &LookupError{What: what, Action: "ecr:GetDownloadUrlForLayer", Class: ClassNotFound, Err: err}
	case err != nil:
		return nil, repositoryError(what, "ecr:GetDownloadUrlForLayer", err)
	}
	body, err := call(ctx, l, OperationLayerDownload, func(ctx context.Context) ([]byte, error) {
		return download(ctx, httpClientOf(client), aws.ToString(out.DownloadUrl), maxBytes)
	})
	if err != nil {
		return nil, lookupError(what, "s3:GetObject", err)
	}
	if got := want.Algorithm().FromBytes(body); got != want {
		return nil, &LookupError{What: what, Class: ClassOther, Err: fmt.Errorf("the blob read has digest %s", got)}
	}
	return body, nil
}

// ImageFailure is an entry of a BatchGetImage answer's failures: ECR
// answered the call but not for the image. It is a smithy.APIError whose
// code is ECR's failure code, so CauseOf shows it.
type ImageFailure struct {
	Code   ecrtypes.ImageFailureCode
	Reason string
}

func (e *ImageFailure) Error() string {
	return fmt.Sprintf("ECR failed for the image: %s: %s", e.Code, e.Reason)
}

// ErrorCode implements smithy.APIError.
func (e *ImageFailure) ErrorCode() string { return string(e.Code) }

// ErrorMessage implements smithy.APIError.
func (e *ImageFailure) ErrorMessage() string { return e.Reason }

// ErrorFault implements smithy.APIError.
func (e *ImageFailure) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }

// failureError turns a failures entry into the error ImageManifest returns.
// ImageNotFound becomes ECR's ImageNotFoundException, which every caller
// already classifies as a definite absence.
func failureError(what string, f ecrtypes.ImageFailure) error {
	err := &LookupError{What: what, Action: "ecr:BatchGetImage", Class: ClassOther}
	switch f.FailureCode {
	case ecrtypes.ImageFailureCodeImageNotFound:
		err.Class, err.Err = ClassNotFound, &ecrtypes.ImageNotFoundException{Message: f.FailureReason}
		return err
	case ecrtypes.ImageFailureCodeUpstreamTooManyRequests:
		err.Class = ClassThrottled
	case ecrtypes.ImageFailureCodeUpstreamUnavailable:
		err.Class = ClassUnavailable
	}
	err.Err = &ImageFailure{Code: f.FailureCode, Reason: aws.ToString(f.FailureReason)}
	return err
}

// repositoryError wraps a failed call about one repository, marking a
// missing repository with ErrRepositoryNotFound.
func repositoryError(what, action string, err error) error {
	var repoNF *ecrtypes.RepositoryNotFoundException
	if errors.As(err, &repoNF) {
		return &LookupError{What: what, Action: action, Class: ClassNotFound, Err: fmt.Errorf("%w: %w", ErrRepositoryNotFound, err)}
	}
	return lookupError(what, action, err)
}

// downloader is the HTTP client an SDK client sends with (ecr.HTTPClient).
type downloader interface {
	Do(*http.Request) (*http.Response, error)
}

// httpClientOf returns the HTTP client of an *ecr.Client, or a plain one
// (the call's deadline bounds it) for other ECRAPI implementations.
func httpClientOf(client ECRAPI) downloader {
	if c, ok := client.(interface{ Options() ecr.Options }); ok && c.Options().HTTPClient != nil {
		return c.Options().HTTPClient
	}
	return &http.Client{}
}

// download GETs rawURL and returns its body, refusing more than maxBytes.
// Errors never carry the URL: a presigned URL's query is a credential.
func download(ctx context.Context, hc downloader, rawURL string, maxBytes int64) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("ECR gave no usable download URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, errors.New("ECR gave no usable download URL")
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("GET from %s: %w", u.Host, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		// A ResponseError is classified by its status, as SDK errors are.
		return nil, &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: resp},
			Err:      fmt.Errorf("GET from %s: HTTP %d", u.Host, resp.StatusCode),
		}
	}
	if resp.ContentLength > maxBytes {
		return nil, fmt.Errorf("the blob has %d bytes, more than the %d allowed", resp.ContentLength, maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading from %s: %w", u.Host, err)
	}
	if int64(len(body)) > maxBytes {
		return nil, fmt.Errorf("the blob has more than the %d bytes allowed", maxBytes)
	}
	return body, nil
}
