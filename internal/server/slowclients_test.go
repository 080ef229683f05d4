package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
)

// A client that subscribes and then stops reading must not hold the server:
// once a write to it has waited WS_WRITE_TIMEOUT, the server closes the
// socket, which ends its subscriptions (the broker forgets the subscriber)
// and frees its goroutines (TestMain's leak check). Before the timeout, the
// write blocked for ever on the full TCP buffers.
func TestWebsocketClientThatStopsReadingIsDropped(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.WSWriteTimeout = 100 * time.Millisecond
	}})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, send := rawSocket(t, ctx, srv, alice.Token)
	idle := srv.Broker.Subscribers() // the server's own (cache invalidations)
	send(map[string]any{"type": "subscribe", "id": "1", "payload": map[string]any{"query": "subscription { messageAdded { id ciphertext } }"}})
	waitFor(t, ctx, "the subscription to start", func() bool { return srv.Broker.Subscribers() == idle+1 })

	// From here on the client reads nothing. 64 messages of 256 KiB are far
	// more than the socket buffers of both ends hold, and far fewer than the
	// broker's per-subscriber queue, so only the write timeout can end this.
	for i := range 64 {
		m := &models.Message{
			ID: "m" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Conversation: "dm", SenderID: bob.ID, RecipientID: &alice.ID,
			CipherBytes: bytes.Repeat([]byte{byte(i)}, 256<<10), CreatedAt: models.Time{Time: time.Now()},
		}
		if err := srv.Broker.Publish(ctx, []string{broker.UserTopic(alice.ID)}, &broker.Event{Kind: broker.MessageAdded, Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "the server to drop the subscriber", func() bool { return srv.Broker.Subscribers() == idle })

	// The server closed the connection: what the buffers hold drains, then
	// the read fails rather than waiting for more.
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the server kept the socket open")
			}
			break
		}
	}
}

// A subscription the broker drops for falling behind ends with a
// graphql-transport-ws `error` whose extensions.code is SLOW_CONSUMER, not
// a `complete` (which the client cannot tell from a normal end); the socket
// and its other subscriptions stay. Before, the client got `complete`.
func TestSlowConsumerIsTold(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{
		BrokerBuffer: 2,
		// The client stops reading for a while: the write timeout must not
		// be what ends the subscription.
		Config: func(c *config.Config) { c.WSWriteTimeout = 5 * time.Minute },
	})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, send := rawSocket(t, ctx, srv, alice.Token)
	type message struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}
	read := func() message {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("not JSON: %.200s", b)
		}
		return m
	}
	publish := func(id string, size int) {
		m := &models.Message{
			ID: id, Conversation: "dm", SenderID: bob.ID, RecipientID: &alice.ID,
			CipherBytes: bytes.Repeat([]byte{1}, size), CreatedAt: models.Time{Time: time.Now()},
		}
		if err := srv.Broker.Publish(ctx, []string{broker.UserTopic(alice.ID)}, &broker.Event{Kind: broker.MessageAdded, Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	const added = "subscription { messageAdded { id ciphertext } }"
	idle := srv.Broker.Subscribers() // the server's own (cache invalidations)
	send(map[string]any{"type": "subscribe", "id": "1", "payload": map[string]any{"query": added}})
	waitFor(t, ctx, "the subscription to start", func() bool { return srv.Broker.Subscribers() == idle+1 })

	// The client reads nothing while 128 events of 256 KiB arrive: far more
	// than the socket buffers of both ends and the broker's two-event queue
	// hold, so the subscriber falls behind whatever the scheduling.
	for i := range 128 {
		publish(fmt.Sprintf("flood-%d", i), 256<<10)
	}
	waitFor(t, ctx, "the broker to drop the subscriber", func() bool { return srv.Broker.Subscribers() == idle })

	// What was sent before the drop arrives, then the error, and no complete.
	var end message
	for end = read(); end.Type == "next"; end = read() {
		if end.ID != "1" {
			t.Fatalf("next for %q", end.ID)
		}
	}
	if end.Type != "error" || end.ID != "1" {
		t.Fatalf("the subscription ended with %+v, want an error for id 1", end)
	}
	var errs []struct {
		Message    string
		Extensions map[string]any
	}
	if err := json.Unmarshal(end.Payload, &errs); err != nil || len(errs) != 1 || errs[0].Extensions["code"] != "SLOW_CONSUMER" {
		t.Fatalf("error payload %s, want one error with code SLOW_CONSUMER", end.Payload)
	}

	// The socket stays: a new subscription on it works.
	send(map[string]any{"type": "subscribe", "id": "2", "payload": map[string]any{"query": added}})
	waitFor(t, ctx, "the new subscription to start", func() bool { return srv.Broker.Subscribers() == idle+1 })
	publish("after", 16)
	if m := read(); m.Type != "next" || m.ID != "2" || !bytes.Contains(m.Payload, []byte(`"after"`)) {
		t.Fatalf("after the drop got %+v %.200s, want the next event on subscription 2", m, m.Payload)
	}
	send(map[string]any{"type": "complete", "id": "2"})
	_ = conn.Close(websocket.StatusNormalClosure, "")
}

// rawSocket opens a graphql-transport-ws websocket signed in with token and
// returns it with a function that sends one message. Unlike qchattest's
// sockets, nothing reads it but the test, which can stop reading.
func rawSocket(t *testing.T, ctx context.Context, srv *qchattest.Server, token string) (*websocket.Conn, func(v any)) {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "ws"+srv.URL[len("http"):]+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	conn.SetReadLimit(-1)
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]any{"authToken": token}})
	if _, b, err := conn.Read(ctx); err != nil || !bytes.Contains(b, []byte("connection_ack")) {
		t.Fatalf("ack: %s %v", b, err)
	}
	return conn, send
}

// waitFor polls cond until it holds or ctx ends: the time bound is only a
// backstop for a broken server, not part of what is tested.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
