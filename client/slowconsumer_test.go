package client_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// The server and the SDK agree on a slow consumer: a subscription the real
// server drops for falling behind reaches the caller as an *Error with
// CodeSlowConsumer, after the events sent before the drop, and Resubscribe
// says to start again.
func TestSlowConsumerReachesTheCaller(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{
		BrokerBuffer: 2,
		// The caller stops reading for a while: the write timeout must not
		// be what ends the subscription.
		Config: func(c *config.Config) { c.WSWriteTimeout = 5 * time.Minute },
	})
	hc := newHTTP(t)
	alice := register(t, srv, "alice", pqcrypto.MLKEM768, client.WithHTTPClient(hc))
	bob := register(t, srv, "bob", pqcrypto.MLKEM768, client.WithHTTPClient(hc))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	idle := srv.Broker.Subscribers() // the server's own (cache invalidations)
	events, err := alice.Subscribe(ctx, client.MessagesAdded(""))
	if err != nil {
		t.Fatal(err)
	}
	for srv.Broker.Subscribers() != idle+1 {
		waitABit(t, ctx, "the subscription to start")
	}
	// Nobody reads events while 128 messages of 256 KiB arrive: far more
	// than the SDK's queue, both sockets' buffers and the broker's two-event
	// queue hold, so the subscriber falls behind whatever the scheduling.
	sender := &models.User{ID: bob.Self.Id, Username: "bob"}
	recipient := &models.User{ID: alice.Self.Id, Username: "alice"}
	for i := range 128 {
		m := &models.Message{
			ID: fmt.Sprintf("flood-%d", i), Conversation: "dm", SenderID: sender.ID, RecipientID: &recipient.ID,
			CipherBytes: bytes.Repeat([]byte{1}, 256<<10), NonceBytes: []byte{2}, CreatedAt: models.Now(),
			Sender: sender, RecipientRef: recipient,
		}
		if err := srv.Broker.Publish(ctx, []string{broker.UserTopic(alice.Self.Id)}, &broker.Event{Kind: broker.MessageAdded, Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	for srv.Broker.Subscribers() != idle {
		waitABit(t, ctx, "the broker to drop the subscriber")
	}

	messages := 0
	for e := range events {
		if e.Kind == client.EventMessage {
			messages++
			continue
		}
		if e.Kind != client.EventError {
			t.Fatalf("unexpected %s event", e.Kind)
		}
		if !client.HasCode(e.Err, client.CodeSlowConsumer) || !client.Resubscribe(e.Err) {
			t.Fatalf("after %d messages the subscription ended with %v, want SLOW_CONSUMER (resubscribe: %v)", messages, e.Err, client.Resubscribe(e.Err))
		}
		if messages == 0 || messages >= 128 {
			t.Fatalf("%d messages before the end, want some but not all", messages)
		}
		cancel()
	}
	if ctx.Err() == nil {
		t.Fatal("events closed without the SLOW_CONSUMER error")
	}
}

// waitABit pauses before a condition is polled again; ctx bounds the wait
// only as a backstop for a broken server.
func waitABit(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
	case <-time.After(5 * time.Millisecond):
	}
}
