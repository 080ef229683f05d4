package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
)

// CreateRoom makes a room owned by u with the given members.
func (s *Service) CreateRoom(ctx context.Context, u *models.User, in models.CreateRoomInput) (*models.Room, error) {
	name, err := checkRoomName(in.Name)
	if err != nil {
		return nil, err
	}
	isGroup := in.IsGroup == nil || *in.IsGroup
	if err := checkIDs("memberIds", in.MemberIds, maxRoomMembers); err != nil {
		return nil, err
	}
	others := map[string]bool{}
	for _, id := range in.MemberIds {
		if id != u.ID {
			others[id] = true
		}
	}
	if !isGroup && len(others) > 1 {
		return nil, models.Invalid("memberIds: a room that is not a group holds two people")
	}
	if len(others)+1 > maxRoomMembers {
		return nil, models.Invalid("memberIds: a room holds at most %d members, its creator included", maxRoomMembers)
	}
	ids := make([]string, 0, len(others))
	for id := range others {
		ids = append(ids, id)
	}
	found, err := s.store.UsersByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	if len(found) != len(ids) {
		known := index(found, func(u *models.User) string { return u.ID })
		for _, id := range ids {
			if known[id] == nil {
				return nil, models.Invalid("memberIds: no user %s", id)
			}
		}
	}
	now := models.Now()
	room := &models.Room{ID: newID(), Name: name, IsGroup: isGroup, OwnerID: u.ID, CreatedAt: now}
	members := []*models.RoomMember{{RoomID: room.ID, UserID: u.ID, Role: models.RoomRoleOwner, JoinedAt: now}}
	for _, id := range ids {
		members = append(members, &models.RoomMember{RoomID: room.ID, UserID: id, Role: models.RoomRoleMember, JoinedAt: now})
	}
	// A fresh code can collide with an existing one: try a few.
	for attempt := 0; ; attempt++ {
		if room.Code, err = newRoomCode(); err != nil {
			return nil, err
		}
		err = s.store.CreateRoom(ctx, room, members)
		if err == nil || !errors.Is(err, models.ErrConflict) || attempt == 4 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	s.forgetMembers(ctx, room.ID, append(ids, u.ID)...)
	// Each added member hears of the room once, in an event naming itself.
	// An event per member to every member would cost each of them as many
	// events as the room has members: enough, from one call, to overflow
	// their subscribers' buffers and end their subscriptions.
	snapshot := *room
	for _, id := range ids {
		uid := id
		s.publish(ctx, []string{uid}, &broker.Event{Kind: broker.RoomChanged, Room: &models.RoomEvent{Type: models.RoomEventTypeMemberJoined, Room: &snapshot, UserID: &uid}})
	}
	s.Security(ctx, slog.LevelInfo, "room_created", "room_id", room.ID)
	return room, nil
}

// JoinRoom adds u to the room of an invite code.
func (s *Service) JoinRoom(ctx context.Context, u *models.User, code string) (*models.Room, error) {
	room, err := s.roomByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	limit, full := roomLimit(room)
	m := &models.RoomMember{RoomID: room.ID, UserID: u.ID, Role: models.RoomRoleMember, JoinedAt: models.Now()}
	if err := s.store.AddMemberIfRoom(ctx, m, limit, full); err != nil {
		return nil, err
	}
	s.forgetMembers(ctx, room.ID, u.ID)
	s.Security(ctx, slog.LevelInfo, "member_joined", "room_id", room.ID)
	s.publishRoomEvent(ctx, models.RoomEventTypeMemberJoined, room, &u.ID)
	return room, nil
}

// roomLimit is the most members room may hold, and the message of the
// CONFLICT that refuses one more.
func roomLimit(room *models.Room) (int, string) {
	if !room.IsGroup {
		return 2, "room is full: a room that is not a group holds two people"
	}
	return maxRoomMembers, fmt.Sprintf("room is full: it holds the maximum of %d members", maxRoomMembers)
}

// roomAs loads a room the caller is in together with the caller's membership.
func (s *Service) roomAs(ctx context.Context, u *models.User, roomID string) (*models.Room, *models.RoomMember, error) {
	m, err := s.Membership(ctx, roomID, u.ID)
	if err != nil {
		return nil, nil, err
	}
	room, err := s.store.RoomByID(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	return room, m, nil
}

// AddMember adds a user to a room; the owner or an admin may.
func (s *Service) AddMember(ctx context.Context, u *models.User, roomID, userID string) (*models.Room, error) {
	room, m, err := s.roomAs(ctx, u, roomID)
	if err != nil {
		return nil, err
	}
	if m.Role != models.RoomRoleOwner && m.Role != models.RoomRoleAdmin {
		s.Security(ctx, slog.LevelWarn, "forbidden", "room_id", roomID, "action", "addRoomMember")
		return nil, models.Forbidden("only the owner or an admin can add members")
	}
	if err := checkID("userId", userID); err != nil {
		return nil, err
	}
	if _, err := s.store.UserByID(ctx, userID); err != nil {
		return nil, err
	}
	limit, full := roomLimit(room)
	nm := &models.RoomMember{RoomID: roomID, UserID: userID, Role: models.RoomRoleMember, JoinedAt: models.Now()}
	if err := s.store.AddMemberIfRoom(ctx, nm, limit, full); err != nil {
		return nil, err
	}
	s.forgetMembers(ctx, roomID, userID)
	s.Security(ctx, slog.LevelInfo, "member_added", "room_id", roomID, "member_id", userID)
	s.publishRoomEvent(ctx, models.RoomEventTypeMemberJoined, room, &userID)
	return room, nil
}

// RemoveMember removes a user from a room: oneself always, others by the
// owner, plain members by an admin too.
func (s *Service) RemoveMember(ctx context.Context, u *models.User, roomID, userID string) (*models.Room, error) {
	room, m, err := s.roomAs(ctx, u, roomID)
	if err != nil {
		return nil, err
	}
	if err := checkID("userId", userID); err != nil {
		return nil, err
	}
	if userID != u.ID {
		target, err := s.store.Membership(ctx, roomID, userID)
		if err != nil {
			return nil, err
		}
		switch {
		case m.Role == models.RoomRoleOwner:
		case m.Role == models.RoomRoleAdmin && target.Role == models.RoomRoleMember:
		default:
			s.Security(ctx, slog.LevelWarn, "forbidden", "room_id", roomID, "action", "removeRoomMember")
			return nil, models.Forbidden("only the owner, or an admin for plain members, can remove others")
		}
	}
	deleted, err := s.store.RemoveMember(ctx, roomID, userID)
	if err != nil {
		return nil, err
	}
	s.forgetMembers(ctx, roomID, userID)
	s.Security(ctx, slog.LevelInfo, "member_removed", "room_id", roomID, "member_id", userID)
	if deleted {
		s.publishRoomEvent(ctx, models.RoomEventTypeDeleted, room, nil, userID)
		return room, nil
	}
	fresh, err := s.store.RoomByID(ctx, roomID)
	if err != nil {
		return nil, err
	}
	// The removed user hears of it too, through its own topic.
	s.publishRoomEvent(ctx, models.RoomEventTypeMemberLeft, fresh, &userID, userID)
	return fresh, nil
}

func (s *Service) ownedRoom(ctx context.Context, u *models.User, roomID, action string) (*models.Room, error) {
	room, m, err := s.roomAs(ctx, u, roomID)
	if err != nil {
		return nil, err
	}
	if m.Role != models.RoomRoleOwner {
		s.Security(ctx, slog.LevelWarn, "forbidden", "room_id", roomID, "action", action)
		return nil, models.Forbidden("only the room's owner can %s", action)
	}
	return room, nil
}

// RenameRoom renames a room; only its owner may.
func (s *Service) RenameRoom(ctx context.Context, u *models.User, roomID, name string) (*models.Room, error) {
	room, err := s.ownedRoom(ctx, u, roomID, "rename it")
	if err != nil {
		return nil, err
	}
	if name, err = checkRoomName(name); err != nil {
		return nil, err
	}
	if err := s.store.RenameRoom(ctx, roomID, name); err != nil {
		return nil, err
	}
	room.Name = name
	s.invalidate(ctx, "room", roomID)
	s.publishRoomEvent(ctx, models.RoomEventTypeRenamed, room, &u.ID)
	return room, nil
}

// DeleteRoom deletes a room; only its owner may.
func (s *Service) DeleteRoom(ctx context.Context, u *models.User, roomID string) error {
	room, err := s.ownedRoom(ctx, u, roomID, "delete it")
	if err != nil {
		return err
	}
	audience, err := s.roomAudience(ctx, roomID)
	if err != nil {
		return err
	}
	if err := s.store.DeleteRoom(ctx, roomID); err != nil {
		return err
	}
	s.invalidate(ctx, "room", roomID)
	s.forgetMembers(ctx, roomID, audience...)
	s.Security(ctx, slog.LevelInfo, "room_deleted", "room_id", roomID)
	s.publishRoomEvent(ctx, models.RoomEventTypeDeleted, room, &u.ID, audience...)
	return nil
}

// RotateCode gives a room a new invite code; only its owner may.
func (s *Service) RotateCode(ctx context.Context, u *models.User, roomID string) (*models.Room, error) {
	room, err := s.ownedRoom(ctx, u, roomID, "rotate its code")
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		code, err := newRoomCode()
		if err != nil {
			return nil, err
		}
		err = s.store.SetRoomCode(ctx, roomID, code)
		if err == nil {
			room.Code = code
			s.invalidate(ctx, "room", roomID)
			break
		}
		if !errors.Is(err, models.ErrConflict) || attempt == 4 {
			return nil, err
		}
	}
	s.publishRoomEvent(ctx, models.RoomEventTypeCodeRotated, room, &u.ID)
	return room, nil
}

// SetRole makes a member an admin or a plain member; only the owner may.
func (s *Service) SetRole(ctx context.Context, u *models.User, roomID, userID string, role models.RoomRole) (*models.Room, error) {
	room, err := s.ownedRoom(ctx, u, roomID, "change roles")
	if err != nil {
		return nil, err
	}
	if err := checkID("userId", userID); err != nil {
		return nil, err
	}
	if role != models.RoomRoleAdmin && role != models.RoomRoleMember {
		return nil, models.Invalid("role: must be ADMIN or MEMBER")
	}
	if userID == u.ID {
		return nil, models.Invalid("userId: the owner's role cannot change")
	}
	if err := s.store.SetRole(ctx, roomID, userID, role); err != nil {
		return nil, err
	}
	s.Security(ctx, slog.LevelInfo, "role_changed", "room_id", roomID, "member_id", userID, "role", role)
	s.publishRoomEvent(ctx, models.RoomEventTypeRoleChanged, room, &userID)
	return room, nil
}

// Room loads a room u is in; any other is NOT_FOUND.
func (s *Service) Room(ctx context.Context, u *models.User, id string) (*models.Room, error) {
	if _, err := s.Membership(ctx, id, u.ID); err != nil {
		return nil, err
	}
	return s.store.RoomByID(ctx, id)
}

// RoomList is u's rooms, as many as a plain list holds.
func (s *Service) RoomList(ctx context.Context, u *models.User) ([]*models.Room, error) {
	rooms, _, err := s.store.RoomsPage(ctx, u.ID, nil, models.MaxListedRooms)
	if err != nil {
		return nil, err
	}
	out := make([]*models.Room, len(rooms))
	for i, jr := range rooms {
		out[i] = jr.Room
	}
	return out, nil
}

// roomByCode finds the room of an invite code as a person typed it.
func (s *Service) roomByCode(ctx context.Context, code string) (*models.Room, error) {
	code, err := normalizeCode(code)
	if err != nil {
		return nil, err
	}
	return s.store.RoomByCode(ctx, code)
}

// RoomPreview describes the room of an invite code to someone who may join.
func (s *Service) RoomPreview(ctx context.Context, code string) (*models.RoomPreview, error) {
	room, err := s.roomByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	n, err := s.store.MemberCounts(ctx, []string{room.ID})
	if err != nil {
		return nil, err
	}
	return &models.RoomPreview{ID: room.ID, Name: room.Name, IsGroup: room.IsGroup, MemberCount: n[room.ID]}, nil
}

// Members is a room's members, batched per response; at most the cap: a room
// made before the cap was lowered may hold more, and the list is priced by
// the cap (membersConnection has all).
func (s *Service) Members(ctx context.Context, roomID string) ([]*models.RoomMember, error) {
	ms, err := s.Loaders(ctx).Members().Load(ctx, roomID)
	return ms[:min(len(ms), maxRoomMembers)], err
}

// MemberCount is the number of a room's members.
func (s *Service) MemberCount(ctx context.Context, roomID string) (int, error) {
	ms, err := s.Loaders(ctx).Members().Load(ctx, roomID)
	return len(ms), err
}

// Role is u's role in a room; MEMBER once u has left it (a DELETED or
// MEMBER_LEFT event about u).
func (s *Service) Role(ctx context.Context, u *models.User, roomID string) (models.RoomRole, error) {
	ms, err := s.Loaders(ctx).Members().Load(ctx, roomID)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.UserID == u.ID {
			return m.Role, nil
		}
	}
	return models.RoomRoleMember, nil
}
