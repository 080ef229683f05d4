package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/qchat/qchat/pqcrypto"
)

// Conversation says where a message or document goes: a room, or the direct
// conversation with one other user. Exactly one field is set.
type Conversation struct {
	RoomID string
	UserID string // the other user of a direct conversation
}

// InRoom is the conversation of a room.
func InRoom(roomID string) Conversation { return Conversation{RoomID: roomID} }

// WithUser is the direct conversation with a user.
func WithUser(userID string) Conversation { return Conversation{UserID: userID} }

// ID is the envelope's conversation id: the room id, or for a direct message
// the user addressed.
func (c Conversation) ID() string {
	if c.RoomID != "" {
		return c.RoomID
	}
	return c.UserID
}

func (c Conversation) String() string {
	if c.RoomID != "" {
		return "room " + c.RoomID
	}
	return "direct conversation with " + c.UserID
}

func (c Conversation) validate() error {
	if (c.RoomID == "") == (c.UserID == "") {
		return errors.New("conversation: set exactly one of RoomID and UserID")
	}
	return nil
}

func (c Conversation) roomPtr() *string { return nonEmpty(c.RoomID) }
func (c Conversation) userPtr() *string { return nonEmpty(c.UserID) }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Keyring holds the caller's secret keys by key id. After rotateKey a user
// needs the old keys as well as the current one: every envelope names the
// key it was sealed for, and old envelopes are never re-sealed.
type Keyring map[string]*pqcrypto.KeyPair

// Errors of opening, besides pqcrypto.ErrCannotOpen for an envelope that
// does not verify.
var (
	// ErrNoRecipientKey: the envelope has no key for the caller (myKey is
	// null), e.g. a message sent before the caller joined.
	ErrNoRecipientKey = errors.New("no recipient key for you in this envelope")
	// ErrMissingSecretKey: the envelope names a key id the keyring lacks.
	ErrMissingSecretKey = errors.New("secret key not in keyring")
	// ErrDeleted: the message was deleted and its content is gone.
	ErrDeleted = errors.New("message deleted")
)

func (k Keyring) open(h pqcrypto.Header, ciphertext []byte, nonceB64 string, rk *RecipientKey) ([]byte, error) {
	if rk == nil {
		return nil, ErrNoRecipientKey
	}
	kp := k[rk.KeyId]
	if kp == nil {
		return nil, fmt.Errorf("%w: key %s", ErrMissingSecretKey, rk.KeyId)
	}
	// A field that is not base64 is a forged envelope like any other: one
	// error, never a hint about which part failed.
	nonce, err1 := pqcrypto.DecodeB64(nonceB64)
	kemCT, err2 := pqcrypto.DecodeB64(rk.KemCiphertext)
	wrapped, err3 := pqcrypto.DecodeB64(rk.WrappedKey)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, pqcrypto.ErrCannotOpen
	}
	return pqcrypto.OpenWith(h, ciphertext, nonce,
		pqcrypto.RecipientKey{UserID: rk.UserId, KeyID: rk.KeyId, KEMCiphertext: kemCT, WrappedKey: wrapped}, kp)
}

// ConversationID is the envelope conversation id a message was sealed
// under: its room, or for a direct message the user the sender addressed.
func (m *Message) ConversationID() string {
	if m.Room != nil {
		return m.Room.Id
	}
	if m.Recipient != nil {
		return m.Recipient.Id
	}
	return ""
}

// OpenMessage decrypts a message with the caller's keyring.
func OpenMessage(m *Message, kr Keyring) ([]byte, error) {
	if m.Deleted {
		return nil, ErrDeleted
	}
	if m.MyKey == nil {
		return nil, ErrNoRecipientKey
	}
	ct, err := pqcrypto.DecodeB64(m.Ciphertext)
	if err != nil {
		return nil, pqcrypto.ErrCannotOpen
	}
	h := pqcrypto.Header{Kind: pqcrypto.KindMessage, ObjectID: m.Id, SenderID: m.Sender.Id, ConversationID: m.ConversationID()}
	return kr.open(h, ct, m.Nonce, m.MyKey)
}

// Received is a message with its plaintext, or with the reason it has none
// (ErrDeleted, ErrNoRecipientKey, ErrMissingSecretKey, pqcrypto.ErrCannotOpen);
// a client shows the reason, never a partial plaintext.
type Received struct {
	Message
	Plaintext []byte
	Err       error
}

// Text is the plaintext as a string.
func (r Received) Text() string { return string(r.Plaintext) }

// Decrypt opens m into a Received.
func Decrypt(m *Message, kr Keyring) Received {
	pt, err := OpenMessage(m, kr)
	return Received{Message: *m, Plaintext: pt, Err: err}
}

// Page is one page of history, newest first as the API returns it.
type Page struct {
	Messages    []Received
	HasNextPage bool
	EndCursor   string // pass as after for the next (older) page
}

// DefaultPageSize is the page size when History is asked for 0 messages,
// the server's default too.
const DefaultPageSize = 50

// History fetches one page of a conversation's messages, newest first, and
// decrypts them with kr. after is the previous page's EndCursor ("" for the
// newest page).
func (c *Client) History(ctx context.Context, conv Conversation, first int, after string, kr Keyring) (*Page, error) {
	mp, err := c.MessagePage(ctx, conv, first, after)
	if err != nil {
		return nil, err
	}
	p := &Page{HasNextPage: mp.PageInfo.HasNextPage, Messages: make([]Received, len(mp.Edges))}
	if mp.PageInfo.EndCursor != nil {
		p.EndCursor = *mp.PageInfo.EndCursor
	}
	for i := range mp.Edges {
		p.Messages[i] = Decrypt(&mp.Edges[i].Node, kr)
	}
	return p, nil
}

// MessagePage fetches one page of envelopes without opening them.
func (c *Client) MessagePage(ctx context.Context, conv Conversation, first int, after string) (*MessagePage, error) {
	if err := conv.validate(); err != nil {
		return nil, err
	}
	if first <= 0 {
		first = DefaultPageSize
	}
	if conv.RoomID != "" {
		resp, err := roomMessages(ctx, c.gql, conv.RoomID, first, nonEmpty(after))
		if err != nil {
			return nil, err
		}
		if resp.Room == nil {
			return nil, notFound("room " + conv.RoomID)
		}
		return &resp.Room.Messages, nil
	}
	resp, err := directMessages(ctx, c.gql, conv.UserID, first, nonEmpty(after))
	if err != nil {
		return nil, err
	}
	return &resp.DirectMessages, nil
}

// Recipients fetches the current keys of everyone an envelope for conv must
// be sealed for: every room member, or both users of a direct conversation.
func (c *Client) Recipients(ctx context.Context, conv Conversation) ([]pqcrypto.Recipient, error) {
	if err := conv.validate(); err != nil {
		return nil, err
	}
	var us []User
	if conv.RoomID != "" {
		ms, err := c.RoomMembers(ctx, conv.RoomID)
		if err != nil {
			return nil, fmt.Errorf("fetch recipients: %w", err)
		}
		for _, m := range ms {
			us = append(us, m.User)
		}
	} else {
		self, err := c.userID(ctx)
		if err != nil {
			return nil, fmt.Errorf("fetch recipients: %w", err)
		}
		if us, err = c.Users(ctx, []string{self, conv.UserID}); err != nil {
			return nil, fmt.Errorf("fetch recipients: %w", err)
		}
		if len(us) != 2 {
			return nil, fmt.Errorf("fetch recipients: %w", notFound("user "+conv.UserID))
		}
	}
	rs := make([]pqcrypto.Recipient, 0, len(us))
	for _, u := range us {
		if u.PublicKey == nil {
			return nil, fmt.Errorf("fetch recipients: user %s has no public key", u.Username)
		}
		pk, err := pqcrypto.DecodeB64(u.PublicKey.Key)
		if err != nil {
			return nil, fmt.Errorf("fetch recipients: public key of %s: %w", u.Username, err)
		}
		rs = append(rs, pqcrypto.Recipient{UserID: u.Id, KeyID: u.PublicKey.Id, Algorithm: u.PublicKey.Algorithm, PublicKey: pk})
	}
	return rs, nil
}

// sealAndSend seals plaintext for conv's current recipients and hands the
// envelope to send. If the server says the recipient set or a key is out of
// date (someone joined, left or rotated between our fetch and the send), it
// fetches the keys again and retries once with the same object id: the
// rejected attempt was not stored, so the id is still free.
func (c *Client) sealAndSend(ctx context.Context, conv Conversation, kind pqcrypto.Kind, oid string, plaintext []byte, send func(*pqcrypto.Envelope) error) error {
	if err := conv.validate(); err != nil {
		return err
	}
	sid, err := c.userID(ctx)
	if err != nil {
		return err
	}
	h := pqcrypto.Header{Kind: kind, ObjectID: oid, SenderID: sid, ConversationID: conv.ID()}
	for attempt := 1; ; attempt++ {
		rs, err := c.Recipients(ctx, conv)
		if err != nil {
			return err
		}
		env, err := pqcrypto.Seal(nil, h, plaintext, rs)
		if err != nil {
			return fmt.Errorf("seal for %s: %w", conv, err)
		}
		err = send(env)
		if err == nil || attempt == 2 || !isRecipientMismatch(err) {
			return err
		}
	}
}

func wireKeys(env *pqcrypto.Envelope) []RecipientKeyInput {
	w := env.Wire()
	keys := make([]RecipientKeyInput, len(w.Keys))
	for i, k := range w.Keys {
		keys[i] = RecipientKeyInput{UserId: k.UserID, KeyId: k.KeyID, KemCiphertext: k.KEMCiphertext, WrappedKey: k.WrappedKey}
	}
	return keys
}

// SendOptions adjust Send.
type SendOptions struct {
	// AttachmentID attaches an uploaded document of the same conversation.
	AttachmentID string
}

// Send seals plaintext for every member of conv (the caller included, so it
// can read its own history) and sends it.
func (c *Client) Send(ctx context.Context, conv Conversation, plaintext []byte, opts SendOptions) (*Message, error) {
	oid := NewID()
	var out *Message
	err := c.sealAndSend(ctx, conv, pqcrypto.KindMessage, oid, plaintext, func(env *pqcrypto.Envelope) error {
		m, err := c.SendMessageRaw(ctx, SendMessageInput{
			Id: oid, RoomId: conv.roomPtr(), RecipientId: conv.userPtr(),
			Ciphertext: pqcrypto.EncodeB64(env.Ciphertext), Nonce: pqcrypto.EncodeB64(env.Nonce),
			Keys: wireKeys(env), AttachmentId: nonEmpty(opts.AttachmentID),
		})
		out = m
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("send to %s: %w", conv, err)
	}
	return out, nil
}

// SendText sends a text message to conv.
func (c *Client) SendText(ctx context.Context, conv Conversation, text string) (*Message, error) {
	return c.Send(ctx, conv, []byte(text), SendOptions{})
}
