package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/qchat/qchat/pqcrypto"
)

// MaxDocumentSize is the server's limit on a stored document (its
// ciphertext: the file plus the 16-byte GCM tag).
const MaxDocumentSize = 10 << 20

// SealOverhead is what sealing adds to a file: the AES-GCM tag. A
// document's Size is the sealed size; FileSize gives the file's own.
const SealOverhead = 16

// MaxFileSize is the largest file that can be uploaded.
const MaxFileSize = MaxDocumentSize - SealOverhead

// FileSize is the size of the file a document holds, from its stored
// (sealed) size.
func FileSize(sealedSize int) int { return max(sealedSize-SealOverhead, 0) }

// AcceptedTypes are the MIME types the server stores, with the names people
// know them by, in the server's order.
var AcceptedTypes = []struct{ MimeType, Name string }{
	{"image/jpeg", "JPEG"},
	{"image/png", "PNG"},
	{"image/gif", "GIF"},
	{"image/webp", "WebP"},
	{"application/pdf", "PDF"},
	{"application/msword", "Word (.doc)"},
	{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Word (.docx)"},
	{"text/plain", "plain text"},
}

// Accepted reports whether the server stores documents of mimeType.
func Accepted(mimeType string) bool {
	for _, t := range AcceptedTypes {
		if t.MimeType == mimeType {
			return true
		}
	}
	return false
}

// UploadDocument seals data as a document (kind doc) for conv's members and
// uploads it as a GraphQL multipart request. name and mimeType are metadata
// the server sees; the bytes are not.
func (c *Client) UploadDocument(ctx context.Context, conv Conversation, name, mimeType string, data []byte) (*Document, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("upload %s: %d bytes is over the %d-byte limit", name, len(data), MaxFileSize)
	}
	oid := NewID()
	var out *Document
	h := pqcrypto.SignedHeader{Kind: pqcrypto.KindDocument, ObjectID: oid, Name: name, MimeType: mimeType}
	err := c.sealAndSend(ctx, conv, h, data, func(env *pqcrypto.SignedEnvelope) error {

		// A per-call transport carries the file part: genqlient's request
		// has only JSON variables, where the Upload placeholder is null.
		t := &transport{c: c, files: map[string][]byte{"variables.input.file": env.Ciphertext}}
		in := UploadDocumentInput{
			Id: oid, RoomId: conv.roomPtr(), RecipientId: conv.userPtr(),
			Name: name, MimeType: mimeType, Nonce: pqcrypto.EncodeB64(env.Nonce), Keys: wireKeys(env),
		}
		in.SetSignature(pqcrypto.EncodeB64(env.Signature))
		resp, err := uploadDocument(ctx, t, in)
		if err != nil {
			return err
		}
		out = &resp.UploadDocument
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("upload %s to %s: %w", name, conv, err)
	}
	return out, nil
}

// ConversationID is the envelope conversation id a document was sealed under.
func (d *Document) ConversationID() string {
	if d.Room != nil {
		return d.Room.Id
	}
	if d.Recipient != nil {
		return d.Recipient.Id
	}
	return ""
}

// DownloadCiphertext fetches a document's sealed bytes from its downloadUrl.
func (c *Client) DownloadCiphertext(ctx context.Context, d *Document) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(d.DownloadUrl), nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", d.Id, err)
	}
	if tok := c.Token(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", d.Id, err)
	}
	defer resp.Body.Close()
	// One byte over the limit is enough to tell that something is wrong.
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", d.Id, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Errors []wireError `json:"errors"`
		}
		if json.Unmarshal(body, &eb) == nil && len(eb.Errors) > 0 {
			return nil, fmt.Errorf("download %s: %w", d.Id, eb.Errors[0].toError(resp.StatusCode))
		}
		return nil, fmt.Errorf("download %s: %w", d.Id, &Error{Message: "HTTP " + resp.Status, Status: resp.StatusCode})
	}
	return body, nil
}

// OpenDocument decrypts a document's ciphertext with the caller's keyring,
// verifying a version 2 document against senders as OpenMessage does;
// signed reports that it verified (false: version 1, sender not verified).
func OpenDocument(d *Document, ciphertext []byte, kr Keyring, senders []*pqcrypto.IdentityPublicKey) (plaintext []byte, signed bool, err error) {
	h := pqcrypto.SignedHeader{Kind: pqcrypto.KindDocument, ObjectID: d.Id, SenderID: d.Uploader.Id, ConversationID: d.ConversationID(),
		Name: d.Name, MimeType: d.MimeType}
	return kr.open(h, ciphertext, d.Nonce, d.MyKey, signedFields{d.Version, d.Signature, d.KeyDigests}, senders)
}

// DownloadDocument fetches a document's metadata and ciphertext and opens
// it, verifying a version 2 document against its uploader's pinned identity
// key. signed is false for a version 1 document (sender not verified).
func (c *Client) DownloadDocument(ctx context.Context, id string, kr Keyring) (d *Document, plaintext []byte, signed bool, err error) {
	d, err = c.Document(ctx, id)
	if err != nil {
		return nil, nil, false, fmt.Errorf("download %s: %w", id, err)
	}
	ct, err := c.DownloadCiphertext(ctx, d)
	if err != nil {
		return nil, nil, false, err
	}
	var senders []*pqcrypto.IdentityPublicKey
	if d.Version != 1 {
		if senders, err = c.senderKeys(d.Uploader.Id, func() (*User, error) { return c.User(ctx, d.Uploader.Id) }); err != nil {
			return d, nil, false, fmt.Errorf("download %s: %w", id, pqcrypto.ErrCannotOpen)
		}
	}
	pt, signed, err := OpenDocument(d, ct, kr, senders)
	if err != nil {
		return d, nil, false, fmt.Errorf("download %s: %w", id, err)
	}
	return d, pt, signed, nil
}
