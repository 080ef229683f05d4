package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/pqcrypto"
)

// person is a test user driving the SDK, with the keyring a real client
// would keep on disk.
type person struct {
	*client.Client
	Self    *client.User
	Keyring client.Keyring
}

func newServer(t *testing.T) *qchattest.Server {
	t.Helper()
	return qchattest.NewServer(t, qchattest.NewSQLite(t))
}

// newHTTP returns an HTTP client of its own, so its idle connections can be
// closed before a goroutine-leak check.
func newHTTP(t *testing.T) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func register(t *testing.T, srv *qchattest.Server, name string, alg pqcrypto.Algorithm, opts ...client.Option) *person {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pqcrypto.GenerateKeyPair(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Register(ctx, name, "password-"+name, ik, kp)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	if s.Token == "" || c.Token() != s.Token {
		t.Fatalf("register %s: token not kept", name)
	}
	return &person{Client: c, Self: &s.User, Keyring: client.Keyring{s.User.PublicKey.Id: kp}}
}

func code(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestAccounts(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	alice := register(t, srv, "alice", pqcrypto.MLKEM768)
	bob := register(t, srv, "bob", pqcrypto.XWing)

	me, err := alice.Me(ctx)
	if err != nil || me.Username != "alice" || me.PublicKey == nil || me.PublicKey.Algorithm != pqcrypto.MLKEM768 {
		t.Fatalf("me = %+v, %v", me, err)
	}
	kp := alice.Keyring[me.PublicKey.Id]
	if got, want := me.PublicKey.Fingerprint, pqcrypto.Fingerprint(kp.PublicKey); got != want {
		t.Errorf("fingerprint %q, want %q", got, want)
	}

	u, err := alice.UserByUsername(ctx, "bob")
	if err != nil || u.Id != bob.Self.Id || u.PublicKey.Algorithm != pqcrypto.XWing {
		t.Fatalf("userByUsername = %+v, %v", u, err)
	}
	if _, err := alice.UserByUsername(ctx, "nobody"); code(err) != client.CodeNotFound {
		t.Errorf("unknown user: %v, want NOT_FOUND", err)
	}
	us, err := alice.Users(ctx, []string{alice.Self.Id, bob.Self.Id})
	if err != nil || len(us) != 2 {
		t.Fatalf("users = %+v, %v", us, err)
	}
	if u, err := bob.User(ctx, alice.Self.Id); err != nil || u.Username != "alice" {
		t.Fatalf("user = %+v, %v", u, err)
	}

	// A second session by password, then logout revokes it.
	c2, _ := client.New(srv.URL)
	if _, err := c2.Login(ctx, "alice", "wrong-password"); code(err) == "" {
		t.Errorf("bad password: %v, want a coded error", err)
	}
	if _, err := c2.Login(ctx, "alice", "password-alice"); err != nil {
		t.Fatal(err)
	}
	tok := c2.Token()
	if err := c2.Logout(ctx); err != nil || c2.Token() != "" {
		t.Fatalf("logout: %v (token %q)", err, c2.Token())
	}
	c3, _ := client.New(srv.URL, client.WithToken(tok))
	if _, err := c3.Me(ctx); code(err) != client.CodeUnauthenticated {
		t.Errorf("revoked token: %v, want UNAUTHENTICATED", err)
	}

	// Rotation keeps every key listed, the new one current.
	kp2, _ := pqcrypto.GenerateKeyPair(pqcrypto.XWing, nil)
	u, err = alice.RotateKey(ctx, kp2)
	if err != nil || u.PublicKey.Algorithm != pqcrypto.XWing || u.PublicKey.Id == me.PublicKey.Id {
		t.Fatalf("rotateKey = %+v, %v", u, err)
	}
	keys, err := bob.UserKeys(ctx, alice.Self.Id)
	if err != nil || len(keys) != 2 || !keys[0].Current || keys[1].Current {
		t.Fatalf("keys = %+v, %v", keys, err)
	}
	old, err := bob.PublicKey(ctx, me.PublicKey.Id)
	if err != nil || old.Current || old.Key != me.PublicKey.Key {
		t.Fatalf("old public key = %+v, %v", old, err)
	}
}

func TestRooms(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	alice := register(t, srv, "alice", pqcrypto.MLKEM768)
	bob := register(t, srv, "bob", pqcrypto.MLKEM768)
	carol := register(t, srv, "carol", pqcrypto.MLKEM768)

	r, err := alice.CreateRoom(ctx, "lab", true)
	if err != nil || r.Name != "lab" || !r.IsGroup || r.MyRole != client.RoomRoleOwner || len(r.Code) != 8 {
		t.Fatalf("createRoom = %+v, %v", r, err)
	}
	p, err := bob.RoomPreview(ctx, r.Code)
	if err != nil || p.Id != r.Id || p.MemberCount != 1 {
		t.Fatalf("preview = %+v, %v", p, err)
	}
	if _, err := bob.Room(ctx, r.Id); code(err) != client.CodeNotFound {
		t.Errorf("room before joining: %v, want NOT_FOUND", err)
	}
	if j, err := bob.JoinRoom(ctx, r.Code); err != nil || j.MyRole != client.RoomRoleMember {
		t.Fatalf("join = %+v, %v", j, err)
	}
	if _, err := bob.RenameRoom(ctx, r.Id, "mine"); code(err) != client.CodeForbidden {
		t.Errorf("rename by a member: %v, want FORBIDDEN", err)
	}
	if _, err := alice.AddRoomMember(ctx, r.Id, carol.Self.Id); err != nil {
		t.Fatal(err)
	}
	ms, err := carol.RoomMembers(ctx, r.Id)
	if err != nil || len(ms) != 3 {
		t.Fatalf("members = %+v, %v", ms, err)
	}
	for _, m := range ms {
		if m.User.PublicKey == nil {
			t.Errorf("member %s without key", m.User.Username)
		}
	}
	if r2, err := alice.SetMemberRole(ctx, r.Id, bob.Self.Id, client.RoomRoleAdmin); err != nil || r2.Id != r.Id {
		t.Fatalf("setMemberRole: %v", err)
	}
	if _, err := bob.RemoveRoomMember(ctx, r.Id, carol.Self.Id); err != nil {
		t.Fatalf("admin removes member: %v", err)
	}
	if r2, err := alice.RenameRoom(ctx, r.Id, "lab 2"); err != nil || r2.Name != "lab 2" {
		t.Fatalf("rename = %+v, %v", r2, err)
	}
	if r2, err := alice.RotateRoomCode(ctx, r.Id); err != nil || r2.Code == r.Code {
		t.Fatalf("rotateRoomCode = %+v, %v", r2, err)
	}
	if rooms, err := bob.MyRooms(ctx); err != nil || len(rooms) != 1 {
		t.Fatalf("myRooms = %+v, %v", rooms, err)
	}
	if err := bob.LeaveRoom(ctx, r.Id); err != nil {
		t.Fatal(err)
	}
	if rooms, err := bob.MyRooms(ctx); err != nil || len(rooms) != 0 {
		t.Fatalf("myRooms after leaving = %+v, %v", rooms, err)
	}
	if err := alice.DeleteRoom(ctx, r.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Room(ctx, r.Id); code(err) != client.CodeNotFound {
		t.Errorf("deleted room: %v, want NOT_FOUND", err)
	}
}

func TestMessagesAndHistory(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	alice := register(t, srv, "alice", pqcrypto.MLKEM768)
	bob := register(t, srv, "bob", pqcrypto.XWing)
	r, err := alice.CreateRoom(ctx, "lab", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, r.Code); err != nil {
		t.Fatal(err)
	}
	room := client.InRoom(r.Id)
	texts := []string{"one", "two", "three", "four", "five"}
	for i, text := range texts {
		sender := alice
		if i%2 == 1 {
			sender = bob
		}
		m, err := sender.SendText(ctx, room, text)
		if err != nil {
			t.Fatalf("send %q: %v", text, err)
		}
		if got := sender.Decrypt(ctx, m, sender.Keyring); got.Err != nil || got.Text() != text || !got.Signed || m.Version != 2 {
			t.Fatalf("sender opens own message: %q, %v, signed %v, version %d", got.Text(), got.Err, got.Signed, m.Version)
		}
	}

	// Page through newest first, two at a time, as bob.
	var got []string
	after := ""
	for range 10 {
		p, err := bob.History(ctx, room, 2, after, bob.Keyring)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Messages {
			if m.Err != nil {
				t.Fatalf("message %s: %v", m.Id, m.Err)
			}
			got = append(got, m.Text())
		}
		if !p.HasNextPage {
			break
		}
		after = p.EndCursor
	}
	if want := "five four three two one"; strings.Join(got, " ") != want {
		t.Errorf("history %q, want %q", strings.Join(got, " "), want)
	}

	// Direct messages both ways; the conversation id differs by direction.
	if _, err := alice.SendText(ctx, client.WithUser(bob.Self.Id), "hi bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendText(ctx, client.WithUser(alice.Self.Id), "hi alice"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []*person{alice, bob} {
		other := bob
		if who == bob {
			other = alice
		}
		p, err := who.History(ctx, client.WithUser(other.Self.Id), 0, "", who.Keyring)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Messages) != 2 || p.Messages[0].Text() != "hi alice" || p.Messages[1].Text() != "hi bob" {
			t.Errorf("%s's direct history: %+v", who.Self.Username, p.Messages)
		}
	}

	// Read, delete, and what a reader without the key sees.
	p, _ := alice.History(ctx, room, 1, "", alice.Keyring)
	last := p.Messages[0]
	if n, err := bob.MarkRead(ctx, last.Id); err != nil || n != 1 {
		t.Fatalf("markRead = %d, %v", n, err)
	}
	if err := bob.DeleteMessage(ctx, last.Id); code(err) != client.CodeForbidden {
		t.Errorf("delete someone else's message: %v, want FORBIDDEN", err)
	}
	if err := alice.DeleteMessage(ctx, last.Id); err != nil {
		t.Fatal(err)
	}
	m, err := bob.Message(ctx, last.Id)
	if err != nil || !m.Deleted {
		t.Fatalf("deleted message = %+v, %v", m, err)
	}
	if _, _, err := client.OpenMessage(m, bob.Keyring, nil); !errors.Is(err, client.ErrDeleted) {
		t.Errorf("open deleted: %v", err)
	}
	p, _ = bob.History(ctx, room, 1, p.EndCursor, client.Keyring{})
	if !errors.Is(p.Messages[0].Err, client.ErrMissingSecretKey) {
		t.Errorf("empty keyring: %v, want ErrMissingSecretKey", p.Messages[0].Err)
	}
	if err := bob.SetTyping(ctx, room, true); err != nil {
		t.Fatal(err)
	}
	if err := bob.SetTyping(ctx, client.Conversation{}, true); err == nil {
		t.Error("typing to no conversation: no error")
	}
}

// rotateOnFirstSend is a RoundTripper that, the first time it sees a
// sendMessage request, runs hook before forwarding it: the recipient's key
// changes between the sender's key fetch and its send, the race the SDK's
// retry exists for.
type rotateOnFirstSend struct {
	next  http.RoundTripper
	hook  func()
	sends atomic.Int32
}

func (r *rotateOnFirstSend) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"operationName":"sendMessage"`)) && r.sends.Add(1) == 1 {
			r.hook()
		}
	}
	return r.next.RoundTrip(req)
}

func TestSendRetriesAfterKeyRotation(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	rt := &rotateOnFirstSend{next: http.DefaultTransport}
	alice := register(t, srv, "alice", pqcrypto.MLKEM768, client.WithHTTPClient(&http.Client{Transport: rt}))
	bob := register(t, srv, "bob", pqcrypto.MLKEM768)
	r, _ := alice.CreateRoom(ctx, "lab", true)
	if _, err := bob.JoinRoom(ctx, r.Code); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendText(ctx, client.InRoom(r.Id), "before rotation"); err != nil {
		t.Fatal(err)
	}

	newKey, _ := pqcrypto.GenerateKeyPair(pqcrypto.XWing, nil)
	rt.hook = func() {
		u, err := bob.RotateKey(ctx, newKey)
		if err != nil {
			t.Errorf("rotate: %v", err)
			return
		}
		bob.Keyring[u.PublicKey.Id] = newKey
	}
	if _, err := alice.SendText(ctx, client.InRoom(r.Id), "after rotation"); err != nil {
		t.Fatalf("send across a rotation: %v", err)
	}
	if n := rt.sends.Load(); n != 2 {
		t.Errorf("%d sendMessage requests, want 2 (one rejected as stale, one retry)", n)
	}

	// Bob reads both messages: the old one with his old key, the new one
	// with the new key.
	p, err := bob.History(ctx, client.InRoom(r.Id), 0, "", bob.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 2 || p.Messages[0].Text() != "after rotation" || p.Messages[1].Text() != "before rotation" {
		t.Fatalf("history after rotation: %+v", p.Messages)
	}

	// Without the retry the server's error is typed, with its extensions.
	refused := client.SendMessageInput{Id: "0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f", RoomId: &r.Id,
		Ciphertext: pqcrypto.EncodeB64(make([]byte, 16)), Nonce: pqcrypto.EncodeB64(make([]byte, 12)), Keys: []client.RecipientKeyInput{}}
	refused.SetSignature(pqcrypto.EncodeB64(make([]byte, pqcrypto.SignatureSize))) // the key list is checked first
	_, err = alice.SendMessageRaw(ctx, refused)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != client.CodeBadUserInput || len(ce.StringList("missingUserIds")) != 2 {
		t.Fatalf("empty key list: %#v", err)
	}
}

func TestDocuments(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	alice := register(t, srv, "alice", pqcrypto.MLKEM768)
	bob := register(t, srv, "bob", pqcrypto.XWing)
	r, _ := alice.CreateRoom(ctx, "lab", true)
	if _, err := bob.JoinRoom(ctx, r.Code); err != nil {
		t.Fatal(err)
	}
	pdf := []byte("%PDF-1.4\n% test document\n%%EOF\n")
	d, err := alice.UploadDocument(ctx, client.InRoom(r.Id), "paper.pdf", "application/pdf", pdf)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "paper.pdf" || d.Size != len(pdf)+16 || d.Room == nil || d.Room.Id != r.Id {
		t.Errorf("document = %+v", d)
	}
	for _, who := range []*person{alice, bob} {
		got, data, signed, err := who.DownloadDocument(ctx, d.Id, who.Keyring)
		if err != nil || !bytes.Equal(data, pdf) || got.MimeType != "application/pdf" || !signed || got.Version != 2 {
			t.Fatalf("%s downloads: %q, %v", who.Self.Username, data, err)
		}
	}
	docs, err := bob.RoomDocuments(ctx, r.Id)
	if err != nil || len(docs) != 1 || docs[0].Id != d.Id {
		t.Fatalf("room documents = %+v, %v", docs, err)
	}
	// Attached to a message, in a direct conversation.
	dm, err := bob.UploadDocument(ctx, client.WithUser(alice.Self.Id), "notes.txt", "text/plain", []byte("plain notes"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bob.Send(ctx, client.WithUser(alice.Self.Id), []byte("see attached"), client.SendOptions{AttachmentID: dm.Id})
	if err != nil || m.Attachment == nil || m.Attachment.Id != dm.Id {
		t.Fatalf("send with attachment = %+v, %v", m, err)
	}
	if _, data, signed, err := alice.DownloadDocument(ctx, dm.Id, alice.Keyring); err != nil || string(data) != "plain notes" || !signed {
		t.Fatalf("direct document: %q, %v", data, err)
	}

	if _, err := alice.UploadDocument(ctx, client.InRoom(r.Id), "x.exe", "application/x-msdownload", []byte("MZ")); code(err) != client.CodeBadUserInput {
		t.Errorf("forbidden MIME type: %v, want BAD_USER_INPUT", err)
	}
	outsider := register(t, srv, "eve", pqcrypto.MLKEM768)
	if _, err := outsider.DownloadCiphertext(ctx, d); code(err) != client.CodeNotFound {
		t.Errorf("outsider download: %v, want NOT_FOUND", err)
	}
	if err := bob.DeleteDocument(ctx, d.Id); code(err) != client.CodeForbidden && code(err) != client.CodeNotFound {
		t.Errorf("delete someone else's document: %v", err)
	}
	if err := alice.DeleteDocument(ctx, d.Id); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, events <-chan client.Event, kind client.EventKind) client.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("events closed while waiting for %s", kind)
			}
			if e.Kind == client.EventError {
				t.Fatalf("waiting for %s: %v", kind, e.Err)
			}
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event within 5s", kind)
		}
	}
}

func TestSubscriptions(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	hc := newHTTP(t)
	alice := register(t, srv, "alice", pqcrypto.MLKEM768, client.WithHTTPClient(hc))
	bob := register(t, srv, "bob", pqcrypto.XWing, client.WithHTTPClient(hc))
	r, _ := alice.CreateRoom(ctx, "lab", true)
	room := client.InRoom(r.Id)

	// Everything the subscription starts must be gone once ctx ends.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer hc.CloseIdleConnections()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	aliceEvents, err := alice.Subscribe(sctx, client.MessagesAdded(""), client.Typing(""), client.RoomEvents(), client.MessagesDeleted(r.Id))
	if err != nil {
		t.Fatal(err)
	}
	bobEvents, err := bob.Subscribe(sctx, client.ReadReceipts(""), client.MessagesAdded(""))
	if err != nil {
		t.Fatal(err)
	}
	srv.WaitSubscribers(t, 6)

	if _, err := bob.JoinRoom(ctx, r.Code); err != nil {
		t.Fatal(err)
	}
	if e := next(t, aliceEvents, client.EventRoom); e.Room.Type != client.RoomEventTypeMemberJoined || e.Room.User.Username != "bob" {
		t.Errorf("room event = %+v", e.Room)
	}
	if err := bob.SetTyping(ctx, room, true); err != nil {
		t.Fatal(err)
	}
	if e := next(t, aliceEvents, client.EventTyping); !e.Typing.IsTyping || e.Typing.User.Id != bob.Self.Id {
		t.Errorf("typing = %+v", e.Typing)
	}
	sent, err := bob.SendText(ctx, room, "live from bob")
	if err != nil {
		t.Fatal(err)
	}
	e := next(t, aliceEvents, client.EventMessage)
	if rec := alice.Decrypt(ctx, e.Message, alice.Keyring); rec.Err != nil || rec.Text() != "live from bob" || !rec.Signed {
		t.Fatalf("alice decrypts %q, %v", rec.Text(), rec.Err)
	}
	// myKey in a subscription is the subscriber's own.
	if e := next(t, bobEvents, client.EventMessage); bob.Decrypt(ctx, e.Message, bob.Keyring).Text() != "live from bob" {
		t.Errorf("bob's own copy does not open")
	}
	if _, err := alice.MarkRead(ctx, sent.Id); err != nil {
		t.Fatal(err)
	}
	if e := next(t, bobEvents, client.EventReadReceipt); e.ReadReceipt.MessageId != sent.Id || e.ReadReceipt.User.Id != alice.Self.Id {
		t.Errorf("receipt = %+v", e.ReadReceipt)
	}
	if err := bob.DeleteMessage(ctx, sent.Id); err != nil {
		t.Fatal(err)
	}
	if e := next(t, aliceEvents, client.EventMessageDeleted); e.DeletedMessageID != sent.Id {
		t.Errorf("deleted = %q", e.DeletedMessageID)
	}

	cancel()
	for _, ch := range []<-chan client.Event{aliceEvents, bobEvents} {
		deadline := time.After(5 * time.Second)
	drain:
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					break drain
				}
			case <-deadline:
				t.Fatal("events channel not closed 5s after cancel")
			}
		}
	}
}

func TestSubscribeRejectsBadToken(t *testing.T) {
	srv := newServer(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	hc := newHTTP(t)
	defer hc.CloseIdleConnections()
	c, _ := client.New(srv.URL, client.WithHTTPClient(hc), client.WithToken("not-a-token"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := c.Subscribe(ctx, client.MessagesAdded(""))
	if err == nil {
		// The server may accept the socket and refuse the subscription.
		select {
		case e, ok := <-events:
			if !ok || e.Kind != client.EventError {
				t.Fatalf("bad token: got %+v, want an error", e)
			}
			err = e.Err
		case <-ctx.Done():
			t.Fatal("bad token: nothing happened")
		}
		cancel()
		for range events {
		}
	}
	if c := code(err); c != client.CodeUnauthenticated && c != client.CodeForbidden {
		t.Errorf("bad token: %v, want UNAUTHENTICATED or FORBIDDEN", err)
	}
}

// The list methods page through connections: a room of more members than
// one page is listed whole and every member is sealed for, and the
// conversations list holds rooms and direct conversations with unread
// counts.
func TestListsPageToTheEnd(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	alice := register(t, srv, "alice", pqcrypto.XWing)
	bob := register(t, srv, "bob", pqcrypto.MLKEM768)
	ids := []string{bob.Self.Id}
	for i := range 104 {
		// Through the SDK: every member needs a certified key to be sealed to.
		ids = append(ids, register(t, srv, fmt.Sprintf("member%03d", i), pqcrypto.MLKEM768).Self.Id)
	}
	r, err := alice.CreateRoom(ctx, "big", true, ids...)
	if err != nil || r.MemberCount != 106 {
		t.Fatalf("create room: %+v, %v", r, err)
	}
	ms, err := bob.RoomMembers(ctx, r.Id)
	if err != nil || len(ms) != 106 {
		t.Fatalf("members: %d, %v", len(ms), err)
	}
	// Sealing needs every member's key: a send with one missing is refused.
	if _, err := alice.SendText(ctx, client.InRoom(r.Id), "to all 106"); err != nil {
		t.Fatalf("send to a room of 106: %v", err)
	}
	if _, err := bob.SendText(ctx, client.WithUser(alice.Self.Id), "hi alice"); err != nil {
		t.Fatal(err)
	}
	convs, err := alice.AllConversations(ctx)
	if err != nil || len(convs) != 2 {
		t.Fatalf("conversations: %+v, %v", convs, err)
	}
	if c := convs[0]; c.User == nil || c.User.Id != bob.Self.Id || c.Room != nil || c.UnreadCount != 1 || c.LastMessage == nil {
		t.Errorf("newest conversation: %+v", c)
	}
	if c := convs[1]; c.Room == nil || c.Room.Id != r.Id || c.UnreadCount != 0 {
		t.Errorf("room conversation: %+v", c)
	}
	bobs, err := bob.Conversations(ctx, 1, "")
	if err != nil || len(bobs.Conversations) != 1 || !bobs.HasNextPage {
		t.Fatalf("bob's first page: %+v, %v", bobs, err)
	}
	next, err := bob.Conversations(ctx, 1, bobs.EndCursor)
	if err != nil || len(next.Conversations) != 1 || next.HasNextPage || next.Conversations[0].Room == nil || next.Conversations[0].UnreadCount != 1 {
		t.Fatalf("bob's second page: %+v, %v", next, err)
	}
}
