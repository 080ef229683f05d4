package chat

import (
	"context"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
)

// Events subscribes to the topic of userID: every event published to the
// user is handed to deliver, until ctx ends, deliver returns false or the
// broker drops a subscriber that fell behind; then end is called (see
// broker.Broker's SubscribeFunc). What each subscription may deliver of
// them is decided by the filters below, called from deliver: in the
// broker's goroutine for the subscription, which runs while events wait.
func (s *Service) Events(ctx context.Context, userID string, deliver func(*broker.Event) bool, end func()) error {
	return s.broker.SubscribeFunc(ctx, broker.UserTopic(userID), deliver, end)
}

// The filters re-check membership on every event: the event was addressed
// when it was published, and the reader may have left the room since.

// AddedMessage is the message of a MessageAdded event as userID may see it,
// with its own key, or ok=false. roomFilter (nil: every conversation) is the
// subscription's roomId.
func (s *Service) AddedMessage(ctx context.Context, ev *broker.Event, userID string, roomFilter *string) (*models.Message, bool) {
	if ev.Kind != broker.MessageAdded || !inRoom(roomFilter, ev.Message.RoomID) || !s.canRead(ctx, ev.Message, userID) {
		return nil, false
	}
	return forReader(ev.Message, userID), true
}

// DeletedMessage is the id of a MessageDeleted event userID may see, or
// ok=false.
func (s *Service) DeletedMessage(ctx context.Context, ev *broker.Event, userID string, roomFilter *string) (string, bool) {
	if ev.Kind != broker.MessageDeleted || !inRoom(roomFilter, ev.Message.RoomID) {
		return "", false
	}
	return ev.Message.ID, s.canRead(ctx, ev.Message, userID)
}

// TypingNotice is the notice of a Typing event userID may see, or ok=false.
func (s *Service) TypingNotice(ctx context.Context, ev *broker.Event, userID string, roomFilter *string) (*models.TypingEvent, bool) {
	if ev.Kind != broker.Typing || !inRoom(roomFilter, ev.Typing.RoomID) {
		return nil, false
	}
	if ev.Typing.RoomID != nil && !s.IsMember(ctx, *ev.Typing.RoomID, userID) {
		return nil, false
	}
	return ev.Typing, true
}

// Receipts yields the receipts of a Receipt event userID may see, one by
// one: one markRead is one event for each reader, however many messages it
// marked. yield returns false to stop; Receipts then returns false.
func (s *Service) Receipts(ctx context.Context, ev *broker.Event, userID string, roomFilter *string, yield func(*models.ReadReceipt) bool) bool {
	if ev.Kind != broker.Receipt {
		return true
	}
	for rc := range ev.AllReceipts() {
		if !inRoom(roomFilter, rc.RoomID) || (rc.RoomID != nil && !s.IsMember(ctx, *rc.RoomID, userID)) {
			continue
		}
		if !yield(rc) {
			return false
		}
	}
	return true
}

// RoomEvent is the room event of an event, if it is one: room events are
// addressed to exactly the users who may see them.
func RoomEvent(ev *broker.Event) (*models.RoomEvent, bool) {
	return ev.Room, ev.Kind == broker.RoomChanged
}

// KeyChangeEvent is the key change of an event, if it is one: key changes
// are addressed to the changed user's contacts only.
func KeyChangeEvent(ev *broker.Event) (*models.KeyChange, bool) {
	return ev.KeyChange, ev.Kind == broker.KeyChanged
}

// PresenceEvent is the presence change of an event, if it is one: presence
// is addressed to the user's contacts only.
func PresenceEvent(ev *broker.Event) (*models.PresenceEvent, bool) {
	return ev.Presence, ev.Kind == broker.Presence
}
