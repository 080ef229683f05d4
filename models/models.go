package models

import (
	"encoding/base64"

	"github.com/uptrace/bun"
)

// User is an account. Usernames are unique without regard to case so that
// "Alice" cannot impersonate "alice".
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID           string `bun:"id,pk"`
	Username     string `bun:"username,notnull"`
	UsernameKey  string `bun:"username_key,notnull,unique"`
	PasswordHash []byte `bun:"password_hash,notnull" json:"-"` // never leaves the process
	CurrentKeyID string `bun:"current_key_id,notnull"`
	CreatedAt    Time   `bun:"created_at,notnull"`
}

// PublicKey is one of a user's KEM public keys. Old keys are kept after a rotation
// so that old envelopes still name a valid key id.
type PublicKey struct {
	bun.BaseModel `bun:"table:user_keys"`

	ID          string       `bun:"id,pk"`
	UserID      string       `bun:"user_id,notnull"`
	Algorithm   KeyAlgorithm `bun:"algorithm,notnull"`
	KeyBytes    []byte       `bun:"public_key,notnull"`
	Fingerprint string       `bun:"fingerprint,notnull"`
	Current     bool         `bun:"current,notnull"`
	CreatedAt   Time         `bun:"created_at,notnull"`
	// SignatureBytes is the key's certificate by the owner's identity key
	// and Seq its sequence number; both nil for a key published before v2.
	SignatureBytes []byte `bun:"signature"`
	Seq            *int   `bun:"seq"`
}

// Key is the raw key as standard base64.
func (k *PublicKey) Key() string { return base64.StdEncoding.EncodeToString(k.KeyBytes) }

// Signature is the certificate as standard base64, nil before version 2.
func (k *PublicKey) Signature() *string { return optionalB64(k.SignatureBytes) }

// KeyDigestSize is the length of one signed leaf (a SHA-256).
const KeyDigestSize = 32

// JoinDigests stores leaves as one column value: their concatenation, in order.
func JoinDigests(digests [][]byte) []byte {
	out := make([]byte, 0, len(digests)*KeyDigestSize)
	for _, d := range digests {
		out = append(out, d...)
	}
	return out
}

// splitDigests is JoinDigests undone, in base64; nil stays nil (version 1).
func splitDigests(b []byte) []string {
	if b == nil {
		return nil
	}
	out := make([]string, 0, len(b)/KeyDigestSize)
	for len(b) >= KeyDigestSize {
		out = append(out, base64.StdEncoding.EncodeToString(b[:KeyDigestSize]))
		b = b[KeyDigestSize:]
	}
	return out
}

func optionalB64(b []byte) *string {
	if b == nil {
		return nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s
}

// IdentityKey is one of a user's ML-DSA-65 identity keys. Replaced keys are
// kept with Current false.
type IdentityKey struct {
	bun.BaseModel `bun:"table:identity_keys"`

	ID          string `bun:"id,pk"`
	UserID      string `bun:"user_id,notnull"`
	KeyBytes    []byte `bun:"key,notnull"`
	Fingerprint string `bun:"fingerprint,notnull"`
	Current     bool   `bun:"current,notnull"`
	CreatedAt   Time   `bun:"created_at,notnull"`
}

// Key is the raw key as standard base64.
func (k *IdentityKey) Key() string { return base64.StdEncoding.EncodeToString(k.KeyBytes) }

// KeyBackup is a user's sealed key backup, opaque to the server.
type KeyBackup struct {
	bun.BaseModel `bun:"table:key_backups"`

	UserID    string `bun:"user_id,pk"`
	Backup    string `bun:"backup,notnull"`
	UpdatedAt Time   `bun:"updated_at,notnull"`
}

// Session is a login. Only the SHA-256 of the opaque token is stored.
type Session struct {
	bun.BaseModel `bun:"table:sessions"`

	TokenHash []byte `bun:"token_hash,pk"`
	UserID    string `bun:"user_id,notnull"`
	CreatedAt Time   `bun:"created_at,notnull"`
	ExpiresAt Time   `bun:"expires_at,notnull"`
}

// Room is a group or a private room.
type Room struct {
	bun.BaseModel `bun:"table:rooms"`

	ID        string `bun:"id,pk"`
	Name      string `bun:"name,notnull"`
	IsGroup   bool   `bun:"is_group,notnull"`
	Code      string `bun:"code,notnull,unique"`
	OwnerID   string `bun:"owner_id,nullzero"`
	CreatedAt Time   `bun:"created_at,notnull"`
}

// RoomMember is one user's membership of a room.
type RoomMember struct {
	bun.BaseModel `bun:"table:room_members"`

	RoomID   string   `bun:"room_id,pk"`
	UserID   string   `bun:"user_id,pk"`
	Role     RoomRole `bun:"role,notnull"`
	JoinedAt Time     `bun:"joined_at,notnull"`
}

// Message is a stored envelope. The ciphertext is stored once; each recipient
// has a MessageKey. Conversation is the room id, or for direct messages a key
// made of both user ids, so one index serves every history query.
type Message struct {
	bun.BaseModel `bun:"table:messages"`

	ID           string  `bun:"id,pk"`
	Conversation string  `bun:"conversation,notnull"`
	RoomID       *string `bun:"room_id"`
	SenderID     string  `bun:"sender_id,notnull"`
	RecipientID  *string `bun:"recipient_id"`
	CipherBytes  []byte  `bun:"ciphertext"`
	NonceBytes   []byte  `bun:"nonce"`
	AttachmentID *string `bun:"attachment_id"`
	ContentHash  []byte  `bun:"content_hash,notnull"`
	CreatedAt    Time    `bun:"created_at,notnull"`
	DeletedAt    *Time   `bun:"deleted_at"`
	// Version is the envelope version: 1, or 2 for signed content, which
	// carries SignatureBytes and the signed leaves (KeyDigestBytes,
	// pqcrypto.KeyDigestSize bytes each, in order). Zero inserts the
	// column's default, 1.
	Version        int    `bun:"version,nullzero,notnull,default:1"`
	SignatureBytes []byte `bun:"signature"`
	KeyDigestBytes []byte `bun:"key_digests"`

	// Keys is filled when the message travels as a live event, so that each
	// subscriber finds its own key without a query, and by a history page's
	// query with its reader's key (or none).
	Keys []*RecipientKey `bun:"-"`
	// Sender, RoomRef and RecipientRef are filled before a message is
	// returned or published (the GraphQL fields read them directly), so that
	// neither each row nor each subscriber looks them up again.
	Sender       *User `bun:"-"`
	RoomRef      *Room `bun:"-"`
	RecipientRef *User `bun:"-"`
	// Mine is the reader's own recipient key (nil for a tombstone), set for
	// the one reader a value is returned to: an event's subscribers each get
	// a shallow copy with their own.
	Mine *RecipientKey `bun:"-" json:"-"`
}

// Ciphertext is the sealed content as base64 (empty for a tombstone).
func (m *Message) Ciphertext() string { return base64.StdEncoding.EncodeToString(m.CipherBytes) }

// Nonce is the AES-GCM nonce as base64 (empty for a tombstone).
func (m *Message) Nonce() string { return base64.StdEncoding.EncodeToString(m.NonceBytes) }

// EnvelopeVersion is Version, reading an unset one (a value built in
// memory, not read back) as the column's default, 1.
func (m *Message) EnvelopeVersion() int { return max(m.Version, 1) }

// Signature is the sender's signature as standard base64, nil for version 1.
func (m *Message) Signature() *string { return optionalB64(m.SignatureBytes) }

// KeyDigests is the signed leaves as standard base64, nil for version 1.
func (m *Message) KeyDigests() []string { return splitDigests(m.KeyDigestBytes) }

// Deleted says whether the sender deleted the message.
func (m *Message) Deleted() bool { return m.DeletedAt != nil }

// KeyFor returns the recipient key of userID among the keys the event carries.
func (m *Message) KeyFor(userID string) *RecipientKey {
	for _, k := range m.Keys {
		if k.UserID == userID {
			return k
		}
	}
	return nil
}

// RecipientKey is a message's content key wrapped for one recipient.
type RecipientKey struct {
	bun.BaseModel `bun:"table:message_keys"`

	MessageID    string `bun:"message_id,pk"`
	UserID       string `bun:"user_id,pk"`
	KeyID        string `bun:"key_id,notnull"`
	KEMBytes     []byte `bun:"kem_ciphertext,notnull"`
	WrappedBytes []byte `bun:"wrapped_key,notnull"`
	ReadAt       *Time  `bun:"read_at"`
}

// KemCiphertext is the KEM ciphertext as base64.
func (k *RecipientKey) KemCiphertext() string { return base64.StdEncoding.EncodeToString(k.KEMBytes) }

// WrappedKey is the wrapped content key as base64.
func (k *RecipientKey) WrappedKey() string { return base64.StdEncoding.EncodeToString(k.WrappedBytes) }

// Document is an encrypted file. Its ciphertext lives in blob storage; the
// row holds the metadata and the envelope's nonce, and each recipient has a
// DocumentKey.
type Document struct {
	bun.BaseModel `bun:"table:documents"`

	ID           string  `bun:"id,pk"`
	Conversation string  `bun:"conversation,notnull"`
	RoomID       *string `bun:"room_id"`
	UploaderID   string  `bun:"uploader_id,notnull"`
	RecipientID  *string `bun:"recipient_id"`
	Name         string  `bun:"name,notnull"`
	MimeType     string  `bun:"mime_type,notnull"`
	Size         int     `bun:"size,notnull"`
	NonceBytes   []byte  `bun:"nonce,notnull"`
	CreatedAt    Time    `bun:"created_at,notnull"`
	// Version, SignatureBytes and KeyDigestBytes are as on Message.
	Version        int    `bun:"version,nullzero,notnull,default:1"`
	SignatureBytes []byte `bun:"signature"`
	KeyDigestBytes []byte `bun:"key_digests"`

	// Keys is filled right after an upload.
	Keys []*DocumentKey `bun:"-"`
}

// EnvelopeVersion is as Message.EnvelopeVersion.
func (d *Document) EnvelopeVersion() int { return max(d.Version, 1) }

// Signature is the uploader's signature as standard base64, nil for version 1.
func (d *Document) Signature() *string { return optionalB64(d.SignatureBytes) }

// KeyDigests is the signed leaves as standard base64, nil for version 1.
func (d *Document) KeyDigests() []string { return splitDigests(d.KeyDigestBytes) }

// Nonce is the AES-GCM nonce as base64.
func (d *Document) Nonce() string { return base64.StdEncoding.EncodeToString(d.NonceBytes) }

// DocumentKey is a document's content key wrapped for one recipient.
type DocumentKey struct {
	bun.BaseModel `bun:"table:document_keys"`

	DocumentID   string `bun:"document_id,pk"`
	UserID       string `bun:"user_id,pk"`
	KeyID        string `bun:"key_id,notnull"`
	KEMBytes     []byte `bun:"kem_ciphertext,notnull"`
	WrappedBytes []byte `bun:"wrapped_key,notnull"`
}

// AsRecipientKey presents a document key as the API's RecipientKey.
func (k *DocumentKey) AsRecipientKey() *RecipientKey {
	return &RecipientKey{MessageID: k.DocumentID, UserID: k.UserID, KeyID: k.KeyID, KEMBytes: k.KEMBytes, WrappedBytes: k.WrappedBytes}
}

// Conversation is one of a user's conversations as the conversations list
// shows it: a room (RoomID) or a direct exchange with PeerID.
type Conversation struct {
	// Key is the messages' conversation column: the room id or
	// db.DirectConversation of both users.
	Key            string
	RoomID         *string
	PeerID         *string
	UnreadCount    int
	LastActivityAt Time
	LastMessageID  *string
	// LastMessage is LastMessageID's message, loaded for the whole page at
	// once and presented to the reader.
	LastMessage *Message
}
