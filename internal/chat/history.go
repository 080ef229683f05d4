package chat

import (
	"context"
	"fmt"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/models"
)

// connection builds a page of history.
func connection(ms []*models.Message, more bool) *models.MessageConnection {
	c := &models.MessageConnection{Edges: make([]*models.MessageEdge, len(ms)), PageInfo: &models.PageInfo{HasNextPage: more}}
	for i, m := range ms {
		c.Edges[i] = &models.MessageEdge{Cursor: db.EncodeCursor(m), Node: m}
	}
	if len(ms) > 0 {
		end := c.Edges[len(ms)-1].Cursor
		c.PageInfo.EndCursor = &end
	}
	return c
}

func (s *Service) history(ctx context.Context, u *models.User, conversation string, first *int, after *string) (*models.MessageConnection, error) {
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	var cur *db.Cursor
	if after != nil && *after != "" {
		c, err := db.DecodeCursor(*after)
		if err != nil {
			return nil, err
		}
		cur = &c
	}
	ms, more, err := s.store.History(ctx, conversation, u.ID, cur, n)
	if err != nil {
		return nil, err
	}
	if err := s.Present(ctx, u.ID, ms...); err != nil {
		return nil, err
	}
	return connection(ms, more), nil
}

// Present fills what the Message fields read from memory (sender, room or
// recipient, and viewerID's own key) for messages about to be returned to
// viewerID: users and rooms from the caches, the keys that no event carried
// in one query. The fields are plain struct fields rather than resolvers,
// because gqlgen runs each resolver field in a goroutine of its own: four per
// message of a history page, or per subscriber of an event.
func (s *Service) Present(ctx context.Context, viewerID string, ms ...*models.Message) error {
	var pairs []db.MessageUser
	for _, m := range ms {
		if err := s.fillRefs(ctx, m); err != nil {
			return err
		}
		switch {
		case m.Deleted():
			m.Mine = nil
		case m.Keys != nil:
			m.Mine = m.KeyFor(viewerID)
		default:
			pairs = append(pairs, db.MessageUser{MessageID: m.ID, UserID: viewerID})
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	keys, err := s.store.RecipientKeys(ctx, pairs)
	if err != nil {
		return err
	}
	byMessage := index(keys, func(k *models.RecipientKey) string { return k.MessageID })
	for _, m := range ms {
		if !m.Deleted() && m.Keys == nil {
			m.Mine = byMessage[m.ID]
		}
	}
	return nil
}

// fillRefs sets a message's sender and its room or recipient from the caches.
func (s *Service) fillRefs(ctx context.Context, m *models.Message) error {
	var err error
	if m.Sender == nil {
		if m.Sender, err = s.UserRef(ctx, m.SenderID); err != nil {
			return fmt.Errorf("sender of message %s: %w", m.ID, err)
		}
	}
	switch {
	case m.RoomID != nil && m.RoomRef == nil:
		m.RoomRef, err = s.roomRef(ctx, *m.RoomID)
	case m.RecipientID != nil && m.RecipientRef == nil:
		m.RecipientRef, err = s.UserRef(ctx, *m.RecipientID)
	}
	if err != nil {
		return fmt.Errorf("room or recipient of message %s: %w", m.ID, err)
	}
	return nil
}

// forReader is a subscriber's shallow copy of an event's message, with its
// own key; the message itself is shared by every subscriber.
func forReader(m *models.Message, userID string) *models.Message {
	c := *m
	c.Mine = nil
	if !m.Deleted() {
		c.Mine = m.KeyFor(userID)
	}
	return &c
}

// RoomMessages is a page of a room's history for a member; NOT_FOUND for
// anyone else.
func (s *Service) RoomMessages(ctx context.Context, u *models.User, roomID string, first *int, after *string) (*models.MessageConnection, error) {
	if !s.IsMember(ctx, roomID, u.ID) {
		return nil, models.NotFound("room")
	}
	return s.history(ctx, u, roomID, first, after)
}

// DirectMessages is a page of the direct conversation between u and another
// user.
func (s *Service) DirectMessages(ctx context.Context, u *models.User, withUserID string, first *int, after *string) (*models.MessageConnection, error) {
	if err := checkID("withUserId", withUserID); err != nil {
		return nil, err
	}
	if _, err := s.store.UserByID(ctx, withUserID); err != nil {
		return nil, err
	}
	return s.history(ctx, u, db.DirectConversation(u.ID, withUserID), first, after)
}
