package broker

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/qchat/qchat/models"
)

// WireVersion is the version of the event format instances exchange over
// Redis. The format is spelled out in the wire* structs below, apart from
// the models: renaming or adding a model field changes nothing on the wire,
// and during a rolling upgrade instances of neighbouring versions read each
// other. Adding an optional field keeps the version (older instances ignore
// it, as they ignore Event.Receipts); a change an older instance would
// misread needs a new version, which older instances then skip (see
// Redis.deliver). testdata/wire-v1.golden holds the format.
//
// Version 1 is the format of the instances before the version field
// existed, byte for byte but for "v" and the empty "BaseModel" objects they
// wrote: a message without "v" is version 1.
const WireVersion = 1

// wireEnvelope is what travels on the channel.
type wireEnvelope struct {
	Version int        `json:"v"`
	Origin  string     `json:"o"`
	Topics  []string   `json:"t"`
	Event   *wireEvent `json:"e"`
}

// wireHeader is read first, so that the event of a newer version is never
// decoded with this version's structs.
type wireHeader struct {
	Version int             `json:"v"`
	Origin  string          `json:"o"`
	Topics  []string        `json:"t"`
	Event   json.RawMessage `json:"e"`
}

type wireEvent struct {
	Kind     string            `json:"kind"`
	Message  *wireMessage      `json:"message,omitempty"`
	Typing   *wireTyping       `json:"typing,omitempty"`
	Receipt  *wireReceipt      `json:"receipt,omitempty"`
	Presence *wirePresence     `json:"presence,omitempty"`
	Room     *wireRoomEvent    `json:"room,omitempty"`
	Inval    *wireInvalidation `json:"inval,omitempty"`
	Receipts []*wireReceipt    `json:"receipts,omitempty"`
	// KeyChange is an addition to version 1: older instances ignore the
	// field, and the event's kind is one their filters do not deliver.
	KeyChange *wireKeyChange `json:"keyChange,omitempty"`
}

// wireMessage keeps the Go field names that version 1 inherited from the
// untagged model.
type wireMessage struct {
	ID           string              `json:"ID"`
	Conversation string              `json:"Conversation"`
	RoomID       *string             `json:"RoomID"`
	SenderID     string              `json:"SenderID"`
	RecipientID  *string             `json:"RecipientID"`
	Ciphertext   []byte              `json:"CipherBytes"`
	Nonce        []byte              `json:"NonceBytes"`
	AttachmentID *string             `json:"AttachmentID"`
	ContentHash  []byte              `json:"ContentHash"`
	CreatedAt    time.Time           `json:"CreatedAt"`
	DeletedAt    *time.Time          `json:"DeletedAt"`
	Keys         []*wireRecipientKey `json:"Keys"`
	Sender       *wireUser           `json:"Sender"`
	Room         *wireRoom           `json:"RoomRef"`
	Recipient    *wireUser           `json:"RecipientRef"`
	// Additions to version 1 for signed (version 2) messages: omitted for
	// version 1 content, so those events encode as before; an older
	// instance ignores them.
	Version    int    `json:"Version,omitempty"`
	Signature  []byte `json:"SignatureBytes,omitempty"`
	KeyDigests []byte `json:"KeyDigestBytes,omitempty"`
}

type wireRecipientKey struct {
	MessageID     string     `json:"MessageID"`
	UserID        string     `json:"UserID"`
	KeyID         string     `json:"KeyID"`
	KEMCiphertext []byte     `json:"KEMBytes"`
	WrappedKey    []byte     `json:"WrappedBytes"`
	ReadAt        *time.Time `json:"ReadAt"`
}

// wireUser never carries the password hash.
type wireUser struct {
	ID           string    `json:"ID"`
	Username     string    `json:"Username"`
	UsernameKey  string    `json:"UsernameKey"`
	CurrentKeyID string    `json:"CurrentKeyID"`
	CreatedAt    time.Time `json:"CreatedAt"`
}

type wireRoom struct {
	ID        string    `json:"ID"`
	Name      string    `json:"Name"`
	IsGroup   bool      `json:"IsGroup"`
	Code      string    `json:"Code"`
	OwnerID   string    `json:"OwnerID"`
	CreatedAt time.Time `json:"CreatedAt"`
}

type wireTyping struct {
	UserID      string  `json:"userId"`
	RoomID      *string `json:"roomId,omitempty"`
	RecipientID *string `json:"recipientId,omitempty"`
	IsTyping    bool    `json:"isTyping"`
}

type wireReceipt struct {
	MessageID    string    `json:"messageId"`
	Conversation string    `json:"conversation"`
	RoomID       *string   `json:"roomId,omitempty"`
	UserID       string    `json:"userId"`
	ReadAt       time.Time `json:"readAt"`
}

type wirePresence struct {
	UserID string `json:"userId"`
	Online bool   `json:"online"`
}

type wireRoomEvent struct {
	Type   string    `json:"type"`
	Room   *wireRoom `json:"room"`
	UserID *string   `json:"userId,omitempty"`
}

type wireKeyChange struct {
	UserID string `json:"userId"`
	Kind   string `json:"kind"`
}

type wireInvalidation struct {
	What string   `json:"what"`
	Key  string   `json:"key"`
	More []string `json:"more,omitempty"`
}

// encodeWire is the message that carries ev to the other instances.
func encodeWire(origin string, topics []string, ev *Event) ([]byte, error) {
	b, err := json.Marshal(wireEnvelope{Version: WireVersion, Origin: origin, Topics: topics, Event: toWire(ev)})
	if err != nil {
		return nil, fmt.Errorf("broker: encode %s event: %w", ev.Kind, err)
	}
	return b, nil
}

// decodeWireHeader reads the envelope of a message; a missing version is 1.
func decodeWireHeader(payload []byte) (wireHeader, error) {
	var h wireHeader
	if err := json.Unmarshal(payload, &h); err != nil {
		return h, err
	}
	if h.Version == 0 {
		h.Version = 1
	}
	return h, nil
}

// decodeWireEvent reads the event of a message of this version.
func decodeWireEvent(raw json.RawMessage) (*Event, error) {
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, err
	}
	return fromWire(&w), nil
}

func toWire(ev *Event) *wireEvent {
	w := &wireEvent{Kind: string(ev.Kind), Message: toWireMessage(ev.Message), Receipt: toWireReceipt(ev.Receipt)}
	if t := ev.Typing; t != nil {
		w.Typing = &wireTyping{UserID: t.UserID, RoomID: t.RoomID, RecipientID: t.RecipientID, IsTyping: t.IsTyping}
	}
	if p := ev.Presence; p != nil {
		w.Presence = &wirePresence{UserID: p.UserID, Online: p.Online}
	}
	if r := ev.Room; r != nil {
		w.Room = &wireRoomEvent{Type: string(r.Type), Room: toWireRoom(r.Room), UserID: r.UserID}
	}
	if i := ev.Inval; i != nil {
		w.Inval = &wireInvalidation{What: i.What, Key: i.Key, More: i.More}
	}
	if k := ev.KeyChange; k != nil {
		w.KeyChange = &wireKeyChange{UserID: k.UserID, Kind: string(k.Kind)}
	}
	for _, rc := range ev.Receipts {
		w.Receipts = append(w.Receipts, toWireReceipt(rc))
	}
	return w
}

func fromWire(w *wireEvent) *Event {
	ev := &Event{Kind: Kind(w.Kind), Message: fromWireMessage(w.Message), Receipt: fromWireReceipt(w.Receipt)}
	if t := w.Typing; t != nil {
		ev.Typing = &models.TypingEvent{UserID: t.UserID, RoomID: t.RoomID, RecipientID: t.RecipientID, IsTyping: t.IsTyping}
	}
	if p := w.Presence; p != nil {
		ev.Presence = &models.PresenceEvent{UserID: p.UserID, Online: p.Online}
	}
	if r := w.Room; r != nil {
		ev.Room = &models.RoomEvent{Type: models.RoomEventType(r.Type), Room: fromWireRoom(r.Room), UserID: r.UserID}
	}
	if i := w.Inval; i != nil {
		ev.Inval = &Invalidation{What: i.What, Key: i.Key, More: i.More}
	}
	if k := w.KeyChange; k != nil {
		ev.KeyChange = &models.KeyChange{UserID: k.UserID, Kind: models.KeyChangeKind(k.Kind)}
	}
	for _, rc := range w.Receipts {
		ev.Receipts = append(ev.Receipts, fromWireReceipt(rc))
	}
	return ev
}

func toWireMessage(m *models.Message) *wireMessage {
	if m == nil {
		return nil
	}
	w := &wireMessage{
		ID: m.ID, Conversation: m.Conversation, RoomID: m.RoomID, SenderID: m.SenderID, RecipientID: m.RecipientID,
		Ciphertext: m.CipherBytes, Nonce: m.NonceBytes, AttachmentID: m.AttachmentID, ContentHash: m.ContentHash,
		CreatedAt: m.CreatedAt.Time, DeletedAt: toWireTime(m.DeletedAt),
		Sender: toWireUser(m.Sender), Room: toWireRoom(m.RoomRef), Recipient: toWireUser(m.RecipientRef),
		Signature: m.SignatureBytes, KeyDigests: m.KeyDigestBytes,
	}
	if m.Version > 1 {
		w.Version = m.Version
	}
	for _, k := range m.Keys {
		w.Keys = append(w.Keys, &wireRecipientKey{
			MessageID: k.MessageID, UserID: k.UserID, KeyID: k.KeyID, KEMCiphertext: k.KEMBytes, WrappedKey: k.WrappedBytes,
			ReadAt: toWireTime(k.ReadAt),
		})
	}
	return w
}

func fromWireMessage(w *wireMessage) *models.Message {
	if w == nil {
		return nil
	}
	m := &models.Message{
		ID: w.ID, Conversation: w.Conversation, RoomID: w.RoomID, SenderID: w.SenderID, RecipientID: w.RecipientID,
		CipherBytes: w.Ciphertext, NonceBytes: w.Nonce, AttachmentID: w.AttachmentID, ContentHash: w.ContentHash,
		CreatedAt: models.Time{Time: w.CreatedAt}, DeletedAt: fromWireTime(w.DeletedAt),
		Sender: fromWireUser(w.Sender), RoomRef: fromWireRoom(w.Room), RecipientRef: fromWireUser(w.Recipient),
		Version: max(w.Version, 1), SignatureBytes: w.Signature, KeyDigestBytes: w.KeyDigests,
	}
	for _, k := range w.Keys {
		m.Keys = append(m.Keys, &models.RecipientKey{
			MessageID: k.MessageID, UserID: k.UserID, KeyID: k.KeyID, KEMBytes: k.KEMCiphertext, WrappedBytes: k.WrappedKey,
			ReadAt: fromWireTime(k.ReadAt),
		})
	}
	return m
}

func toWireReceipt(r *models.ReadReceipt) *wireReceipt {
	if r == nil {
		return nil
	}
	return &wireReceipt{MessageID: r.MessageID, Conversation: r.Conversation, RoomID: r.RoomID, UserID: r.UserID, ReadAt: r.ReadAt.Time}
}

func fromWireReceipt(w *wireReceipt) *models.ReadReceipt {
	if w == nil {
		return nil
	}
	return &models.ReadReceipt{MessageID: w.MessageID, Conversation: w.Conversation, RoomID: w.RoomID, UserID: w.UserID, ReadAt: models.Time{Time: w.ReadAt}}
}

func toWireUser(u *models.User) *wireUser {
	if u == nil {
		return nil
	}
	return &wireUser{ID: u.ID, Username: u.Username, UsernameKey: u.UsernameKey, CurrentKeyID: u.CurrentKeyID, CreatedAt: u.CreatedAt.Time}
}

func fromWireUser(w *wireUser) *models.User {
	if w == nil {
		return nil
	}
	return &models.User{ID: w.ID, Username: w.Username, UsernameKey: w.UsernameKey, CurrentKeyID: w.CurrentKeyID, CreatedAt: models.Time{Time: w.CreatedAt}}
}

func toWireRoom(r *models.Room) *wireRoom {
	if r == nil {
		return nil
	}
	return &wireRoom{ID: r.ID, Name: r.Name, IsGroup: r.IsGroup, Code: r.Code, OwnerID: r.OwnerID, CreatedAt: r.CreatedAt.Time}
}

func fromWireRoom(w *wireRoom) *models.Room {
	if w == nil {
		return nil
	}
	return &models.Room{ID: w.ID, Name: w.Name, IsGroup: w.IsGroup, Code: w.Code, OwnerID: w.OwnerID, CreatedAt: models.Time{Time: w.CreatedAt}}
}

func toWireTime(t *models.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

func fromWireTime(t *time.Time) *models.Time {
	if t == nil {
		return nil
	}
	return &models.Time{Time: *t}
}
