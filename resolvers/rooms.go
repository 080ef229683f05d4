package resolvers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
)

func (r *Resolver) createRoom(ctx context.Context, u *models.User, in models.CreateRoomInput) (*models.Room, error) {
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
	found, err := r.store.UsersByIDs(ctx, ids)
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
		err = r.store.CreateRoom(ctx, room, members)
		if err == nil || !errors.Is(err, models.ErrConflict) || attempt == 4 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	r.forgetMembers(ctx, room.ID, append(ids, u.ID)...)
	// Each added member hears of the room once, in an event naming itself.
	// An event per member to every member would cost each of them as many
	// events as the room has members: enough, from one call, to overflow
	// their subscribers' buffers and end their subscriptions.
	snapshot := *room
	for _, id := range ids {
		uid := id
		r.publish(ctx, []string{uid}, &broker.Event{Kind: broker.RoomChanged, Room: &models.RoomEvent{Type: models.RoomEventTypeMemberJoined, Room: &snapshot, UserID: &uid}})
	}
	r.security(ctx, slog.LevelInfo, "room_created", "room_id", room.ID)
	return room, nil
}

func (r *Resolver) joinRoom(ctx context.Context, u *models.User, code string) (*models.Room, error) {
	code, err := normalizeCode(code)
	if err != nil {
		return nil, err
	}
	room, err := r.store.RoomByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	limit, full := roomLimit(room)
	m := &models.RoomMember{RoomID: room.ID, UserID: u.ID, Role: models.RoomRoleMember, JoinedAt: models.Now()}
	if err := r.store.AddMemberIfRoom(ctx, m, limit, full); err != nil {
		return nil, err
	}
	r.forgetMembers(ctx, room.ID, u.ID)
	r.security(ctx, slog.LevelInfo, "member_joined", "room_id", room.ID)
	r.publishRoomEvent(ctx, models.RoomEventTypeMemberJoined, room, &u.ID)
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
func (r *Resolver) roomAs(ctx context.Context, u *models.User, roomID string) (*models.Room, *models.RoomMember, error) {
	m, err := r.membership(ctx, roomID, u.ID)
	if err != nil {
		return nil, nil, err
	}
	room, err := r.store.RoomByID(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	return room, m, nil
}

func (r *Resolver) addMember(ctx context.Context, u *models.User, roomID, userID string) (*models.Room, error) {
	room, m, err := r.roomAs(ctx, u, roomID)
	if err != nil {
		return nil, err
	}
	if m.Role != models.RoomRoleOwner && m.Role != models.RoomRoleAdmin {
		r.security(ctx, slog.LevelWarn, "forbidden", "room_id", roomID, "action", "addRoomMember")
		return nil, models.Forbidden("only the owner or an admin can add members")
	}
	if err := checkID("userId", userID); err != nil {
		return nil, err
	}
	if _, err := r.store.UserByID(ctx, userID); err != nil {
		return nil, err
	}
	limit, full := roomLimit(room)
	nm := &models.RoomMember{RoomID: roomID, UserID: userID, Role: models.RoomRoleMember, JoinedAt: models.Now()}
	if err := r.store.AddMemberIfRoom(ctx, nm, limit, full); err != nil {
		return nil, err
	}
	r.forgetMembers(ctx, roomID, userID)
	r.security(ctx, slog.LevelInfo, "member_added", "room_id", roomID, "member_id", userID)
	r.publishRoomEvent(ctx, models.RoomEventTypeMemberJoined, room, &userID)
	return room, nil
}

func (r *Resolver) removeMember(ctx context.Context, u *models.User, roomID, userID string) (*models.Room, error) {
	room, m, err := r.roomAs(ctx, u, roomID)
	if err != nil {
		return nil, err
	}
	if err := checkID("userId", userID); err != nil {
		return nil, err
	}
	if userID != u.ID {
		target, err := r.store.Membership(ctx, roomID, userID)
		if err != nil {
			return nil, err
		}
		switch {
		case m.Role == models.RoomRoleOwner:
		case m.Role == models.RoomRoleAdmin && target.Role == models.RoomRoleMember:
		default:
			r.security(ctx, slog.LevelWarn, "forbidden", "room_id", roomID, "action", "removeRoomMember")
			return nil, models.Forbidden("only the owner, or an admin for plain members, can remove others")
		}
	}
	deleted, err := r.store.RemoveMember(ctx, roomID, userID)
	if err != nil {
		return nil, err
	}
	r.forgetMembers(ctx, roomID, userID)
	r.security(ctx, slog.LevelInfo, "member_removed", "room_id", roomID, "member_id", userID)
	if deleted {
		r.publishRoomEvent(ctx, models.RoomEventTypeDeleted, room, nil, userID)
		return room, nil
	}
	fresh, err := r.store.RoomByID(ctx, roomID)
	if err != nil {
		return nil, err
	}
	// The removed user hears of it too, through its own topic.
	r.publishRoomEvent(ctx, models.RoomEventTypeMemberLeft, fresh, &userID, userID)
	return fresh, nil
}

func (r *Resolver) ownedRoom(ctx context.Context, u *models.User, roomID, action string) (*models.Room, error) {
	room, m, err := r.roomAs(ctx, u, roomID)
	if err != nil {
		return nil, err
	}
	if m.Role != models.RoomRoleOwner {
		r.security(ctx, slog.LevelWarn, "forbidden", "room_id", roomID, "action", action)
		return nil, models.Forbidden("only the room's owner can %s", action)
	}
	return room, nil
}

func (r *Resolver) renameRoom(ctx context.Context, u *models.User, roomID, name string) (*models.Room, error) {
	room, err := r.ownedRoom(ctx, u, roomID, "rename it")
	if err != nil {
		return nil, err
	}
	if name, err = checkRoomName(name); err != nil {
		return nil, err
	}
	if err := r.store.RenameRoom(ctx, roomID, name); err != nil {
		return nil, err
	}
	room.Name = name
	r.invalidate(ctx, "room", roomID)
	r.publishRoomEvent(ctx, models.RoomEventTypeRenamed, room, &u.ID)
	return room, nil
}

func (r *Resolver) deleteRoom(ctx context.Context, u *models.User, roomID string) error {
	room, err := r.ownedRoom(ctx, u, roomID, "delete it")
	if err != nil {
		return err
	}
	audience, err := r.roomAudience(ctx, roomID)
	if err != nil {
		return err
	}
	if err := r.store.DeleteRoom(ctx, roomID); err != nil {
		return err
	}
	r.invalidate(ctx, "room", roomID)
	r.forgetMembers(ctx, roomID, audience...)
	r.security(ctx, slog.LevelInfo, "room_deleted", "room_id", roomID)
	r.publishRoomEvent(ctx, models.RoomEventTypeDeleted, room, &u.ID, audience...)
	return nil
}

func (r *Resolver) rotateCode(ctx context.Context, u *models.User, roomID string) (*models.Room, error) {
	room, err := r.ownedRoom(ctx, u, roomID, "rotate its code")
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		code, err := newRoomCode()
		if err != nil {
			return nil, err
		}
		err = r.store.SetRoomCode(ctx, roomID, code)
		if err == nil {
			room.Code = code
			r.invalidate(ctx, "room", roomID)
			break
		}
		if !errors.Is(err, models.ErrConflict) || attempt == 4 {
			return nil, err
		}
	}
	r.publishRoomEvent(ctx, models.RoomEventTypeCodeRotated, room, &u.ID)
	return room, nil
}

func (r *Resolver) setRole(ctx context.Context, u *models.User, roomID, userID string, role models.RoomRole) (*models.Room, error) {
	room, err := r.ownedRoom(ctx, u, roomID, "change roles")
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
	if err := r.store.SetRole(ctx, roomID, userID, role); err != nil {
		return nil, err
	}
	r.security(ctx, slog.LevelInfo, "role_changed", "room_id", roomID, "member_id", userID, "role", role)
	r.publishRoomEvent(ctx, models.RoomEventTypeRoleChanged, room, &userID)
	return room, nil
}
