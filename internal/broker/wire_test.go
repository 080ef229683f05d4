package broker

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qchat/qchat/internal/qchattest/syncbuf"
	"github.com/qchat/qchat/models"

	"log/slog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

type sampleEvent struct {
	name string
	ev   *Event
}

// sampleEvents are one event of each kind with every field set.
func sampleEvents() []sampleEvent {
	room, recipient, attachment := "room-1", "user-2", "doc-1"
	at := models.Time{Time: time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)}
	later := models.Time{Time: at.Add(time.Minute)}
	alice := &models.User{ID: "user-1", Username: "Alice", UsernameKey: "alice", CurrentKeyID: "k1", CreatedAt: at}
	bob := &models.User{ID: recipient, Username: "bob", UsernameKey: "bob", CurrentKeyID: "k2", CreatedAt: at}
	group := &models.Room{ID: room, Name: "n", IsGroup: true, Code: "code", OwnerID: "user-1", CreatedAt: at}
	return []sampleEvent{
		{"message", &Event{Kind: MessageAdded, Message: &models.Message{
			ID: "m1", Conversation: room, RoomID: &room, SenderID: "user-1", CipherBytes: []byte{1, 2, 0, 255}, NonceBytes: []byte{9},
			AttachmentID: &attachment, ContentHash: []byte{7}, CreatedAt: at, Sender: alice, RoomRef: group, Version: 1,
			Keys: []*models.RecipientKey{{MessageID: "m1", UserID: "user-1", KeyID: "k1", KEMBytes: []byte{3}, WrappedBytes: []byte{4}, ReadAt: &later}},
		}}},
		{"direct message", &Event{Kind: MessageAdded, Message: &models.Message{
			ID: "m3", Conversation: "dm:user-1:user-2", RecipientID: &recipient, SenderID: "user-1", CipherBytes: []byte{1}, NonceBytes: []byte{2},
			ContentHash: []byte{3}, CreatedAt: at, Sender: alice, RecipientRef: bob, Version: 1,
			Keys: []*models.RecipientKey{{MessageID: "m3", UserID: recipient, KeyID: "k2", KEMBytes: []byte{5}, WrappedBytes: []byte{6}}},
		}}},
		{"tombstone", &Event{Kind: MessageDeleted, Message: &models.Message{ID: "m2", Conversation: "c", RecipientID: &recipient, SenderID: "user-1", CreatedAt: at, DeletedAt: &later, Version: 1}}},
		{"typing", &Event{Kind: Typing, Typing: &models.TypingEvent{UserID: "u", RecipientID: &recipient, IsTyping: true}}},
		{"typing in a room", &Event{Kind: Typing, Typing: &models.TypingEvent{UserID: "u", RoomID: &room}}},
		{"receipt", &Event{Kind: Receipt, Receipt: &models.ReadReceipt{MessageID: "m1", Conversation: room, RoomID: &room, UserID: "u", ReadAt: at}}},
		{"receipts", &Event{Kind: Receipt, Receipt: &models.ReadReceipt{MessageID: "m1", Conversation: room, RoomID: &room, UserID: "u", ReadAt: at},
			Receipts: []*models.ReadReceipt{
				{MessageID: "m2", Conversation: room, RoomID: &room, UserID: "u", ReadAt: at},
				{MessageID: "m3", Conversation: "dm:u:v", UserID: "u", ReadAt: at},
			}}},
		{"presence", &Event{Kind: Presence, Presence: &models.PresenceEvent{UserID: "u", Online: true}}},
		{"room", &Event{Kind: RoomChanged, Room: &models.RoomEvent{Type: models.RoomEventTypeRenamed, Room: group, UserID: &recipient}}},
		{"key change", &Event{Kind: KeyChanged, KeyChange: &models.KeyChange{UserID: "u", Kind: models.KeyChangeKindIdentityChanged}}},
		{"inval", &Event{Kind: Invalidate, Inval: &Invalidation{What: "session", Key: "abcd"}}},
		{"invals", &Event{Kind: Invalidate, Inval: &Invalidation{What: "member", Key: "r|a", More: []string{"r|b", "r|c"}}}},
		// Version 2 content: an addition to wire version 1 (older instances
		// ignore the fields; their readers see it as unsigned).
		{"signed message", &Event{Kind: MessageAdded, Message: &models.Message{
			ID: "m4", Conversation: room, RoomID: &room, SenderID: "user-1", CipherBytes: []byte{1}, NonceBytes: []byte{2},
			AttachmentID: &attachment, ContentHash: []byte{3}, CreatedAt: at, Sender: alice, RoomRef: group,
			Version: 2, SignatureBytes: []byte{8, 9}, KeyDigestBytes: []byte{10, 11},
			Keys: []*models.RecipientKey{{MessageID: "m4", UserID: "user-1", KeyID: "k1", KEMBytes: []byte{3}, WrappedBytes: []byte{4}}},
		}}},
	}
}

// The wire format is what testdata/wire-v1.golden holds, one message per
// line: a change to the models, or to Event, that would change it fails
// here. Refresh with go test ./internal/broker -run TestWireGolden -update
// only for a change that keeps WireVersion readable by the previous release.
func TestWireGolden(t *testing.T) {
	var got bytes.Buffer
	for _, tc := range sampleEvents() {
		b, err := encodeWire("instance-a", []string{"user:user-1", "user:user-2"}, tc.ev)
		if err != nil {
			t.Fatal(err)
		}
		got.WriteString(tc.name + "\t")
		got.Write(b)
		got.WriteByte('\n')
	}
	path := filepath.Join("testdata", "wire-v1.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("the wire format changed:\n got %s\nwant %s", got.Bytes(), want)
	}
	// And every golden line decodes to its event: the format is read as
	// well as written.
	events := sampleEvents()
	for i, line := range strings.Split(strings.TrimSuffix(string(want), "\n"), "\n") {
		_, payload, _ := strings.Cut(line, "\t")
		h, err := decodeWireHeader([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := decodeWireEvent(h.Event)
		if err != nil || !reflect.DeepEqual(ev, events[i].ev) {
			t.Fatalf("%s: golden line decodes to %+v (err %v)", events[i].name, ev, err)
		}
	}
}

// A message without a version, as the instances before versioning wrote
// it, is version 1 and is delivered.
func TestWireUnversionedIsVersion1(t *testing.T) {
	payload := `{"o":"old","t":["user:x"],"e":{"kind":"presence","presence":{"userId":"u","online":true}}}`
	r, logs := newDeliverer(t)
	ch, err := r.local.Subscribe(context.Background(), "user:x")
	if err != nil {
		t.Fatal(err)
	}
	r.deliver(payload)
	select {
	case ev := <-ch:
		if ev.Kind != Presence || ev.Presence == nil || ev.Presence.UserID != "u" || !ev.Presence.Online {
			t.Fatalf("event %+v", ev)
		}
	default:
		t.Fatalf("not delivered; log %s", logs.String())
	}
}

// An event of a newer version is skipped, logged once per version, and
// does not count as malformed; events of this version keep flowing.
func TestWireNewerVersionSkippedAndLoggedOnce(t *testing.T) {
	r, logs := newDeliverer(t)
	ch, err := r.local.Subscribe(context.Background(), "user:x")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		// A newer instance may change the shape of anything in "e".
		r.deliver(`{"v":2,"o":"new","t":["user:x"],"e":{"kind":["not","a","string"]}}`)
	}
	r.deliver(`{"v":3,"o":"newer","t":["user:x"],"e":{}}`)
	current, err := encodeWire("old", []string{"user:x"}, &Event{Kind: Presence, Presence: &models.PresenceEvent{UserID: "u"}})
	if err != nil {
		t.Fatal(err)
	}
	r.deliver(string(current))
	select {
	case ev := <-ch:
		if ev.Kind != Presence {
			t.Fatalf("delivered %+v, want the version-1 presence event", ev)
		}
	default:
		t.Fatal("the current-version event was not delivered")
	}
	select {
	case ev := <-ch:
		t.Fatalf("a newer-version event was delivered: %+v", ev)
	default:
	}
	st := r.RedisStats()
	if st.Newer != 4 || st.Malformed != 0 || st.Received != 1 {
		t.Errorf("stats %+v, want 4 newer, 0 malformed, 1 received", st)
	}
	out := logs.String()
	if n := strings.Count(out, "newer wire version"); n != 2 {
		t.Errorf("logged %d times, want once per version (2):\n%s", n, out)
	}
}

// newDeliverer is a Redis broker without Redis: deliver only needs its
// local broker, its log and its counters.
func newDeliverer(t *testing.T) (*Redis, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	r := &Redis{local: NewMemory(4), origin: "self", log: slog.New(slog.NewTextHandler(logs, nil))}
	t.Cleanup(func() { _ = r.local.Close() })
	return r, logs
}

// An addition to version 1 that this instance does not know, as "keyChange"
// was to the instances before it, decodes as an event of an unknown kind with
// no field set: it is not malformed, and no subscription's filter, which
// each check the kind, delivers it.
func TestWireUnknownKindOfThisVersionIsSkippable(t *testing.T) {
	r, logs := newDeliverer(t)
	ch, err := r.local.Subscribe(context.Background(), "user:x")
	if err != nil {
		t.Fatal(err)
	}
	r.deliver(`{"v":1,"o":"newer","t":["user:x"],"e":{"kind":"from_the_future","future":{"userId":"u","kind":"X"}}}`)
	select {
	case ev := <-ch:
		if !reflect.DeepEqual(ev, &Event{Kind: "from_the_future"}) {
			t.Fatalf("decoded %+v", ev)
		}
	default:
		t.Fatalf("not delivered; log %s", logs.String())
	}
	if st := r.RedisStats(); st.Malformed != 0 {
		t.Errorf("stats %+v, want 0 malformed", st)
	}
}
