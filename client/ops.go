package client

import (
	"bytes"
	"context"
	"fmt"

	"github.com/qchat/qchat/pqcrypto"
)

// This file holds one method per API operation, thin wrappers over the
// generated functions that keep the client's token current and turn a null
// result into a NOT_FOUND *Error, so that callers never check for nil.

// Register creates an account with ik as its identity key and kp's public
// key, certified by ik with seq 1, as its first KEM key, and switches the
// client to the new session and identity. Only public keys leave the
// process; keeping ik's and kp's seeds safe is the caller's job.
func (c *Client) Register(ctx context.Context, username, password string, ik *pqcrypto.IdentityKey, kp *pqcrypto.KeyPair) (*Session, error) {
	if ik == nil || kp == nil {
		return nil, fmt.Errorf("register: an identity key and a key pair are both needed")
	}
	cert, err := pqcrypto.CertifyKEMKey(ik, kp.Algorithm, 1, kp.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	alg := kp.Algorithm
	in := RegisterInput{Username: username, Password: password, PublicKey: pqcrypto.EncodeB64(kp.PublicKey), KeyAlgorithm: &alg}
	setInput(&in.IdentityKey, pqcrypto.EncodeB64(ik.PublicKey()))
	setInput(&in.PublicKeySignature, pqcrypto.EncodeB64(cert))
	resp, err := register(ctx, c.gql, in)
	if err != nil {
		return nil, err
	}
	s := &resp.Register
	c.SetToken(s.Token)
	c.rememberSelf(s.Token, s.User.Id)
	c.SetIdentity(ik)
	if err := c.pinSelf(s.User.Id, s.User.Username, ik, 1, kp.PublicKey); err != nil {
		return nil, err
	}
	return s, nil
}

// pinSelf pins the caller's own keys as just published from here, so that
// a server presenting other keys for the caller (in a room's member list,
// say) is caught like for anyone else.
func (c *Client) pinSelf(id, username string, ik *pqcrypto.IdentityKey, seq int, pub []byte) error {
	pin, err := c.pins.Pin(id)
	if err != nil {
		return fmt.Errorf("read your own pin: %w", err)
	}
	if pin == nil {
		pin = &Pin{}
	}
	if raw := ik.PublicKey(); !bytes.Equal(pin.IdentityKey, raw) {
		if pin.IdentityKey != nil {
			pin.Previous = append(pin.Previous, pin.IdentityKey)
		}
		pin.IdentityKey = raw
	}
	pin.Username, pin.Verified = username, true
	if seq > pin.Seq {
		pin.Seq, pin.KEMKey = seq, bytes.Clone(pub)
	}
	if err := c.pins.SetPin(id, pin); err != nil {
		return fmt.Errorf("pin your own keys: %w", err)
	}
	return nil
}

// Login opens a session and switches the client to it.
func (c *Client) Login(ctx context.Context, username, password string) (*Session, error) {
	resp, err := login(ctx, c.gql, username, password)
	if err != nil {
		return nil, err
	}
	s := &resp.Login
	c.SetToken(s.Token)
	c.rememberSelf(s.Token, s.User.Id)
	return s, nil
}

// Logout revokes the session on the server and forgets the token.
func (c *Client) Logout(ctx context.Context) error {
	if _, err := logout(ctx, c.gql); err != nil {
		return err
	}
	c.SetToken("")
	return nil
}

// Me is the authenticated user; UNAUTHENTICATED without a valid token.
func (c *Client) Me(ctx context.Context) (*User, error) {
	tok := c.Token()
	resp, err := me(ctx, c.gql)
	if err != nil {
		return nil, err
	}
	if resp.Me == nil {
		return nil, &Error{Code: CodeUnauthenticated, Message: "not logged in (no valid session token)",
			Extensions: map[string]any{"code": CodeUnauthenticated}}
	}
	c.rememberSelf(tok, resp.Me.Id)
	return resp.Me, nil
}

// User looks a user up by id.
func (c *Client) User(ctx context.Context, id string) (*User, error) {
	resp, err := user(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	if resp.User == nil {
		return nil, notFound("user " + id)
	}
	return resp.User, nil
}

// UserByUsername looks a user up by name.
func (c *Client) UserByUsername(ctx context.Context, username string) (*User, error) {
	resp, err := userByUsername(ctx, c.gql, username)
	if err != nil {
		return nil, err
	}
	if resp.UserByUsername == nil {
		return nil, notFound("user " + username)
	}
	return resp.UserByUsername, nil
}

// Users looks several users up at once; unknown ids are left out.
func (c *Client) Users(ctx context.Context, ids []string) ([]User, error) {
	resp, err := users(ctx, c.gql, ids)
	if err != nil {
		return nil, err
	}
	return resp.Users, nil
}

// UserKeys is every key a user has had, newest first.
func (c *Client) UserKeys(ctx context.Context, userID string) ([]PublicKey, error) {
	return collect(func(after *string) ([]PublicKey, bool, *string, error) {
		resp, err := userKeys(ctx, c.gql, userID, listPageSize, after)
		if err != nil {
			return nil, false, nil, err
		}
		if resp.User == nil {
			return nil, false, nil, notFound("user " + userID)
		}
		conn := resp.User.KeysConnection
		ks := make([]PublicKey, len(conn.Edges))
		for i, e := range conn.Edges {
			ks[i] = e.Node
		}
		return ks, conn.PageInfo.HasNextPage, conn.PageInfo.EndCursor, nil
	})
}

// listPageSize is the page the list methods ask for: the server's maximum,
// each page well within its complexity limit.
const listPageSize = 100

// collect follows a paged list to its end; page fetches the page after a
// cursor (nil: the first) and returns its items, whether more remain and
// the cursor of its last item.
func collect[T any](page func(after *string) ([]T, bool, *string, error)) ([]T, error) {
	var all []T
	var after *string
	for {
		items, more, end, err := page(after)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if !more {
			return all, nil
		}
		if end == nil || len(items) == 0 {
			return nil, fmt.Errorf("list: the server reported more items without a cursor to continue from")
		}
		after = end
	}
}

// PublicKey looks one key up by id, current or rotated out.
func (c *Client) PublicKey(ctx context.Context, keyID string) (*PublicKey, error) {
	resp, err := publicKey(ctx, c.gql, keyID)
	if err != nil {
		return nil, err
	}
	if resp.PublicKey == nil {
		return nil, notFound("public key " + keyID)
	}
	return resp.PublicKey, nil
}

// RotateKey makes kp the caller's current key, certified by the client's
// identity key with the next sequence number (read from the server first).
// Envelopes sealed for the old key still open with the old secret key
// only, so callers keep it (see Keyring). An account without an identity
// key on the server gets one with SetIdentityKey instead.
func (c *Client) RotateKey(ctx context.Context, kp *pqcrypto.KeyPair) (*User, error) {
	if kp == nil {
		return nil, fmt.Errorf("rotate key: no key pair")
	}
	ik := c.Identity()
	if ik == nil {
		return nil, fmt.Errorf("rotate key: %w", ErrNoIdentity)
	}
	me, err := c.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("rotate key: %w", err)
	}
	if me.IdentityKey == nil {
		return nil, fmt.Errorf("rotate key: the account has no identity key yet: set one with SetIdentityKey")
	}
	seq := nextSeq(me)
	cert, err := pqcrypto.CertifyKEMKey(ik, kp.Algorithm, seq, kp.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("rotate key: %w", err)
	}
	resp, err := rotateKey(ctx, c.gql, pqcrypto.EncodeB64(kp.PublicKey), kp.Algorithm, seq, pqcrypto.EncodeB64(cert))
	if err != nil {
		return nil, err
	}
	u := &resp.RotateKey
	if err := c.pinSelf(u.Id, u.Username, ik, seq, kp.PublicKey); err != nil {
		return nil, err
	}
	return u, nil
}

// nextSeq is the sequence number of u's next certified key: one more than
// its current key's, or 1 if that has none.
func nextSeq(u *User) int {
	if u.PublicKey == nil || u.PublicKey.Seq == nil {
		return 1
	}
	return *u.PublicKey.Seq + 1
}

// SetIdentityKey makes ik the caller's identity key, published with kp as
// a new current KEM key that ik certifies. An account without an identity
// key (one made before version 2) sets its first one with an empty
// password; replacing an existing identity key (after losing every device
// and the key backup) needs the account password, and every contact is
// told of the change and warned by their client. The client switches to ik.
func (c *Client) SetIdentityKey(ctx context.Context, ik *pqcrypto.IdentityKey, kp *pqcrypto.KeyPair, password string) (*User, error) {
	if ik == nil || kp == nil {
		return nil, fmt.Errorf("set identity key: an identity key and a key pair are both needed")
	}
	me, err := c.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("set identity key: %w", err)
	}
	seq := nextSeq(me)
	cert, err := pqcrypto.CertifyKEMKey(ik, kp.Algorithm, seq, kp.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("set identity key: %w", err)
	}
	resp, err := setIdentityKey(ctx, c.gql, pqcrypto.EncodeB64(ik.PublicKey()), pqcrypto.EncodeB64(kp.PublicKey),
		kp.Algorithm, seq, pqcrypto.EncodeB64(cert), nonEmpty(password))
	if err != nil {
		return nil, err
	}
	u := &resp.SetIdentityKey
	c.SetIdentity(ik)
	if err := c.pinSelf(u.Id, u.Username, ik, seq, kp.PublicKey); err != nil {
		return nil, err
	}
	return u, nil
}

// SetKeyBackup stores the caller's sealed key backup (pqcrypto.SealBackup),
// replacing any earlier one. StoreKeyBackup seals and stores in one call.
func (c *Client) SetKeyBackup(ctx context.Context, sealed string) error {
	_, err := setKeyBackup(ctx, c.gql, sealed)
	return err
}

// KeyBackup is the caller's sealed key backup; NOT_FOUND if it has none.
func (c *Client) KeyBackup(ctx context.Context) (string, error) {
	resp, err := keyBackup(ctx, c.gql)
	if err != nil {
		return "", err
	}
	if resp.KeyBackup == nil {
		return "", notFound("key backup")
	}
	return *resp.KeyBackup, nil
}

// DeleteKeyBackup deletes the caller's key backup.
func (c *Client) DeleteKeyBackup(ctx context.Context) error {
	_, err := deleteKeyBackup(ctx, c.gql)
	return err
}

// StoreKeyBackup seals b under secret (a passphrase of at least
// pqcrypto.MinPassphraseLength characters, or a recovery key from
// pqcrypto.GenerateRecoveryKey) for the caller and stores it. The secret
// never leaves the process; Argon2id makes this take a moment.
func (c *Client) StoreKeyBackup(ctx context.Context, secret string, b *pqcrypto.Backup) error {
	uid, err := c.userID(ctx)
	if err != nil {
		return err
	}
	sealed, err := pqcrypto.SealBackup(nil, uid, secret, b, pqcrypto.BackupParams{})
	if err != nil {
		return fmt.Errorf("seal key backup: %w", err)
	}
	return c.SetKeyBackup(ctx, sealed)
}

// OpenKeyBackup fetches the caller's key backup and opens it with secret:
// NOT_FOUND if there is none, pqcrypto.ErrCannotOpenBackup for a wrong
// secret or a backup that was tampered with.
func (c *Client) OpenKeyBackup(ctx context.Context, secret string) (*pqcrypto.Backup, error) {
	uid, err := c.userID(ctx)
	if err != nil {
		return nil, err
	}
	sealed, err := c.KeyBackup(ctx)
	if err != nil {
		return nil, err
	}
	return pqcrypto.OpenBackup(uid, secret, sealed)
}

// MyRooms lists every room the caller is a member of, most recently joined
// first (page by page).
func (c *Client) MyRooms(ctx context.Context) ([]Room, error) {
	return collect(func(after *string) ([]Room, bool, *string, error) {
		// Pages of 50: a Room costs about 15 in the server's pricing.
		resp, err := myRooms(ctx, c.gql, DefaultPageSize, after)
		if err != nil {
			return nil, false, nil, err
		}
		conn := resp.MyRoomsConnection
		rs := make([]Room, len(conn.Edges))
		for i, e := range conn.Edges {
			rs[i] = e.Node
		}
		return rs, conn.PageInfo.HasNextPage, conn.PageInfo.EndCursor, nil
	})
}

// ConversationPage is one page of the caller's conversations.
type ConversationPage struct {
	Conversations []ConversationSummary
	HasNextPage   bool
	EndCursor     string
}

// Conversations fetches one page of the caller's conversations (rooms and
// direct ones), most recent activity first, with unread counts. after is
// the previous page's EndCursor ("" for the first page); first <= 0 asks
// for DefaultPageSize.
func (c *Client) Conversations(ctx context.Context, first int, after string) (*ConversationPage, error) {
	if first <= 0 {
		first = DefaultPageSize
	}
	resp, err := conversations(ctx, c.gql, first, nonEmpty(after))
	if err != nil {
		return nil, err
	}
	conn := resp.Conversations
	p := &ConversationPage{HasNextPage: conn.PageInfo.HasNextPage, Conversations: make([]ConversationSummary, len(conn.Edges))}
	if conn.PageInfo.EndCursor != nil {
		p.EndCursor = *conn.PageInfo.EndCursor
	}
	for i, e := range conn.Edges {
		p.Conversations[i] = e.Node
	}
	return p, nil
}

// AllConversations follows Conversations to the end.
func (c *Client) AllConversations(ctx context.Context) ([]ConversationSummary, error) {
	return collect(func(after *string) ([]ConversationSummary, bool, *string, error) {
		p, err := c.Conversations(ctx, DefaultPageSize, derefOr(after))
		if err != nil {
			return nil, false, nil, err
		}
		return p.Conversations, p.HasNextPage, nonEmpty(p.EndCursor), nil
	})
}

func derefOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Room looks up a room the caller is a member of.
func (c *Client) Room(ctx context.Context, id string) (*Room, error) {
	resp, err := room(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	if resp.Room == nil {
		return nil, notFound("room " + id)
	}
	return resp.Room, nil
}

// RoomMembers lists every member of a room with their current keys, oldest
// first (page by page: a room holds up to a few hundred).
func (c *Client) RoomMembers(ctx context.Context, roomID string) ([]Member, error) {
	return collect(func(after *string) ([]Member, bool, *string, error) {
		// Pages of 50: a Member with its identity key and certified key
		// costs about 25 in the server's pricing.
		resp, err := roomMembers(ctx, c.gql, roomID, DefaultPageSize, after)
		if err != nil {
			return nil, false, nil, err
		}
		if resp.Room == nil {
			return nil, false, nil, notFound("room " + roomID)
		}
		conn := resp.Room.MembersConnection
		ms := make([]Member, len(conn.Edges))
		for i, e := range conn.Edges {
			ms[i] = e.Node
		}
		return ms, conn.PageInfo.HasNextPage, conn.PageInfo.EndCursor, nil
	})
}

// RoomPreview shows a room by its invite code before joining.
func (c *Client) RoomPreview(ctx context.Context, code string) (*RoomPreview, error) {
	resp, err := roomPreview(ctx, c.gql, code)
	if err != nil {
		return nil, err
	}
	if resp.RoomPreview == nil {
		return nil, notFound("room with code " + code)
	}
	return resp.RoomPreview, nil
}

// CreateRoom creates a room owned by the caller; memberIDs are added at once.
func (c *Client) CreateRoom(ctx context.Context, name string, isGroup bool, memberIDs ...string) (*Room, error) {
	resp, err := createRoom(ctx, c.gql, CreateRoomInput{Name: name, IsGroup: &isGroup, MemberIds: memberIDs})
	if err != nil {
		return nil, err
	}
	return &resp.CreateRoom, nil
}

// JoinRoom joins by invite code.
func (c *Client) JoinRoom(ctx context.Context, code string) (*Room, error) {
	resp, err := joinRoom(ctx, c.gql, code)
	if err != nil {
		return nil, err
	}
	return &resp.JoinRoom, nil
}

// AddRoomMember adds a user (owner or admin only).
func (c *Client) AddRoomMember(ctx context.Context, roomID, userID string) (*Room, error) {
	resp, err := addRoomMember(ctx, c.gql, roomID, userID)
	if err != nil {
		return nil, err
	}
	return &resp.AddRoomMember, nil
}

// RemoveRoomMember removes a user (owner or admin, or the member themself).
func (c *Client) RemoveRoomMember(ctx context.Context, roomID, userID string) (*Room, error) {
	resp, err := removeRoomMember(ctx, c.gql, roomID, userID)
	if err != nil {
		return nil, err
	}
	return &resp.RemoveRoomMember, nil
}

// LeaveRoom leaves a room.
func (c *Client) LeaveRoom(ctx context.Context, roomID string) error {
	_, err := leaveRoom(ctx, c.gql, roomID)
	return err
}

// RenameRoom renames a room (owner only); the API calls it updateRoom.
func (c *Client) RenameRoom(ctx context.Context, roomID, name string) (*Room, error) {
	resp, err := updateRoom(ctx, c.gql, roomID, name)
	if err != nil {
		return nil, err
	}
	return &resp.UpdateRoom, nil
}

// DeleteRoom deletes a room (owner only).
func (c *Client) DeleteRoom(ctx context.Context, roomID string) error {
	_, err := deleteRoom(ctx, c.gql, roomID)
	return err
}

// RotateRoomCode replaces a room's invite code (owner only).
func (c *Client) RotateRoomCode(ctx context.Context, roomID string) (*Room, error) {
	resp, err := rotateRoomCode(ctx, c.gql, roomID)
	if err != nil {
		return nil, err
	}
	return &resp.RotateRoomCode, nil
}

// SetMemberRole makes a member an ADMIN or a MEMBER (owner only).
func (c *Client) SetMemberRole(ctx context.Context, roomID, userID string, role RoomRole) (*Room, error) {
	resp, err := setMemberRole(ctx, c.gql, roomID, userID, role)
	if err != nil {
		return nil, err
	}
	return &resp.SetMemberRole, nil
}

// SendMessageRaw sends an envelope the caller sealed itself. Most callers
// want Send or SendText, which seal and retry on outdated keys.
func (c *Client) SendMessageRaw(ctx context.Context, in SendMessageInput) (*Message, error) {
	resp, err := sendMessage(ctx, c.gql, in)
	if err != nil {
		return nil, err
	}
	return &resp.SendMessage, nil
}

// Message looks one message up by id.
func (c *Client) Message(ctx context.Context, id string) (*Message, error) {
	resp, err := message(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	if resp.Message == nil {
		return nil, notFound("message " + id)
	}
	return resp.Message, nil
}

// DeleteMessage deletes one of the caller's messages, leaving a tombstone.
func (c *Client) DeleteMessage(ctx context.Context, id string) error {
	_, err := deleteMessage(ctx, c.gql, id)
	return err
}

// MarkRead marks messages read and says how many were newly marked.
func (c *Client) MarkRead(ctx context.Context, messageIDs ...string) (int, error) {
	resp, err := markRead(ctx, c.gql, messageIDs)
	if err != nil {
		return 0, err
	}
	return resp.MarkRead, nil
}

// SetTyping tells the conversation's other members whether the caller is
// typing.
func (c *Client) SetTyping(ctx context.Context, conv Conversation, isTyping bool) error {
	if err := conv.validate(); err != nil {
		return err
	}
	_, err := setTyping(ctx, c.gql, conv.roomPtr(), conv.userPtr(), isTyping)
	return err
}

// Document looks a document's metadata up by id.
func (c *Client) Document(ctx context.Context, id string) (*Document, error) {
	resp, err := document(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	if resp.Document == nil {
		return nil, notFound("document " + id)
	}
	return resp.Document, nil
}

// RoomDocuments lists the documents shared in a room, newest first.
func (c *Client) RoomDocuments(ctx context.Context, roomID string) ([]Document, error) {
	return collect(func(after *string) ([]Document, bool, *string, error) {
		// Pages of 50: a Document costs about 25 in the server's pricing.
		resp, err := roomDocuments(ctx, c.gql, roomID, DefaultPageSize, after)
		if err != nil {
			return nil, false, nil, err
		}
		if resp.Room == nil {
			return nil, false, nil, notFound("room " + roomID)
		}
		conn := resp.Room.DocumentsConnection
		ds := make([]Document, len(conn.Edges))
		for i, e := range conn.Edges {
			ds[i] = e.Node
		}
		return ds, conn.PageInfo.HasNextPage, conn.PageInfo.EndCursor, nil
	})
}

// DeleteDocument deletes a document the caller uploaded.
func (c *Client) DeleteDocument(ctx context.Context, id string) error {
	_, err := deleteDocument(ctx, c.gql, id)
	return err
}
