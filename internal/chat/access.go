package chat

import (
	"context"
	"errors"

	"github.com/vikstrous/dataloadgen"

	"github.com/qchat/qchat/models"
)

// IsMissing says whether err means that a looked-up object does not exist.
func IsMissing(err error) bool {
	return errors.Is(err, dataloadgen.ErrNotFound) || errors.Is(err, models.ErrNotFound)
}

// Membership returns the caller's membership of a room; a room the caller is
// not in is NOT_FOUND, whether it exists or not.
func (s *Service) Membership(ctx context.Context, roomID, userID string) (*models.RoomMember, error) {
	if err := checkID("roomId", roomID); err != nil {
		return nil, err
	}
	m, err := s.store.Membership(ctx, roomID, userID)
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return nil, models.NotFound("room")
		}
		return nil, err
	}
	return m, nil
}

// IsMember answers from a short-lived cache; used on every live event.
func (s *Service) IsMember(ctx context.Context, roomID, userID string) bool {
	key := memberKey(roomID, userID)
	if ok, hit := s.members.GetIfPresent(key); hit {
		return ok
	}
	_, err := s.store.Membership(ctx, roomID, userID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return false // fail closed; do not cache a transient error
	}
	s.members.Set(key, err == nil)
	return err == nil
}

// forgetMembers drops the cached memberships of users in roomID, here and on
// every other instance.
func (s *Service) forgetMembers(ctx context.Context, roomID string, users ...string) {
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = memberKey(roomID, u)
	}
	s.invalidate(ctx, "member", keys...)
}

// canRead says whether userID may read message m.
func (s *Service) canRead(ctx context.Context, m *models.Message, userID string) bool {
	if m.RoomID != nil {
		return s.IsMember(ctx, *m.RoomID, userID)
	}
	return m.SenderID == userID || (m.RecipientID != nil && *m.RecipientID == userID)
}

// audience lists the users who see events of a conversation.
func (s *Service) audience(ctx context.Context, m *models.Message) ([]string, error) {
	if m.RoomID == nil {
		ids := []string{m.SenderID}
		if m.RecipientID != nil && *m.RecipientID != m.SenderID {
			ids = append(ids, *m.RecipientID)
		}
		return ids, nil
	}
	return s.roomAudience(ctx, *m.RoomID)
}

func (s *Service) roomAudience(ctx context.Context, roomID string) ([]string, error) {
	// The cached recipient set: typing notices and receipts go out on every
	// keystroke and read, and membership changes invalidate it first.
	rs, err := s.roomRecipients(ctx, roomID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(rs))
	for i, m := range rs {
		ids[i] = m.UserID
	}
	return ids, nil
}
