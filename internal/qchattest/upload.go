package qchattest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/qchat/qchat/pqcrypto"
)

// SealDocument seals file bytes as a document (kind doc) for recipients and
// returns the uploadDocument input without its file, and the ciphertext to
// upload as the file part.
func SealDocument(t testing.TB, id string, sender *User, roomID, recipientID, name, mime string, data []byte, recipients ...*User) (map[string]any, []byte) {
	t.Helper()
	h := pqcrypto.SignedHeader{Kind: pqcrypto.KindDocument, ObjectID: id, SenderID: sender.ID, ConversationID: roomID + recipientID, Name: name, MimeType: mime}
	w, sig := seal(t, sender, h, data, recipients)
	ct, err := pqcrypto.DecodeB64(w.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"id": id, "name": name, "mimeType": mime, "nonce": w.Nonce, "keys": wireKeys(w), "file": nil}
	if sig != "" {
		in["signature"] = sig
	}
	if roomID != "" {
		in["roomId"] = roomID
	} else {
		in["recipientId"] = recipientID
	}
	return in, ct
}

// Upload sends a GraphQL multipart request (the multipart request spec) whose
// variable $in.file is the given bytes.
func (s *Server) Upload(t testing.TB, token, query string, in map[string]any, file []byte) *Response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	ops, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"in": in}})
	_ = mw.WriteField("operations", string(ops))
	_ = mw.WriteField("map", `{"0": ["variables.in.file"]}`)
	fw, _ := mw.CreateFormFile("0", "blob.bin")
	_, _ = fw.Write(file)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &Response{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("upload response is not JSON (status %d): %s", resp.StatusCode, raw)
	}
	return out
}

// Download fetches path (e.g. /documents/ID) with a bearer token.
func (s *Server) Download(t testing.TB, token, path string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}
