package models

// TypingEvent says a user started or stopped typing in a room or to a user.
type TypingEvent struct {
	UserID      string  `json:"userId"`
	RoomID      *string `json:"roomId,omitempty"`
	RecipientID *string `json:"recipientId,omitempty"`
	IsTyping    bool    `json:"isTyping"`
}

// ReadReceipt says a user read a message.
type ReadReceipt struct {
	MessageID    string  `json:"messageId"`
	Conversation string  `json:"conversation"`
	RoomID       *string `json:"roomId,omitempty"`
	UserID       string  `json:"userId"`
	ReadAt       Time    `json:"readAt"`
}

// PresenceEvent says a user came online or went offline.
type PresenceEvent struct {
	UserID string `json:"userId"`
	Online bool   `json:"online"`
}

// KeyChange says a user changed keys.
type KeyChange struct {
	UserID string        `json:"userId"`
	Kind   KeyChangeKind `json:"kind"`
}

// RoomEvent is a change to a room. Room is a snapshot taken when the event
// happened, so that DELETED still describes the room.
type RoomEvent struct {
	Type   RoomEventType `json:"type"`
	Room   *Room         `json:"room"`
	UserID *string       `json:"userId,omitempty"`
}
