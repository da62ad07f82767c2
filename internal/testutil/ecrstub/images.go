package ecrstub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// imageKey names an image whose status was set: repository and digest,
// in every registry.
type imageKey struct{ repo, digest string }

// SetImageStatus makes DescribeImages report repo's image with digest (as
// moto assigned it on push) in status: ecrtypes.ImageStatusArchived or
// ImageStatusActivating, or ImageStatusActive (every image's status until
// set) to restore it. It applies to repo in every account.
func (s *Stub) SetImageStatus(repo, digest string, status ecrtypes.ImageStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := imageKey{repo, digest}
	if status == ecrtypes.ImageStatusActive || status == "" {
		delete(s.statuses, k)
		return
	}
	s.statuses[k] = status
}

// statusOf returns the status of repo's image with digest.
func (s *Stub) statusOf(repo, digest string) ecrtypes.ImageStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.statuses[imageKey{repo, digest}]; ok {
		return st
	}
	return ecrtypes.ImageStatusActive
}

// describeImagesKey carries a DescribeImages request's input from
// describeImages to modifyResponse, through the forwarded request's context.
type describeImagesKey struct{}

// describeImagesInput is the part of a DescribeImages request the stub
// reads.
type describeImagesInput struct {
	ImageIDs []imageID `json:"imageIds"`
	Filter   *struct {
		ImageStatus string `json:"imageStatus"`
	} `json:"filter"`
}

// imageID is an entry of a request's imageIds.
type imageID struct {
	Tag    string `json:"imageTag"`
	Digest string `json:"imageDigest"`
}

// wants reports whether the request's answer includes images in status:
// without an imageStatus filter ECR answers for ACTIVE images only.
func (in *describeImagesInput) wants(status ecrtypes.ImageStatus) bool {
	want := string(ecrtypes.ImageStatusFilterActive)
	if in.Filter != nil && in.Filter.ImageStatus != "" {
		want = in.Filter.ImageStatus
	}
	return want == string(ecrtypes.ImageStatusFilterAny) || want == string(status)
}

// imageFields are the fields of an answer's imageDetails entry the stub
// reads.
type imageFields struct {
	RegistryID string   `json:"registryId"`
	Repository string   `json:"repositoryName"`
	Digest     string   `json:"imageDigest"`
	Tags       []string `json:"imageTags"`
}

// matches reports whether the image is the one id names, as ECR (and
// moto) match: by tag, digest, or both.
func (f imageFields) matches(id imageID) bool {
	return (id.Tag == "" || slices.Contains(f.Tags, id.Tag)) && (id.Digest == "" || id.Digest == f.Digest)
}

// describeImages forwards the request to moto, with its input for
// rewriteImages.
func (s *Stub) describeImages(w http.ResponseWriter, r *http.Request, body []byte) {
	in := &describeImagesInput{}
	if !decode(w, body, in) {
		return
	}
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), describeImagesKey{}, in)))
}

// rewriteImages gives moto's successful DescribeImages answer the statuses
// set and ECR's filtering by status. When the request named an image that
// the filtering hides, the answer becomes ECR's ImageNotFoundException.
func (s *Stub) rewriteImages(resp *http.Response, in *describeImagesInput) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return fmt.Errorf("cannot rewrite a DescribeImages answer with Content-Encoding %s", enc)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading moto's DescribeImages answer: %w", err)
	}
	out, notFound, err := s.filterImages(body, in)
	if err != nil {
		return err
	}
	if notFound != "" {
		out, _ = json.Marshal(map[string]string{"__type": "ImageNotFoundException", "message": notFound})
		resp.StatusCode, resp.Status = http.StatusBadRequest, "400 Bad Request"
		resp.Header.Set("X-Amzn-Errortype", "ImageNotFoundException")
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// filterImages rewrites a DescribeImages answer body: every image gets its
// imageStatus, and those the request does not want are left out. notFound
// is the message of ECR's ImageNotFoundException when a left-out image was
// named in the request's imageIds. Fields the stub does not read pass
// through unchanged.
func (s *Stub) filterImages(body []byte, in *describeImagesInput) (out []byte, notFound string, err error) {
	var answer map[string]json.RawMessage
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, "", fmt.Errorf("parsing moto's DescribeImages answer: %w", err)
	}
	var details []map[string]json.RawMessage
	if raw, ok := answer["imageDetails"]; ok {
		if err := json.Unmarshal(raw, &details); err != nil {
			return nil, "", fmt.Errorf("parsing moto's imageDetails: %w", err)
		}
	}
	kept := []map[string]json.RawMessage{}
	var keptFields, hidden []imageFields
	for _, d := range details {
		f, status, err := s.withStatus(d)
		if err != nil {
			return nil, "", err
		}
		if in.wants(status) {
			kept, keptFields = append(kept, d), append(keptFields, f)
		} else {
			hidden = append(hidden, f)
		}
	}
	if msg := hiddenNamed(in.ImageIDs, keptFields, hidden); msg != "" {
		return nil, msg, nil
	}
	answer["imageDetails"], err = json.Marshal(kept)
	if err != nil {
		return nil, "", fmt.Errorf("encoding imageDetails: %w", err)
	}
	out, err = json.Marshal(answer)
	if err != nil {
		return nil, "", fmt.Errorf("encoding the DescribeImages answer: %w", err)
	}
	return out, "", nil
}

// withStatus sets the imageStatus of the answer's entry d and returns the
// entry's fields and status.
func (s *Stub) withStatus(d map[string]json.RawMessage) (imageFields, ecrtypes.ImageStatus, error) {
	var f imageFields
	raw, err := json.Marshal(d)
	if err == nil {
		err = json.Unmarshal(raw, &f)
	}
	if err != nil {
		return f, "", fmt.Errorf("reading an entry of moto's imageDetails: %w", err)
	}
	status := s.statusOf(f.Repository, f.Digest)
	d["imageStatus"], _ = json.Marshal(status) // a string always encodes
	return f, status, nil
}

// hiddenNamed returns ImageNotFoundException's message, worded as moto
// words it, for the first id that names a hidden image and no kept one;
// "" when there is none.
func hiddenNamed(ids []imageID, kept, hidden []imageFields) string {
	for _, id := range ids {
		if slices.ContainsFunc(kept, func(f imageFields) bool { return f.matches(id) }) {
			continue
		}
		i := slices.IndexFunc(hidden, func(f imageFields) bool { return f.matches(id) })
		if i < 0 {
			continue
		}
		return fmt.Sprintf("The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
			orNull(id.Digest), orNull(id.Tag), hidden[i].Repository, hidden[i].RegistryID)
	}
	return ""
}

// orNull is how moto's messages show an id field that was not given.
func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}
