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

// Errors of opening, besides pqcrypto.ErrCannotOpen ("cannot open
// envelope") for an envelope that does not verify: a signature that does
// not verify against the sender's pinned identity key is that same error.
var (
	// ErrNoRecipientKey: the envelope has no key for the caller (myKey is
	// null), e.g. a message sent before the caller joined.
	ErrNoRecipientKey = errors.New("no recipient key for you in this envelope")
	// ErrMissingSecretKey: the envelope names a key id the keyring lacks.
	ErrMissingSecretKey = errors.New("secret key not in keyring")
	// ErrDeleted: the message was deleted and its content is gone.
	ErrDeleted = errors.New("message deleted")
)

// signedFields are what a version 2 message or document carries besides
// version 1's fields.
type signedFields struct {
	version    int
	signature  *string
	keyDigests []string
}

// open opens an envelope of either version. A version 2 envelope opens only
// if its signature verifies against one of senders (the sender's pinned
// identity key, then the ones accepted before it); signed reports that it
// did. A version 1 envelope opens without a signature: its sender is
// whoever the server says.
func (k Keyring) open(h pqcrypto.SignedHeader, ciphertext []byte, nonceB64 string, rk *RecipientKey, f signedFields, senders []*pqcrypto.IdentityPublicKey) (pt []byte, signed bool, err error) {
	if rk == nil {
		return nil, false, ErrNoRecipientKey
	}
	kp := k[rk.KeyId]
	if kp == nil {
		return nil, false, fmt.Errorf("%w: key %s", ErrMissingSecretKey, rk.KeyId)
	}
	switch f.version {
	case 1:
		// A field that is not base64 is a forged envelope like any other:
		// one error, never a hint about which part failed.
		nonce, err1 := pqcrypto.DecodeB64(nonceB64)
		kemCT, err2 := pqcrypto.DecodeB64(rk.KemCiphertext)
		wrapped, err3 := pqcrypto.DecodeB64(rk.WrappedKey)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, false, pqcrypto.ErrCannotOpen
		}
		v1 := pqcrypto.Header{Kind: h.Kind, ObjectID: h.ObjectID, SenderID: h.SenderID, ConversationID: h.ConversationID}
		pt, err := pqcrypto.OpenWith(v1, ciphertext, nonce,
			pqcrypto.RecipientKey{UserID: rk.UserId, KeyID: rk.KeyId, KEMCiphertext: kemCT, WrappedKey: wrapped}, kp)
		return pt, false, err
	case 2:
		if f.signature == nil || f.keyDigests == nil {
			return nil, false, pqcrypto.ErrCannotOpen
		}
		w := pqcrypto.WireReceivedEnvelope{
			Nonce: nonceB64, KeyDigests: f.keyDigests, Signature: *f.signature,
			MyKey: pqcrypto.WireRecipientKey{UserID: rk.UserId, KeyID: rk.KeyId, KEMCiphertext: rk.KemCiphertext, WrappedKey: rk.WrappedKey},
		}
		r, err := w.Decode()
		if err != nil {
			return nil, false, pqcrypto.ErrCannotOpen
		}
		r.Ciphertext = ciphertext
		// OpenSigned verifies before it decrypts: trying an earlier
		// accepted identity key costs one verification.
		for _, sender := range senders {
			if pt, err := pqcrypto.OpenSigned(h, r, sender, kp); err == nil {
				return pt, true, nil
			}
		}
		return nil, false, pqcrypto.ErrCannotOpen
	}
	return nil, false, pqcrypto.ErrCannotOpen
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

func (m *Message) header() pqcrypto.SignedHeader {
	return pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: m.Id, SenderID: m.Sender.Id, ConversationID: m.ConversationID(),
		AttachmentID: derefOr(m.AttachmentId)}
}

// OpenMessage decrypts a message with the caller's keyring. A version 2
// message opens only if its signature verifies against one of senders,
// the identity keys the caller trusts for its sender (pinned, not as the
// server presents them now: Client.Decrypt looks them up in its pins);
// signed reports that. A version 1 message has no signature: show it as
// from an unverified sender.
func OpenMessage(m *Message, kr Keyring, senders []*pqcrypto.IdentityPublicKey) (plaintext []byte, signed bool, err error) {
	if m.Deleted {
		return nil, false, ErrDeleted
	}
	if m.MyKey == nil {
		return nil, false, ErrNoRecipientKey
	}
	ct, err := pqcrypto.DecodeB64(m.Ciphertext)
	if err != nil {
		return nil, false, pqcrypto.ErrCannotOpen
	}
	return kr.open(m.header(), ct, m.Nonce, m.MyKey, signedFields{m.Version, m.Signature, m.KeyDigests}, senders)
}

// Received is a message with its plaintext, or with the reason it has none
// (ErrDeleted, ErrNoRecipientKey, ErrMissingSecretKey, pqcrypto.ErrCannotOpen,
// which a signature that does not verify is too); a client shows the
// reason, never a partial plaintext.
type Received struct {
	Message
	Plaintext []byte
	Err       error
	// Signed: the message is version 2 and its signature verified against
	// the sender's pinned identity key. A plaintext without it is version
	// 1 content: show it marked "sender not verified".
	Signed bool
}

// Text is the plaintext as a string.
func (r Received) Text() string { return string(r.Plaintext) }

// Decrypt opens m into a Received, verifying it against senders (see
// OpenMessage). Client.Decrypt finds senders in the client's pins.
func Decrypt(m *Message, kr Keyring, senders []*pqcrypto.IdentityPublicKey) Received {
	pt, signed, err := OpenMessage(m, kr, senders)
	return Received{Message: *m, Plaintext: pt, Err: err, Signed: signed}
}

// pinSenders pins the senders of ms the caller has no pin for yet, with one
// request for all of them rather than one per sender as Decrypt would.
// Failures are left for Decrypt to meet and report.
func (c *Client) pinSenders(ctx context.Context, ms []*Message) {
	var ids []string
	seen := map[string]bool{}
	for _, m := range ms {
		id := m.Sender.Id
		if m.Version == 1 || m.Deleted || seen[id] {
			continue
		}
		seen[id] = true
		if pin, err := c.pins.Pin(id); err == nil && pin == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	us, err := c.Users(ctx, ids)
	if err != nil {
		return
	}
	for i := range us {
		_, _ = c.pinIdentity(&us[i])
	}
}

// Decrypt opens m with kr, verifying a version 2 message against its
// sender's pinned identity key (pinned now, from the server, if the sender
// is new to the caller).
func (c *Client) Decrypt(ctx context.Context, m *Message, kr Keyring) Received {
	var senders []*pqcrypto.IdentityPublicKey
	if m.Version != 1 && !m.Deleted {
		var err error
		if senders, err = c.senderKeys(m.Sender.Id, func() (*User, error) { return c.User(ctx, m.Sender.Id) }); err != nil {
			// No key to verify with is a message that cannot be opened.
			return Received{Message: *m, Err: pqcrypto.ErrCannotOpen}
		}
	}
	return Decrypt(m, kr, senders)
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
	ms := make([]*Message, len(mp.Edges))
	for i := range mp.Edges {
		ms[i] = &mp.Edges[i].Node
	}
	c.pinSenders(ctx, ms)
	for i, m := range ms {
		p.Messages[i] = c.Decrypt(ctx, m, kr)
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
// be sealed for (every room member, or both users of a direct conversation)
// and checks each against the caller's pins: an *IdentityChangedError or a
// *KeyRejectedError names the first user whose key cannot be trusted.
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
	// Every recipient's key is checked against what the caller pinned:
	// one that fails stops the whole send, naming the user.
	rs := make([]pqcrypto.Recipient, 0, len(us))
	for i := range us {
		r, err := c.checkRecipient(&us[i])
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// sealAndSend seals plaintext for conv's current recipients, signs it with
// the caller's identity key (envelope v2) and hands the envelope to send.
// If the server says the recipient set or a key is out of date (someone
// joined, left or rotated between our fetch and the send), it fetches the
// keys again and retries once with the same object id: the rejected
// attempt was not stored, so the id is still free.
func (c *Client) sealAndSend(ctx context.Context, conv Conversation, h pqcrypto.SignedHeader, plaintext []byte, send func(*pqcrypto.SignedEnvelope) error) error {
	if err := conv.validate(); err != nil {
		return err
	}
	ik := c.Identity()
	if ik == nil {
		return ErrNoIdentity
	}
	sid, err := c.userID(ctx)
	if err != nil {
		return err
	}
	h.SenderID, h.ConversationID = sid, conv.ID()
	for attempt := 1; ; attempt++ {
		rs, err := c.Recipients(ctx, conv)
		if err != nil {
			return err
		}
		env, err := pqcrypto.SealSigned(nil, ik, h, plaintext, rs)
		if err != nil {
			return fmt.Errorf("seal for %s: %w", conv, err)
		}
		err = send(env)
		if err == nil || attempt == 2 || !isRecipientMismatch(err) {
			return err
		}
	}
}

func wireKeys(env *pqcrypto.SignedEnvelope) []RecipientKeyInput {
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
// can read its own history), signs it and sends it. Every recipient's key
// is checked against the caller's pins first (see Recipients).
func (c *Client) Send(ctx context.Context, conv Conversation, plaintext []byte, opts SendOptions) (*Message, error) {
	oid := NewID()
	var out *Message
	h := pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: oid, AttachmentID: opts.AttachmentID}
	err := c.sealAndSend(ctx, conv, h, plaintext, func(env *pqcrypto.SignedEnvelope) error {
		in := SendMessageInput{
			Id: oid, RoomId: conv.roomPtr(), RecipientId: conv.userPtr(),
			Ciphertext: pqcrypto.EncodeB64(env.Ciphertext), Nonce: pqcrypto.EncodeB64(env.Nonce),
			Keys: wireKeys(env), AttachmentId: nonEmpty(opts.AttachmentID),
		}
		in.SetSignature(pqcrypto.EncodeB64(env.Signature))
		m, err := c.SendMessageRaw(ctx, in)
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
