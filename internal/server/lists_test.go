package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// seedUsers stores n users with the public key pub (of alg) directly, far
// faster than registering them; every one gets a key id of its own.
func seedUsers(t *testing.T, s *db.Store, n int, alg models.KeyAlgorithm, pub []byte) []*models.User {
	return seedSignedUsers(t, s, n, alg, pub, nil)
}

// seedSignedUsers is seedUsers for version 2 users: with ik as every one's
// identity key and pub certified by it (seq 1), so that a client seals to
// them.
func seedSignedUsers(t *testing.T, s *db.Store, n int, alg models.KeyAlgorithm, pub []byte, ik *pqcrypto.IdentityKey) []*models.User {
	t.Helper()
	var cert []byte
	if ik != nil {
		var err error
		if cert, err = pqcrypto.CertifyKEMKey(ik, pqcrypto.Algorithm(alg), 1, pub); err != nil {
			t.Fatal(err)
		}
	}
	us := make([]*models.User, n)
	for i := range us {
		u := &models.User{ID: uuid.NewString(), Username: fmt.Sprintf("seed%s", uuid.NewString()[:8]), PasswordHash: []byte("x"), CreatedAt: models.Now()}
		k := &models.PublicKey{ID: uuid.NewString(), Algorithm: alg, KeyBytes: pub, Fingerprint: pqcrypto.Fingerprint(pub), CreatedAt: models.Now()}
		var idk *models.IdentityKey
		if ik != nil {
			seq := 1
			k.SignatureBytes, k.Seq = cert, &seq
			idk = &models.IdentityKey{ID: uuid.NewString(), KeyBytes: ik.PublicKey(), Fingerprint: pqcrypto.Fingerprint(ik.PublicKey()), CreatedAt: models.Now()}
		}
		if err := s.CreateUserWithIdentity(t.Context(), u, k, idk); err != nil {
			t.Fatal(err)
		}
		us[i] = u
	}
	return us
}

func addMembers(t *testing.T, s *db.Store, roomID string, us []*models.User) {
	t.Helper()
	for _, u := range us {
		m := &models.RoomMember{RoomID: roomID, UserID: u.ID, Role: models.RoomRoleMember, JoinedAt: models.Now()}
		if err := s.AddMemberIfRoom(t.Context(), m, 0, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// bodySizes records the size of every JSON request a client sends.
type bodySizes struct {
	mu  sync.Mutex
	max int
}

func (b *bodySizes) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		b.max = max(b.max, len(raw))
		b.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(raw))
	}
	return http.DefaultTransport.RoundTrip(r)
}

// The largest legitimate request is a sendMessage to a full room of X-Wing
// members (the largest KEM ciphertext) with the largest message ciphertext
// and an attachment. Sent by the SDK through the real handler, it must
// succeed and leave a fifth of the body and websocket frame limits spare,
// so that the room cap and the size limits cannot drift apart. A join past
// the cap is refused, saying so.
func TestFullRoomWorstCaseSendFits(t *testing.T) {
	ctx := context.Background()
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	kp, err := pqcrypto.GenerateKeyPair(pqcrypto.XWing, nil)
	if err != nil {
		t.Fatal(err)
	}
	sizes := &bodySizes{}
	alice, err := client.New(srv.URL, client.WithHTTPClient(&http.Client{Transport: sizes}))
	if err != nil {
		t.Fatal(err)
	}
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := alice.Register(ctx, "alice", "password-alice", ik, kp)
	if err != nil {
		t.Fatal(err)
	}
	kr := client.Keyring{s.User.PublicKey.Id: kp}
	room, err := alice.CreateRoom(ctx, "full", true)
	if err != nil {
		t.Fatal(err)
	}
	// Every member shares alice's public key (their key ids differ), so that
	// the SDK really encapsulates to each.
	addMembers(t, srv.Store, room.Id, seedSignedUsers(t, srv.Store, models.MaxRoomMembers-1, models.KeyAlgorithmXWing, kp.PublicKey, ik))

	late := srv.Register(t, "late")
	r := srv.Do(t, late.Token, `mutation($c: String!) { joinRoom(code: $c) { id } }`, map[string]any{"c": room.Code})
	want := fmt.Sprintf("room is full: it holds the maximum of %d members", models.MaxRoomMembers)
	if r.Code() != "CONFLICT" || r.Errors[0].Message != want {
		t.Fatalf("join of a full room: %+v, want CONFLICT %q", r.Errors, want)
	}
	r = srv.Do(t, s.Token, `mutation($r: ID!, $u: ID!) { addRoomMember(roomId: $r, userId: $u) { id } }`, map[string]any{"r": room.Id, "u": late.ID})
	if r.Code() != "CONFLICT" || r.Errors[0].Message != want {
		t.Fatalf("add to a full room: %+v, want CONFLICT %q", r.Errors, want)
	}

	doc, err := alice.UploadDocument(ctx, client.InRoom(room.Id), "a.txt", "text/plain", []byte("attached"))
	if err != nil {
		t.Fatalf("upload to a full room: %v", err)
	}
	sizes.max = 0
	text := bytes.Repeat([]byte("x"), models.MaxMessageCiphertext-16) // the GCM tag makes it the maximum
	m, err := alice.Send(ctx, client.InRoom(room.Id), text, client.SendOptions{AttachmentID: doc.Id})
	if err != nil {
		t.Fatalf("worst-case send to a full room: %v", err)
	}
	if got := alice.Decrypt(ctx, m, kr); got.Err != nil || len(got.Plaintext) != len(text) || !got.Signed {
		t.Fatalf("the sender cannot open its own message: %v", got.Err)
	}
	// Over a websocket the same request travels in a graphql-transport-ws
	// subscribe message: {"id":"…","type":"subscribe","payload":…}.
	const frameOverhead = 64
	body := sizes.max
	t.Logf("worst-case sendMessage: %d bytes (%.0f%% of the body limit)", body, 100*float64(body)/graph.DefaultMaxBodySize)
	if limit := graph.DefaultMaxBodySize * 4 / 5; body > limit {
		t.Errorf("a worst-case sendMessage is %d bytes, over 80%% of the %d-byte body limit: lower models.MaxRoomMembers", body, graph.DefaultMaxBodySize)
	}
	if limit := graph.DefaultWSReadLimit * 4 / 5; body+frameOverhead > limit {
		t.Errorf("a worst-case sendMessage frame is %d bytes, over 80%% of the %d-byte frame limit", body+frameOverhead, graph.DefaultWSReadLimit)
	}

	r = srv.Do(t, s.Token, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"id": uuid.NewString(), "roomId": room.Id, "nonce": pqcrypto.EncodeB64(make([]byte, 12)), "keys": []any{},
		"ciphertext": pqcrypto.EncodeB64(make([]byte, models.MaxMessageCiphertext+1)),
		"signature":  pqcrypto.EncodeB64(make([]byte, pqcrypto.SignatureSize)),
	}})
	if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "ciphertext: at most") {
		t.Errorf("ciphertext over the maximum: %+v", r.Errors)
	}
}

// Issue 14's attack: every member of every room, with keys, for a user in
// many rooms. Each plain list is priced by its cap, so the operation is
// refused before it runs, whatever the user's rooms hold.
func TestMembersOfEveryRoomRefused(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	alice := srv.Register(t, "alice")
	for i := range 3 {
		createRoom(t, srv, alice, fmt.Sprintf("room %d", i))
	}
	r := srv.Do(t, alice.Token, `{ myRooms { members { user { id username publicKey { key } } } } }`, nil)
	if r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" || len(r.Data) > 0 && string(r.Data) != "null" {
		t.Fatalf("attack query: data %s errors %+v", r.Data, r.Errors)
	}
	// The connections are the way to the same data, a page at a time.
	var ok struct {
		MyRoomsConnection struct {
			Edges []struct {
				Node struct {
					MembersConnection struct {
						Edges []struct {
							Node struct{ User struct{ ID string } }
						}
					}
				}
			}
		}
	}
	srv.MustDo(t, alice.Token, `{ myRoomsConnection(first: 10) { edges { node { membersConnection(first: 10) { edges { node { user { id username publicKey { key } } } } } } } } }`, nil, &ok)
	if len(ok.MyRoomsConnection.Edges) != 3 || ok.MyRoomsConnection.Edges[0].Node.MembersConnection.Edges[0].Node.User.ID != alice.ID {
		t.Fatalf("paged rooms and members: %+v", ok)
	}
}

type pageOut struct {
	Edges []struct {
		Cursor string
		Node   struct{ ID string }
	}
	PageInfo struct {
		HasNextPage bool
		EndCursor   *string
	}
}

// follow pages through a connection at path in data (first n) and returns
// the node ids in order; query takes $first and $after.
func follow(t *testing.T, srv *qchattest.Server, token, query string, vars map[string]any, n int, pick func(data []byte) pageOut) []string {
	t.Helper()
	var ids []string
	var after any
	for range 100 {
		v := map[string]any{"first": n, "after": after}
		for k, x := range vars {
			v[k] = x
		}
		r := srv.Do(t, token, query, v)
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", query, r.Errors)
		}
		p := pick(r.Data)
		if len(p.Edges) > n || (p.PageInfo.HasNextPage && len(p.Edges) != n) {
			t.Fatalf("page of %d, hasNextPage %v, for first %d", len(p.Edges), p.PageInfo.HasNextPage, n)
		}
		for _, e := range p.Edges {
			ids = append(ids, e.Node.ID)
		}
		if !p.PageInfo.HasNextPage {
			return ids
		}
		if p.PageInfo.EndCursor == nil || *p.PageInfo.EndCursor != p.Edges[len(p.Edges)-1].Cursor {
			t.Fatalf("endCursor %v is not the last edge's cursor", p.PageInfo.EndCursor)
		}
		after = *p.PageInfo.EndCursor
	}
	t.Fatal("paging does not end")
	return nil
}

// Each plain list answers at most its cap; its connection pages through
// everything, with first and after checked.
func TestListCapsAndConnections(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		ctx := t.Context()
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "alice")
		me, err := store.UserByID(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		// MaxListedRooms+1 rooms, documents and keys: one past each cap.
		var room *models.Room
		for range models.MaxListedRooms + 1 {
			room = &models.Room{ID: uuid.NewString(), Name: "r", IsGroup: true, Code: strings.ToUpper(uuid.NewString()[:8]), OwnerID: me.ID, CreatedAt: models.Now()}
			if err := store.CreateRoom(ctx, room, []*models.RoomMember{{RoomID: room.ID, UserID: me.ID, Role: models.RoomRoleOwner, JoinedAt: models.Now()}}); err != nil {
				t.Fatal(err)
			}
		}
		for range models.MaxListedDocuments + 1 {
			d := &models.Document{ID: uuid.NewString(), Conversation: room.ID, RoomID: &room.ID, UploaderID: me.ID,
				Name: "f", MimeType: "text/plain", NonceBytes: make([]byte, 12), CreatedAt: models.Now()}
			if err := store.InsertDocument(ctx, d, nil); err != nil {
				t.Fatal(err)
			}
		}
		for range models.MaxListedKeys {
			pk, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
			if err != nil {
				t.Fatal(err)
			}
			k := &models.PublicKey{ID: uuid.NewString(), Algorithm: models.KeyAlgorithmMlKem768, KeyBytes: pk.PublicKey, Fingerprint: "f", CreatedAt: models.Now()}
			if err := store.RotateKey(ctx, me.ID, k); err != nil {
				t.Fatal(err)
			}
		}
		addMembers(t, store, room.ID, seedUsers(t, store, 4, models.KeyAlgorithmMlKem768, []byte{1}))

		var plain struct {
			MyRooms []struct{ ID string }
			Me      struct{ Keys []struct{ ID string } }
			Room    struct {
				Documents []struct{ ID string }
				Members   []struct{ Role string }
			}
		}
		srv.MustDo(t, alice.Token, `query($r: ID!) { myRooms { id } me { keys { id } } room(id: $r) { documents { id } members { role } } }`,
			map[string]any{"r": room.ID}, &plain)
		if len(plain.MyRooms) != models.MaxListedRooms || len(plain.Me.Keys) != models.MaxListedKeys ||
			len(plain.Room.Documents) != models.MaxListedDocuments || len(plain.Room.Members) != 5 {
			t.Fatalf("plain lists: %d rooms, %d keys, %d documents, %d members", len(plain.MyRooms), len(plain.Me.Keys), len(plain.Room.Documents), len(plain.Room.Members))
		}

		const edges = `edges { cursor node { id } } pageInfo { hasNextPage endCursor }`
		pick := func(path ...string) func([]byte) pageOut {
			return func(data []byte) pageOut {
				var v any
				decodeJSON(t, data, &v)
				for _, p := range path {
					v = v.(map[string]any)[p]
				}
				var p pageOut
				decodeJSON(t, mustJSON(t, v), &p)
				return p
			}
		}
		rooms := follow(t, srv, alice.Token, `query($first: Int, $after: String) { myRoomsConnection(first: $first, after: $after) { `+edges+` } }`,
			nil, 40, pick("myRoomsConnection"))
		if len(rooms) != models.MaxListedRooms+1 || rooms[0] != room.ID {
			t.Errorf("myRoomsConnection: %d rooms, first %s (want %d, newest %s)", len(rooms), rooms[0], models.MaxListedRooms+1, room.ID)
		}
		docs := follow(t, srv, alice.Token, `query($r: ID!, $first: Int, $after: String) { room(id: $r) { documentsConnection(first: $first, after: $after) { `+edges+` } } }`,
			map[string]any{"r": room.ID}, 30, pick("room", "documentsConnection"))
		if len(docs) != models.MaxListedDocuments+1 {
			t.Errorf("documentsConnection: %d documents", len(docs))
		}
		keys := follow(t, srv, alice.Token, `query($first: Int, $after: String) { me { keysConnection(first: $first, after: $after) { `+edges+` } } }`,
			nil, 20, pick("me", "keysConnection"))
		if len(keys) != models.MaxListedKeys+1 || keys[len(keys)-1] != alice.KeyID {
			t.Errorf("keysConnection: %d keys, oldest %s (want %d, oldest %s)", len(keys), keys[len(keys)-1], models.MaxListedKeys+1, alice.KeyID)
		}
		var members struct {
			Room struct {
				MembersConnection struct {
					Edges []struct {
						Node struct{ User struct{ ID string } }
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
		}
		srv.MustDo(t, alice.Token, `query($r: ID!) { room(id: $r) { membersConnection(first: 3) { edges { node { user { id } } } pageInfo { hasNextPage endCursor } } } }`,
			map[string]any{"r": room.ID}, &members)
		mc := members.Room.MembersConnection
		if len(mc.Edges) != 3 || !mc.PageInfo.HasNextPage || mc.Edges[0].Node.User.ID != alice.ID {
			t.Fatalf("first members page: %+v", mc)
		}
		srv.MustDo(t, alice.Token, `query($r: ID!, $a: String) { room(id: $r) { membersConnection(first: 3, after: $a) { edges { node { user { id } } } pageInfo { hasNextPage endCursor } } } }`,
			map[string]any{"r": room.ID, "a": mc.PageInfo.EndCursor}, &members)
		if mc := members.Room.MembersConnection; len(mc.Edges) != 2 || mc.PageInfo.HasNextPage {
			t.Fatalf("second members page: %+v", mc)
		}

		for _, tc := range []struct{ name, query string }{
			{"first 0", `{ myRoomsConnection(first: 0) { edges { cursor } } }`},
			{"first over 100", `{ conversations(first: 101) { edges { cursor } } }`},
			{"negative first", `{ me { keysConnection(first: -1) { edges { cursor } } } }`},
			{"not a cursor", `{ conversations(after: "%%%") { edges { cursor } } }`},
		} {
			if r := srv.Do(t, alice.Token, tc.query, nil); r.Code() != "BAD_USER_INPUT" {
				t.Errorf("%s: %+v", tc.name, r.Errors)
			}
		}
	})
}

// A room that is not a group holds two people, under joins at the same
// time too.
func TestDirectRoomHoldsTwo(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "alice")
		var out struct{ CreateRoom struct{ Code string } }
		srv.MustDo(t, alice.Token, `mutation { createRoom(input: { name: "pair", isGroup: false }) { code } }`, nil, &out)
		joiners := make([]*qchattest.User, 6)
		for i := range joiners {
			joiners[i] = srv.Register(t, fmt.Sprintf("joiner%d", i))
		}
		var wg sync.WaitGroup
		codes := make([]string, len(joiners))
		for i, u := range joiners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := srv.Do(t, u.Token, `mutation($c: String!) { joinRoom(code: $c) { id } }`, map[string]any{"c": out.CreateRoom.Code})
				codes[i] = r.Code()
				if r.Code() == "CONFLICT" && r.Errors[0].Message != "room is full: a room that is not a group holds two people" {
					t.Errorf("message %q", r.Errors[0].Message)
				}
			}()
		}
		wg.Wait()
		joined := 0
		for _, c := range codes {
			switch c {
			case "":
				joined++
			case "CONFLICT":
			default:
				t.Errorf("join: %s", c)
			}
		}
		if joined != 1 {
			t.Fatalf("%d joined a two-person room: %v", joined, codes)
		}
	})
}

func decodeJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
