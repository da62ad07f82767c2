package ecrstub

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// LayerDownload names the GETs of the download URLs the stub gives, for
// Calls and Fail as if it were an ECR operation: Fail(LayerDownload,
// Failure{Status: http.StatusForbidden}) makes them fail as S3 would.
const LayerDownload = "LayerDownload"

// layersPath starts the path of every download URL the stub gives. moto
// serves nothing under it.
const layersPath = "/_ecrstub/layers/"

// blob is a layer or config put on the stub, with the secret its download
// URL carries, as a presigned S3 URL carries its signature.
type blob struct {
	body  []byte
	token string
}

// PutBlob makes GetDownloadUrlForLayer answer, for repo's layer (or
// config) digest in every account, a URL on the stub's own loopback
// listener that serves body. moto implements neither the operation nor
// layer storage. digest is taken as given, not computed from body, so that
// a test can serve content that does not match it. A digest never put is
// answered with LayersNotFoundException, in any repository.
func (s *Stub) PutBlob(repo, digest string, body []byte) {
	token := make([]byte, 16)
	_, _ = rand.Read(token) // never fails (crypto/rand)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[imageKey{repo, digest}] = blob{body: append([]byte(nil), body...), token: hex.EncodeToString(token)}
}

// getDownloadURL answers GetDownloadUrlForLayer for the blobs put.
func (s *Stub) getDownloadURL(w http.ResponseWriter, body []byte) {
	var in struct {
		Repository string `json:"repositoryName"`
		Digest     string `json:"layerDigest"`
	}
	if !decode(w, body, &in) {
		return
	}
	s.mu.Lock()
	b, ok := s.blobs[imageKey{in.Repository, in.Digest}]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "LayersNotFoundException",
			fmt.Sprintf("The layer with digest '%s' does not exist in the repository with name '%s'", in.Digest, in.Repository))
		return
	}
	writeJSON(w, map[string]string{
		"downloadUrl": s.URL + layersPath + b.token + "?X-Amz-Signature=" + b.token,
		"layerDigest": in.Digest,
	})
}

// serveLayer answers a GET of a download URL with the blob, or HTTP 403
// (S3's answer to a URL whose signature does not check) when the URL is
// not one the stub gave.
func (s *Stub) serveLayer(w http.ResponseWriter, r *http.Request) {
	if f, failed := s.begin(LayerDownload); failed {
		writeError(w, f.Status, f.Code, f.Message)
		return
	}
	token := strings.TrimPrefix(r.URL.Path, layersPath)
	var body []byte
	found := false
	s.mu.Lock()
	for _, b := range s.blobs {
		if b.token == token && r.URL.Query().Get("X-Amz-Signature") == token {
			body, found = b.body, true
			break
		}
	}
	s.mu.Unlock()
	switch {
	case r.Method != http.MethodGet:
		w.WriteHeader(http.StatusMethodNotAllowed)
	case !found:
		w.WriteHeader(http.StatusForbidden)
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}
}
