package awsclient_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/ecrstub"
	"github.com/ecr-preflight/ecr-preflight/internal/testutil/moto"
)

const (
	ociIndex = "application/vnd.oci.image.index.v1+json"
	// indexBody is an OCI index of one linux/arm64 image and BuildKit's
	// attestation for it.
	indexBody = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2,` +
		`"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":2,` +
		`"platform":{"architecture":"unknown","os":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]}`
	configBody = `{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":[]}}`
)

// sha256Of is the digest of body.
func sha256Of(body string) string {
	sum := sha256.Sum256([]byte(body))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// blobServer serves body at /blob on loopback (with status, when not 200)
// and returns the URL GetDownloadUrlForLayer should answer, with a
// signature in its query as a presigned URL has.
func blobServer(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/blob" || r.URL.Query().Get("X-Amz-Signature") != "s3cr3t" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if status != 0 {
			w.WriteHeader(status)
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/blob?X-Amz-Signature=s3cr3t"
}

func TestImageManifest(t *testing.T) {
	tests := map[string]struct {
		repo      string
		digest    string
		failure   error
		wantType  string
		wantBody  string
		wantClass awsclient.Class
		wantCause string
	}{
		"an index comes back as stored, with its media type": {
			repo: "team/app", digest: digestA, wantType: ociIndex, wantBody: indexBody, wantClass: awsclient.ClassOK,
		},
		"an image ECR does not hold is a definite absence": {
			repo: "team/app", digest: digestC, wantClass: awsclient.ClassNotFound, wantCause: "ImageNotFoundException",
		},
		"a missing repository is ErrRepositoryNotFound": {
			repo: "ghost", digest: digestA, wantClass: awsclient.ClassNotFound, wantCause: "repository not found",
		},
		"our credentials lacking ecr:BatchGetImage": {
			repo: "team/app", digest: digestA, failure: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"},
			wantClass: awsclient.ClassAccessDenied, wantCause: "AccessDeniedException",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv()
			e.ecr.Repositories["team/app"].Manifests = map[string]fake.Manifest{digestA: {MediaType: ociIndex, Body: indexBody}}
			e.ecr.SetErr("BatchGetImage", tc.failure)
			repo := teamApp
			repo.Name = tc.repo

			mediaType, body, err := e.l.ImageManifest(context.Background(), repo, tc.digest)
			if got := awsclient.ClassOf(err); got != tc.wantClass {
				t.Fatalf("err = %v (class %s), want class %s", err, got, tc.wantClass)
			}
			if err != nil {
				if got := awsclient.CauseOf(err); got != tc.wantCause {
					t.Errorf("cause %q, want %q", got, tc.wantCause)
				}
				if tc.wantCause == "repository not found" && !errors.Is(err, awsclient.ErrRepositoryNotFound) {
					t.Errorf("err = %v, want ErrRepositoryNotFound", err)
				}
				return
			}
			if mediaType != tc.wantType || string(body) != tc.wantBody {
				t.Errorf("got %q %q, want %q %q", mediaType, body, tc.wantType, tc.wantBody)
			}
			in := e.ecr.BatchGetImageInputs[0]
			if !slices.Equal(in.AcceptedMediaTypes, awsclient.AcceptedManifestTypes()) || aws.ToString(in.ImageIds[0].ImageDigest) != tc.digest ||
				aws.ToString(in.RegistryId) != registry {
				t.Errorf("BatchGetImage input %+v, want the digest in registry %s with every accepted type", in, registry)
			}
			if e.obs.calls["BatchGetImage ok"] != 1 {
				t.Errorf("observed calls %v, want one BatchGetImage ok", e.obs.calls)
			}
		})
	}
}

// failingECR answers BatchGetImage with one failures entry.
type failingECR struct {
	*fake.ECR
	code ecrtypes.ImageFailureCode
}

func (f failingECR) BatchGetImage(context.Context, *ecr.BatchGetImageInput, ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error) {
	return &ecr.BatchGetImageOutput{Failures: []ecrtypes.ImageFailure{{FailureCode: f.code, FailureReason: aws.String("reason")}}}, nil
}

func TestImageManifestClassifiesECRsFailures(t *testing.T) {
	tests := map[string]struct {
		code      ecrtypes.ImageFailureCode
		wantClass awsclient.Class
	}{
		"ImageNotFound is a definite absence":             {code: ecrtypes.ImageFailureCodeImageNotFound, wantClass: awsclient.ClassNotFound},
		"an upstream registry's rate limit is throttling": {code: ecrtypes.ImageFailureCodeUpstreamTooManyRequests, wantClass: awsclient.ClassThrottled},
		"an upstream registry down is unavailable":        {code: ecrtypes.ImageFailureCodeUpstreamUnavailable, wantClass: awsclient.ClassUnavailable},
		"a KMS failure is another error":                  {code: ecrtypes.ImageFailureCodeKmsError, wantClass: awsclient.ClassOther},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := awsclient.NewLookups(&fake.Clients{ECRClient: failingECR{ECR: &fake.ECR{}, code: tc.code}}, awsclient.Options{})
			_, _, err := l.ImageManifest(context.Background(), teamApp, digestA)
			if got := awsclient.ClassOf(err); got != tc.wantClass {
				t.Errorf("err = %v (class %s), want class %s", err, got, tc.wantClass)
			}
			if tc.code != ecrtypes.ImageFailureCodeImageNotFound && awsclient.CauseOf(err) != string(tc.code) {
				t.Errorf("cause %q, want the failure code %s", awsclient.CauseOf(err), tc.code)
			}
		})
	}
}

func TestImageBlob(t *testing.T) {
	digest := sha256Of(configBody)
	tests := map[string]struct {
		// url is the download URL ECR answers; "" answers none (the layer is not there).
		url       func(t *testing.T) string
		repo      string
		digest    string
		maxBytes  int64
		wantClass awsclient.Class
		wantCause string
	}{
		"a config is read and checked against its digest": {
			url: func(t *testing.T) string { return blobServer(t, 0, configBody) }, wantClass: awsclient.ClassOK,
		},
		"content that does not match the digest is refused": {
			url: func(t *testing.T) string { return blobServer(t, 0, configBody+" ") }, wantClass: awsclient.ClassOther,
		},
		"a blob longer than allowed is refused": {
			url: func(t *testing.T) string { return blobServer(t, 0, configBody) }, maxBytes: 10, wantClass: awsclient.ClassOther,
		},
		"an HTTP 403 from the bucket is access denied": {
			url: func(t *testing.T) string { return blobServer(t, http.StatusForbidden, "") }, wantClass: awsclient.ClassAccessDenied, wantCause: "HTTP 403",
		},
		"an HTTP 503 from the bucket is unavailable": {
			url: func(t *testing.T) string { return blobServer(t, http.StatusServiceUnavailable, "") }, wantClass: awsclient.ClassUnavailable, wantCause: "HTTP 503",
		},
		"a layer ECR does not hold is a definite absence": {
			url: func(*testing.T) string { return "" }, wantClass: awsclient.ClassNotFound, wantCause: "LayersNotFoundException",
		},
		"a missing repository is ErrRepositoryNotFound": {
			url: func(*testing.T) string { return "" }, repo: "ghost", wantClass: awsclient.ClassNotFound, wantCause: "repository not found",
		},
		"a digest that is not one is refused before any call": {
			url: func(*testing.T) string { return "" }, digest: "sha256:nope", wantClass: awsclient.ClassOther,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv()
			if u := tc.url(t); u != "" {
				e.ecr.Repositories["team/app"].LayerURLs = map[string]string{digest: u}
			}
			repo, d, maxBytes := teamApp, digest, int64(1<<20)
			if tc.repo != "" {
				repo.Name = tc.repo
			}
			if tc.digest != "" {
				d = tc.digest
			}
			if tc.maxBytes != 0 {
				maxBytes = tc.maxBytes
			}

			body, err := e.l.ImageBlob(context.Background(), repo, d, maxBytes)
			if got := awsclient.ClassOf(err); got != tc.wantClass {
				t.Fatalf("err = %v (class %s), want class %s", err, got, tc.wantClass)
			}
			if err == nil {
				if string(body) != configBody {
					t.Errorf("body %q, want %q", body, configBody)
				}
				if e.obs.calls["GetDownloadUrlForLayer ok"] != 1 || e.obs.calls[awsclient.OperationLayerDownload+" ok"] != 1 {
					t.Errorf("observed calls %v, want one GetDownloadUrlForLayer and one LayerDownload", e.obs.calls)
				}
				return
			}
			if tc.wantCause != "" && awsclient.CauseOf(err) != tc.wantCause {
				t.Errorf("cause %q, want %q", awsclient.CauseOf(err), tc.wantCause)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the URL's signature: %v", err)
			}
			if tc.digest != "" && e.ecr.TotalCalls() != 0 {
				t.Errorf("%d calls for a malformed digest, want none", e.ecr.TotalCalls())
			}
		})
	}
}

func TestImageBlobRefusesAnOverlongBodyOfUnknownLength(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// Flushing first sends the body chunked, without a Content-Length.
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte(strings.Repeat("x", 100)))
	}))
	defer srv.Close()
	e := newEnv()
	digest := sha256Of(strings.Repeat("x", 100))
	e.ecr.Repositories["team/app"].LayerURLs = map[string]string{digest: srv.URL}
	if _, err := e.l.ImageBlob(context.Background(), teamApp, digest, 99); err == nil || !strings.Contains(err.Error(), "more than the 99 bytes") {
		t.Errorf("err = %v, want the 99-byte limit", err)
	}
	if body, err := e.l.ImageBlob(context.Background(), teamApp, digest, 100); err != nil || len(body) != 100 {
		t.Errorf("with room for it: %d bytes, err %v", len(body), err)
	}
}

func TestImageBlobGivesUpAtTheCallTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()
	f := &fake.ECR{Repositories: map[string]*fake.Repository{"team/app": {LayerURLs: map[string]string{digestA: srv.URL}}}}
	l := awsclient.NewLookups(&fake.Clients{ECRClient: f}, awsclient.Options{CallTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := l.ImageBlob(context.Background(), teamApp, digestA, 1<<20)
	if awsclient.ClassOf(err) != awsclient.ClassTimeout {
		t.Errorf("err = %v (class %s), want a timeout", err, awsclient.ClassOf(err))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s, want about the 100ms call timeout", d)
	}
}

// TestManifestsAgainstMotoAndTheECRStub reads an OCI index that moto
// stores (put_image with imageManifestMediaType) and a config blob that the
// stub serves, as moto implements no layer URLs.
func TestManifestsAgainstMotoAndTheECRStub(t *testing.T) {
	stub := ecrstub.Start(t, moto.Start(t))
	ctx := moto.Context(t)
	cfg := stub.Config()
	cfg.Retryer, cfg.RetryMaxAttempts = awsclient.NewRetryer(awsclient.RetryOptions{}), 0
	factory, err := awsclient.NewFactory(cfg, awsclient.FactoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := awsclient.NewLookups(factory, awsclient.Options{CallTimeout: motoCallTimeout})
	repo := awsclient.Repository{Registry: awsclient.Registry{Region: moto.Region, Account: moto.DefaultAccount}, Name: "team/multi"}

	ecrc := ecr.NewFromConfig(cfg)
	if _, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo.Name)}); err != nil {
		t.Fatal(err)
	}
	put, err := ecrc.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName: aws.String(repo.Name), ImageTag: aws.String("v1"), ImageManifest: aws.String(indexBody),
		ImageManifestMediaType: aws.String(ociIndex),
	})
	if err != nil {
		t.Fatal(err)
	}
	digest := aws.ToString(put.Image.ImageId.ImageDigest) // moto's digest: never computed here

	t.Run("the index comes back with its media type", func(t *testing.T) {
		mediaType, body, err := l.ImageManifest(ctx, repo, digest)
		if err != nil {
			t.Fatal(err)
		}
		if mediaType != ociIndex || string(body) != indexBody {
			t.Errorf("got %q %q, want the OCI index as put", mediaType, body)
		}
	})
	t.Run("an absent image and repository are definite absences", func(t *testing.T) {
		_, _, err := l.ImageManifest(ctx, repo, digestD)
		if awsclient.ClassOf(err) != awsclient.ClassNotFound || errors.Is(err, awsclient.ErrRepositoryNotFound) {
			t.Errorf("absent image: err = %v, want a missing image", err)
		}
		ghost := repo
		ghost.Name = "team/ghost"
		if _, _, err := l.ImageManifest(ctx, ghost, digest); !errors.Is(err, awsclient.ErrRepositoryNotFound) {
			t.Errorf("absent repository: err = %v, want ErrRepositoryNotFound", err)
		}
	})

	config := sha256Of(configBody)
	stub.PutBlob(repo.Name, config, []byte(configBody))
	wrong := sha256Of("another config")
	stub.PutBlob(repo.Name, wrong, []byte(configBody))
	t.Run("blobs are read through the stub's download URL", func(t *testing.T) {
		tests := map[string]struct {
			digest    string
			failure   *ecrstub.Failure
			wantClass awsclient.Class
			wantGETs  int
		}{
			"a config blob":               {digest: config, wantClass: awsclient.ClassOK, wantGETs: 1},
			"content that does not match": {digest: wrong, wantClass: awsclient.ClassOther, wantGETs: 1},
			"a blob ECR does not hold":    {digest: digestD, wantClass: awsclient.ClassNotFound},
			"the bucket refusing the URL": {digest: config, failure: &ecrstub.Failure{Status: http.StatusForbidden}, wantClass: awsclient.ClassAccessDenied, wantGETs: 1},
			"the bucket failing":          {digest: config, failure: &ecrstub.Failure{Status: http.StatusInternalServerError}, wantClass: awsclient.ClassUnavailable, wantGETs: 1},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				if tc.failure != nil {
					stub.Fail(ecrstub.LayerDownload, *tc.failure)
					defer stub.Clear(ecrstub.LayerDownload)
				}
				before := stub.Calls(ecrstub.LayerDownload)
				body, err := l.ImageBlob(ctx, repo, tc.digest, 1<<20)
				if got := awsclient.ClassOf(err); got != tc.wantClass {
					t.Fatalf("err = %v (class %s), want class %s", err, got, tc.wantClass)
				}
				if err == nil && string(body) != configBody {
					t.Errorf("body %q, want %q", body, configBody)
				}
				if got := stub.Calls(ecrstub.LayerDownload) - before; got != tc.wantGETs {
					t.Errorf("%d GETs of the download URL, want %d", got, tc.wantGETs)
				}
			})
		}
	})
	t.Run("a URL the stub did not give is refused", func(t *testing.T) {
		resp, err := http.Get(stub.URL + "/_ecrstub/layers/" + strconv.Itoa(42) + "?X-Amz-Signature=42")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("HTTP %d, want 403", resp.StatusCode)
		}
	})
}
