package chat

import (
	"context"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/models"
)

// pageArgs checks a paged field's first (nil: def) and after.
func pageArgs(first *int, def int, after *string) (int, *db.Cursor, error) {
	n := def
	if first != nil {
		if *first < 1 || *first > maxPageSize {
			return 0, nil, models.Invalid("first: must be between 1 and %d", maxPageSize)
		}
		n = *first
	}
	if after == nil || *after == "" {
		return n, nil, nil
	}
	c, err := db.DecodeCursor(*after)
	if err != nil {
		return 0, nil, err
	}
	return n, &c, nil
}

// pageInfo is the PageInfo of a page whose last edge has cursor end.
func pageInfo(more bool, end string) *models.PageInfo {
	pi := &models.PageInfo{HasNextPage: more}
	if end != "" {
		pi.EndCursor = &end
	}
	return pi
}

// edges builds the edges of a page and its PageInfo; mk makes one edge from
// an item and its cursor.
func edges[T, E any](items []T, more bool, cursor func(T) db.Cursor, mk func(cursor string, item T) E) ([]E, *models.PageInfo) {
	es := make([]E, len(items))
	end := ""
	for i, it := range items {
		end = cursor(it).String()
		es[i] = mk(end, it)
	}
	return es, pageInfo(more, end)
}

// MyRooms is a page of u's rooms.
func (s *Service) MyRooms(ctx context.Context, u *models.User, first *int, after *string) (*models.RoomConnection, error) {
	n, cur, err := pageArgs(first, defaultPage, after)
	if err != nil {
		return nil, err
	}
	rooms, more, err := s.store.RoomsPage(ctx, u.ID, cur, n)
	if err != nil {
		return nil, err
	}
	es, pi := edges(rooms, more, db.JoinedRoom.Cursor, func(c string, jr db.JoinedRoom) *models.RoomEdge {
		return &models.RoomEdge{Cursor: c, Node: jr.Room}
	})
	return &models.RoomConnection{Edges: es, PageInfo: pi}, nil
}

// RoomMembers is a page of a room's members.
func (s *Service) RoomMembers(ctx context.Context, roomID string, first *int, after *string) (*models.RoomMemberConnection, error) {
	n, cur, err := pageArgs(first, maxPageSize, after)
	if err != nil {
		return nil, err
	}
	ms, more, err := s.store.MembersPage(ctx, roomID, cur, n)
	if err != nil {
		return nil, err
	}
	es, pi := edges(ms, more, db.MemberCursor, func(c string, m *models.RoomMember) *models.RoomMemberEdge {
		return &models.RoomMemberEdge{Cursor: c, Node: m}
	})
	return &models.RoomMemberConnection{Edges: es, PageInfo: pi}, nil
}

// RoomDocuments is a page of a room's documents for a member; NOT_FOUND for
// anyone else.
func (s *Service) RoomDocuments(ctx context.Context, u *models.User, roomID string, first *int, after *string) (*models.DocumentConnection, error) {
	n, cur, err := pageArgs(first, defaultPage, after)
	if err != nil {
		return nil, err
	}
	if !s.IsMember(ctx, roomID, u.ID) {
		return nil, models.NotFound("room")
	}
	ds, more, err := s.store.DocumentsPage(ctx, roomID, cur, n)
	if err != nil {
		return nil, err
	}
	es, pi := edges(ds, more, db.DocumentCursor, func(c string, d *models.Document) *models.DocumentEdge {
		return &models.DocumentEdge{Cursor: c, Node: d}
	})
	return &models.DocumentConnection{Edges: es, PageInfo: pi}, nil
}

// defaultKeysPage is keysConnection's default first.
const defaultKeysPage = 20

// UserKeys is a page of a user's public keys.
func (s *Service) UserKeys(ctx context.Context, userID string, first *int, after *string) (*models.PublicKeyConnection, error) {
	n, cur, err := pageArgs(first, defaultKeysPage, after)
	if err != nil {
		return nil, err
	}
	ks, more, err := s.store.KeysPage(ctx, userID, cur, n)
	if err != nil {
		return nil, err
	}
	es, pi := edges(ks, more, db.KeyCursor, func(c string, k *models.PublicKey) *models.PublicKeyEdge {
		return &models.PublicKeyEdge{Cursor: c, Node: k}
	})
	return &models.PublicKeyConnection{Edges: es, PageInfo: pi}, nil
}

// Conversations lists the caller's conversations with their unread counts
// and newest messages: three queries a page (the list, the counts, the
// messages) whatever its length.
func (s *Service) Conversations(ctx context.Context, u *models.User, first *int, after *string) (*models.ConversationConnection, error) {
	n, cur, err := pageArgs(first, defaultPage, after)
	if err != nil {
		return nil, err
	}
	cs, more, err := s.store.ConversationsPage(ctx, u.ID, cur, n)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(cs))
	var lastIDs []string
	for i, c := range cs {
		keys[i] = c.Key
		if c.LastMessageID != nil {
			lastIDs = append(lastIDs, *c.LastMessageID)
		}
	}
	unread, err := s.store.UnreadCounts(ctx, u.ID, keys)
	if err != nil {
		return nil, err
	}
	last, err := s.store.MessagesByIDs(ctx, lastIDs)
	if err != nil {
		return nil, err
	}
	if err := s.Present(ctx, u.ID, last...); err != nil {
		return nil, err
	}
	byID := index(last, func(m *models.Message) string { return m.ID })
	for _, c := range cs {
		c.UnreadCount = unread[c.Key]
		if c.LastMessageID != nil {
			c.LastMessage = byID[*c.LastMessageID]
		}
	}
	es, pi := edges(cs, more, db.ConversationCursor, func(cursor string, c *models.Conversation) *models.ConversationEdge {
		return &models.ConversationEdge{Cursor: cursor, Node: c}
	})
	return &models.ConversationConnection{Edges: es, PageInfo: pi}, nil
}
