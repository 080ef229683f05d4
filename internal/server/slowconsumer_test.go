package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
)

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
