package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// BlobStore keeps document ciphertexts. The database implementation
// (db.Blobs) lets every instance serve every file; a filesystem or S3 store can
// implement the same three calls.
type BlobStore interface {
	Put(ctx context.Context, id string, data []byte) error
	Get(ctx context.Context, id string) (io.ReadCloser, int64, error)
	Delete(ctx context.Context, id string) error
}

// MaxDocumentSize is the largest ciphertext a document may have.
const MaxDocumentSize = 10 << 20

// AllowedMimeTypes are the file types QChat accepts, as the product always has.
var allowedMimeTypes = map[string]bool{
	"image/jpeg":         true,
	"image/png":          true,
	"image/gif":          true,
	"image/webp":         true,
	"application/pdf":    true,
	"application/msword": true,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": true,
	"text/plain": true,
}

func checkDocumentName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > 255 {
		return "", models.Invalid("name: 1 to 255 characters of valid UTF-8")
	}
	if strings.ContainsAny(name, `/\`) {
		return "", models.Invalid("name: must not contain path separators")
	}
	if err := checkVisible("name", name); err != nil {
		return "", err
	}
	return name, nil
}

// UploadDocument stores a document sealed for exactly the members of its
// conversation.
func (s *Service) UploadDocument(ctx context.Context, u *models.User, in models.UploadDocumentInput) (*models.Document, error) {
	if err := checkID("id", in.ID); err != nil {
		return nil, err
	}
	if _, err := checkDocumentName(in.Name); err != nil {
		return nil, err
	}
	mime := strings.ToLower(strings.TrimSpace(in.MimeType))
	if !allowedMimeTypes[mime] {
		return nil, models.Invalid("mimeType: %q is not accepted (images, PDF, Word documents and plain text are)", in.MimeType)
	}
	if in.File.Size > MaxDocumentSize {
		return nil, models.Invalid("file: %d bytes is over the %d-byte limit", in.File.Size, MaxDocumentSize)
	}
	conv, want, err := s.conversationOf(ctx, u, in.RoomID, in.RecipientID)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(in.File.File, MaxDocumentSize+1))
	if err != nil {
		return nil, models.Invalid("file: could not be read: %v", err)
	}
	if len(data) > MaxDocumentSize {
		return nil, models.Invalid("file: over the %d-byte limit", MaxDocumentSize)
	}
	env, err := checkEnvelope(data, in.Nonce, in.Keys, want)
	if err != nil {
		return nil, err
	}
	d := &models.Document{
		ID: in.ID, Conversation: conv, RoomID: in.RoomID, UploaderID: u.ID, RecipientID: in.RecipientID,
		// The signature covers the name and MIME type exactly as uploaded,
		// so they are kept so (they passed the checks above in their
		// normalised form).
		Name: in.Name, MimeType: in.MimeType, Size: len(data), NonceBytes: env.Nonce, CreatedAt: models.Now(),
	}
	h := pqcrypto.SignedHeader{Kind: pqcrypto.KindDocument, ObjectID: in.ID, SenderID: u.ID,
		ConversationID: cid(in.RoomID, in.RecipientID), Name: in.Name, MimeType: in.MimeType}
	sig, err := s.verifySignature(ctx, u.ID, h, env, in.Signature)
	if err != nil {
		return nil, err
	}
	d.Version, d.SignatureBytes, d.KeyDigestBytes = 2, sig.signature, sig.digests
	keys := make([]*models.DocumentKey, len(env.Keys))
	for i, k := range env.Keys {
		keys[i] = &models.DocumentKey{DocumentID: d.ID, UserID: k.UserID, KeyID: k.KeyID, KEMBytes: k.KEMCiphertext, WrappedBytes: k.WrappedKey}
	}
	if err := s.store.InsertDocument(ctx, d, keys); err != nil {
		if errors.Is(err, models.ErrConflict) {
			return nil, models.Conflict("document id %s is taken", d.ID)
		}
		return nil, err
	}
	if err := s.blobs.Put(ctx, d.ID, data); err != nil {
		// Undo the metadata so nothing half-written remains.
		if derr := s.store.DeleteDocument(context.WithoutCancel(ctx), d.ID); derr != nil {
			s.log.ErrorContext(ctx, "undo document after blob failure", "document_id", d.ID, "err", derr)
		}
		return nil, fmt.Errorf("store document blob: %w", err)
	}
	d.Keys = keys
	s.log.InfoContext(ctx, "document uploaded", "user_id", u.ID, "document_id", d.ID, "size", d.Size)
	return d, nil
}

// canSeeDocument says whether userID may read document d.
func (s *Service) canSeeDocument(ctx context.Context, d *models.Document, userID string) bool {
	if d.RoomID != nil {
		return s.IsMember(ctx, *d.RoomID, userID)
	}
	return d.UploaderID == userID || (d.RecipientID != nil && *d.RecipientID == userID)
}

// Document loads a document the caller may read; anything else is
// NOT_FOUND.
func (s *Service) Document(ctx context.Context, u *models.User, id string) (*models.Document, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	d, err := s.store.DocumentByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.canSeeDocument(ctx, d, u.ID) {
		return nil, models.NotFound("document")
	}
	return d, nil
}

// DeleteDocument deletes a document; only its uploader may.
func (s *Service) DeleteDocument(ctx context.Context, u *models.User, id string) error {
	d, err := s.Document(ctx, u, id)
	if err != nil {
		return err
	}
	if d.UploaderID != u.ID {
		s.Security(ctx, slog.LevelWarn, "forbidden", "document_id", id, "action", "deleteDocument")
		return models.Forbidden("only the uploader can delete a document")
	}
	if err := s.store.DeleteDocument(ctx, id); err != nil {
		return err
	}
	if err := s.blobs.Delete(ctx, id); err != nil {
		s.log.WarnContext(ctx, "delete document blob", "document_id", id, "err", err)
	}
	return nil
}

// OpenDocument streams a document's ciphertext to a user allowed to read it;
// the HTTP download route calls it.
func (s *Service) OpenDocument(ctx context.Context, u *models.User, id string) (*models.Document, io.ReadCloser, int64, error) {
	d, err := s.Document(ctx, u, id)
	if err != nil {
		return nil, nil, 0, err
	}
	rc, n, err := s.blobs.Get(ctx, id)
	if err != nil {
		return nil, nil, 0, err
	}
	return d, rc, n, nil
}

// attachmentFor checks that a message's attachment is a document of the same
// conversation.
func (s *Service) attachmentFor(ctx context.Context, conv string, id *string) error {
	if id == nil {
		return nil
	}
	if err := checkID("attachmentId", *id); err != nil {
		return err
	}
	d, err := s.store.DocumentByID(ctx, *id)
	if err != nil || d.Conversation != conv {
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		return models.Invalid("attachmentId: no document of this conversation has that id")
	}
	return nil
}

func envelopeError(err error) error {
	var ve *pqcrypto.ValidationError
	if errors.As(err, &ve) {
		return models.InvalidField(ve.Field, ve.Error())
	}
	return models.Invalid("envelope: %v", err)
}

var _ BlobStore = (*db.Blobs)(nil)

// RoomDocumentList is a room's newest documents for a member, as many as a
// plain list holds; NOT_FOUND for anyone else.
func (s *Service) RoomDocumentList(ctx context.Context, u *models.User, roomID string) ([]*models.Document, error) {
	if !s.IsMember(ctx, roomID, u.ID) {
		return nil, models.NotFound("room")
	}
	ds, _, err := s.store.DocumentsPage(ctx, roomID, nil, models.MaxListedDocuments)
	return ds, err
}

// DocumentKey is u's recipient key of a document, or nil: only one's own key
// is ever returned.
func (s *Service) DocumentKey(ctx context.Context, u *models.User, d *models.Document) (*models.RecipientKey, error) {
	if d.Keys != nil {
		for _, k := range d.Keys {
			if k.UserID == u.ID {
				return k.AsRecipientKey(), nil
			}
		}
		return nil, nil
	}
	k, err := Lookup(ctx, s.Loaders(ctx).DocumentKey(), db.MessageUser{MessageID: d.ID, UserID: u.ID})
	if k == nil || err != nil {
		return nil, err
	}
	return k.AsRecipientKey(), nil
}
