package server_test

import (
	"testing"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
)

const roomFields = `id name isGroup code memberCount myRole owner { id } members { role user { id username } }`

type roomOut struct {
	ID, Name, Code, MyRole string
	IsGroup                bool
	MemberCount            int
	Owner                  *struct{ ID string }
	Members                []struct {
		Role string
		User struct{ ID, Username string }
	}
}

func createRoom(t *testing.T, srv *qchattest.Server, owner *qchattest.User, name string, members ...*qchattest.User) roomOut {
	t.Helper()
	ids := []string{}
	for _, m := range members {
		ids = append(ids, m.ID)
	}
	var out struct{ CreateRoom roomOut }
	srv.MustDo(t, owner.Token, `mutation($in: CreateRoomInput!) { createRoom(input: $in) { `+roomFields+` } }`,
		map[string]any{"in": map[string]any{"name": name, "memberIds": ids}}, &out)
	return out.CreateRoom
}

func TestRooms(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "alice")
		bob := srv.Register(t, "bob")
		carol := srv.Register(t, "carol")
		dave := srv.Register(t, "dave")

		room := createRoom(t, srv, alice, "  Plans  ", bob)
		if room.Name != "Plans" || !room.IsGroup || room.MemberCount != 2 || room.MyRole != "OWNER" || room.Owner.ID != alice.ID || len(room.Code) != 8 {
			t.Fatalf("created %+v", room)
		}
		vars := map[string]any{"r": room.ID}

		t.Run("preview and join by code", func(t *testing.T) {
			var p struct {
				RoomPreview struct {
					ID, Name    string
					MemberCount int
				}
			}
			srv.MustDo(t, carol.Token, `query($c: String!) { roomPreview(code: $c) { id name memberCount } }`, map[string]any{"c": room.Code}, &p)
			if p.RoomPreview.ID != room.ID || p.RoomPreview.MemberCount != 2 {
				t.Fatalf("preview %+v", p)
			}
			var j struct{ JoinRoom roomOut }
			srv.MustDo(t, carol.Token, `mutation($c: String!) { joinRoom(code: $c) { `+roomFields+` } }`, map[string]any{"c": room.Code}, &j)
			if j.JoinRoom.MemberCount != 3 || j.JoinRoom.MyRole != "MEMBER" {
				t.Fatalf("joined %+v", j.JoinRoom)
			}
			if r := srv.Do(t, carol.Token, `mutation($c: String!) { joinRoom(code: $c) { id } }`, map[string]any{"c": room.Code}); r.Code() != "CONFLICT" {
				t.Fatalf("second join: %q", r.Code())
			}
		})

		t.Run("non-members see nothing", func(t *testing.T) {
			queries := []string{
				`query($r: ID!) { room(id: $r) { id } }`,
				`mutation($r: ID!) { updateRoom(roomId: $r, name: "x") { id } }`,
				`mutation($r: ID!) { deleteRoom(roomId: $r) }`,
				`mutation($r: ID!) { rotateRoomCode(roomId: $r) { id } }`,
				`mutation($r: ID!) { leaveRoom(roomId: $r) }`,
				`mutation($r: ID!) { setTyping(roomId: $r, isTyping: true) }`,
			}
			for _, q := range queries {
				if r := srv.Do(t, dave.Token, q, vars); r.Code() != "NOT_FOUND" {
					t.Errorf("%s: code %q, want NOT_FOUND", q, r.Code())
				}
			}
			var mine struct{ MyRooms []struct{ ID string } }
			srv.MustDo(t, dave.Token, `{ myRooms { id } }`, nil, &mine)
			if len(mine.MyRooms) != 0 {
				t.Fatalf("dave's rooms %+v", mine)
			}
		})

		t.Run("roles", func(t *testing.T) {
			add := `mutation($r: ID!, $u: ID!) { addRoomMember(roomId: $r, userId: $u) { memberCount } }`
			if r := srv.Do(t, bob.Token, add, map[string]any{"r": room.ID, "u": dave.ID}); r.Code() != "FORBIDDEN" {
				t.Fatalf("member adding: %q", r.Code())
			}
			if r := srv.Do(t, bob.Token, `mutation($r: ID!) { updateRoom(roomId: $r, name: "x") { id } }`, vars); r.Code() != "FORBIDDEN" {
				t.Fatalf("member renaming: %q", r.Code())
			}
			if r := srv.Do(t, bob.Token, `mutation($r: ID!) { deleteRoom(roomId: $r) }`, vars); r.Code() != "FORBIDDEN" {
				t.Fatalf("member deleting: %q", r.Code())
			}
			if r := srv.Do(t, bob.Token, `mutation($r: ID!, $u: ID!) { removeRoomMember(roomId: $r, userId: $u) { id } }`, map[string]any{"r": room.ID, "u": carol.ID}); r.Code() != "FORBIDDEN" {
				t.Fatalf("member removing another: %q", r.Code())
			}
			srv.MustDo(t, alice.Token, `mutation($r: ID!, $u: ID!) { setMemberRole(roomId: $r, userId: $u, role: ADMIN) { id } }`, map[string]any{"r": room.ID, "u": bob.ID}, nil)
			var added struct{ AddRoomMember struct{ MemberCount int } }
			srv.MustDo(t, bob.Token, add, map[string]any{"r": room.ID, "u": dave.ID}, &added)
			if added.AddRoomMember.MemberCount != 4 {
				t.Fatalf("after add %+v", added)
			}
			if r := srv.Do(t, bob.Token, add, map[string]any{"r": room.ID, "u": dave.ID}); r.Code() != "CONFLICT" {
				t.Fatalf("adding twice: %q", r.Code())
			}
			if r := srv.Do(t, bob.Token, add, map[string]any{"r": room.ID, "u": "00000000-0000-4000-8000-000000000000"}); r.Code() != "NOT_FOUND" {
				t.Fatalf("adding unknown user: %q", r.Code())
			}
			// An admin may remove a plain member, not the owner.
			if r := srv.Do(t, bob.Token, `mutation($r: ID!, $u: ID!) { removeRoomMember(roomId: $r, userId: $u) { id } }`, map[string]any{"r": room.ID, "u": alice.ID}); r.Code() != "FORBIDDEN" {
				t.Fatalf("admin removing owner: %q", r.Code())
			}
			var rm struct{ RemoveRoomMember struct{ MemberCount int } }
			srv.MustDo(t, bob.Token, `mutation($r: ID!, $u: ID!) { removeRoomMember(roomId: $r, userId: $u) { memberCount } }`, map[string]any{"r": room.ID, "u": dave.ID}, &rm)
			if rm.RemoveRoomMember.MemberCount != 3 {
				t.Fatalf("after remove %+v", rm)
			}
			if r := srv.Do(t, dave.Token, `query($r: ID!) { room(id: $r) { id } }`, vars); r.Code() != "NOT_FOUND" {
				t.Fatalf("removed member still sees the room: %q", r.Code())
			}
		})

		t.Run("owner actions", func(t *testing.T) {
			var rn struct{ UpdateRoom struct{ Name string } }
			srv.MustDo(t, alice.Token, `mutation($r: ID!) { updateRoom(roomId: $r, name: "Renamed") { name } }`, vars, &rn)
			if rn.UpdateRoom.Name != "Renamed" {
				t.Fatalf("rename %+v", rn)
			}
			if r := srv.Do(t, alice.Token, `mutation($r: ID!) { updateRoom(roomId: $r, name: "   ") { name } }`, vars); r.Code() != "BAD_USER_INPUT" {
				t.Fatalf("blank name: %q", r.Code())
			}
			var rc struct{ RotateRoomCode struct{ Code string } }
			srv.MustDo(t, alice.Token, `mutation($r: ID!) { rotateRoomCode(roomId: $r) { code } }`, vars, &rc)
			if rc.RotateRoomCode.Code == room.Code || len(rc.RotateRoomCode.Code) != 8 {
				t.Fatalf("rotated code %q (was %q)", rc.RotateRoomCode.Code, room.Code)
			}
			if r := srv.Do(t, dave.Token, `query($c: String!) { roomPreview(code: $c) { id } }`, map[string]any{"c": room.Code}); r.Code() != "NOT_FOUND" {
				t.Fatalf("old code still works: %q", r.Code())
			}
			if r := srv.Do(t, dave.Token, `{ roomPreview(code: "bad") { id } }`, nil); r.Code() != "BAD_USER_INPUT" {
				t.Fatalf("malformed code: %q", r.Code())
			}
		})

		t.Run("owner leaving hands the room on", func(t *testing.T) {
			r2 := createRoom(t, srv, carol, "Handover", alice, bob)
			srv.MustDo(t, carol.Token, `mutation($r: ID!, $u: ID!) { setMemberRole(roomId: $r, userId: $u, role: ADMIN) { id } }`, map[string]any{"r": r2.ID, "u": bob.ID}, nil)
			var left struct{ LeaveRoom bool }
			srv.MustDo(t, carol.Token, `mutation($r: ID!) { leaveRoom(roomId: $r) }`, map[string]any{"r": r2.ID}, &left)
			var got struct{ Room roomOut }
			srv.MustDo(t, bob.Token, `query($r: ID!) { room(id: $r) { `+roomFields+` } }`, map[string]any{"r": r2.ID}, &got)
			if got.Room.Owner == nil || got.Room.Owner.ID != bob.ID || got.Room.MyRole != "OWNER" || got.Room.MemberCount != 2 {
				t.Fatalf("after owner left: %+v", got.Room)
			}
		})

		t.Run("private rooms hold two", func(t *testing.T) {
			var out struct{ CreateRoom roomOut }
			srv.MustDo(t, alice.Token, `mutation($in: CreateRoomInput!) { createRoom(input: $in) { `+roomFields+` } }`,
				map[string]any{"in": map[string]any{"name": "pair", "isGroup": false, "memberIds": []string{bob.ID}}}, &out)
			if out.CreateRoom.IsGroup {
				t.Fatal("isGroup true")
			}
			if r := srv.Do(t, carol.Token, `mutation($c: String!) { joinRoom(code: $c) { id } }`, map[string]any{"c": out.CreateRoom.Code}); r.Code() != "CONFLICT" {
				t.Fatalf("third person joining a private room: %q", r.Code())
			}
			if r := srv.Do(t, alice.Token, `mutation($in: CreateRoomInput!) { createRoom(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"name": "trio", "isGroup": false, "memberIds": []string{bob.ID, carol.ID}}}); r.Code() != "BAD_USER_INPUT" {
				t.Fatalf("private room of three: %q", r.Code())
			}
		})

		t.Run("delete", func(t *testing.T) {
			var del struct{ DeleteRoom bool }
			srv.MustDo(t, alice.Token, `mutation($r: ID!) { deleteRoom(roomId: $r) }`, vars, &del)
			if r := srv.Do(t, bob.Token, `query($r: ID!) { room(id: $r) { id } }`, vars); r.Code() != "NOT_FOUND" {
				t.Fatalf("deleted room: %q", r.Code())
			}
		})
	})
}
