package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/qchat/qchat/client"
)

// scriptedServer speaks just enough graphql-transport-ws to accept one
// subscription, then ends it the way end says.
func scriptedServer(t *testing.T, end func(ctx context.Context, conn *websocket.Conn, id string)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx := r.Context()
		var m struct{ ID, Type string }
		for m.Type != "subscribe" {
			_, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			if err := json.Unmarshal(b, &m); err != nil {
				return
			}
			if m.Type == "connection_init" {
				_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_ack"}`))
			}
		}
		end(ctx, conn, m.ID)
		// Wait for the client to go, so the close handshake completes.
		_, _, _ = conn.Read(ctx)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func write(ctx context.Context, conn *websocket.Conn, s string) {
	_ = conn.Write(ctx, websocket.MessageText, []byte(s))
}

// TestSubscriptionReportsWhyItEnded: a subscription the server ends never
// ends silently; the caller learns why, and whether subscribing again helps.
func TestSubscriptionReportsWhyItEnded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name        string
		end         func(ctx context.Context, conn *websocket.Conn, id string)
		is          func(error) bool
		resubscribe bool
	}{
		{"server going away (1001)", func(ctx context.Context, conn *websocket.Conn, id string) {
			_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
		}, func(err error) bool { return errors.Is(err, client.ErrGoingAway) }, true},
		{"session revoked (4403)", func(ctx context.Context, conn *websocket.Conn, id string) {
			_ = conn.Close(4403, "Forbidden")
		}, func(err error) bool { return client.HasCode(err, client.CodeForbidden) }, false},
		{"plain complete", func(ctx context.Context, conn *websocket.Conn, id string) {
			write(ctx, conn, `{"id":"`+id+`","type":"complete"}`)
		}, func(err error) bool { return errors.Is(err, client.ErrCompleted) }, true},
		{"slow consumer error", func(ctx context.Context, conn *websocket.Conn, id string) {
			write(ctx, conn, `{"id":"`+id+`","type":"error","payload":[{"message":"fell behind","extensions":{"code":"SLOW_CONSUMER"}}]}`)
		}, func(err error) bool { return client.HasCode(err, client.CodeSlowConsumer) }, true},
		{"refused subscription", func(ctx context.Context, conn *websocket.Conn, id string) {
			write(ctx, conn, `{"id":"`+id+`","type":"error","payload":[{"message":"no such room","extensions":{"code":"NOT_FOUND"}}]}`)
		}, func(err error) bool { return client.HasCode(err, client.CodeNotFound) }, false},
		{"other close code", func(ctx context.Context, conn *websocket.Conn, id string) {
			_ = conn.Close(websocket.StatusInternalError, "oops")
		}, func(err error) bool { return errors.Is(err, client.ErrSocketClosed) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := scriptedServer(t, tc.end)
			hc := newHTTP(t)
			defer hc.CloseIdleConnections()
			c, err := client.New(srv.URL, client.WithHTTPClient(hc), client.WithToken("token"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			events, err := c.Subscribe(ctx, client.MessagesAdded(""))
			if err != nil {
				t.Fatal(err)
			}
			var got []client.Event
			for e := range events {
				got = append(got, e)
			}
			if ctx.Err() != nil {
				t.Fatal("the subscription did not end")
			}
			if len(got) != 1 || got[0].Kind != client.EventError {
				t.Fatalf("events %+v, want one EventError before the channel closed", got)
			}
			if err := got[0].Err; !tc.is(err) || client.Resubscribe(err) != tc.resubscribe {
				t.Errorf("ended with %v (resubscribe %v), want resubscribe %v", err, client.Resubscribe(err), tc.resubscribe)
			}
		})
	}
}
