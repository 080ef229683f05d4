package client_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

// Operations over an open websocket behave as over HTTP: the same results,
// the same typed errors with their extensions, and a closed socket fails
// cleanly instead of hanging.
func TestOperationsOverWebsocket(t *testing.T) {
	srv := newServer(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	hc := newHTTP(t)
	alice := register(t, srv, "alice", pqcrypto.MLKEM768, client.WithHTTPClient(hc))
	bob := register(t, srv, "bob", pqcrypto.XWing, client.WithHTTPClient(hc))
	r, err := alice.CreateRoom(ctx, "lab", true, bob.Self.Id)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := alice.OverWebsocket(ctx)
	if err != nil {
		t.Fatal(err)
	}

	me, err := ws.Me(ctx)
	if err != nil || me.Id != alice.Self.Id {
		t.Fatalf("me over the socket: %+v %v", me, err)
	}
	// SendText seals (fetching the room's keys over the socket) and sends.
	m, err := ws.SendText(ctx, client.InRoom(r.Id), "over the socket")
	if err != nil {
		t.Fatalf("send over the socket: %v", err)
	}
	p, err := bob.History(ctx, client.InRoom(r.Id), 0, "", bob.Keyring)
	if err != nil || len(p.Messages) != 1 || p.Messages[0].Message.Id != m.Id || p.Messages[0].Text() != "over the socket" {
		t.Fatalf("history over HTTP after a send over the socket: %+v %v", p, err)
	}

	// A refused mutation: the same code and extensions as over HTTP, and the
	// socket stays usable.
	// A signature of the right shape: the key list is checked first, and a
	// signature is required once every client signs.
	refused := client.SendMessageInput{Id: "0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f", RoomId: &r.Id,
		Ciphertext: pqcrypto.EncodeB64(make([]byte, 16)), Nonce: pqcrypto.EncodeB64(make([]byte, 12)), Keys: []client.RecipientKeyInput{}}
	refused.SetSignature(pqcrypto.EncodeB64(make([]byte, pqcrypto.SignatureSize)))
	_, err = ws.SendMessageRaw(ctx, refused)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != client.CodeBadUserInput || len(ce.StringList("missingUserIds")) != 2 {
		t.Fatalf("empty key list over the socket: %#v", err)
	}
	// A document the server cannot parse is refused too.
	if _, err := ws.Room(ctx, "not-a-room"); code(err) != client.CodeNotFound && code(err) != client.CodeBadUserInput {
		t.Fatalf("unknown room over the socket: %v (code %q)", err, code(err))
	}
	if _, err := ws.Me(ctx); err != nil {
		t.Fatalf("socket unusable after refused operations: %v", err)
	}

	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Me(ctx); err == nil {
		t.Fatal("an operation on a closed socket succeeded")
	}
	if err := alice.Close(); err != nil {
		t.Errorf("Close of an HTTP client: %v", err)
	}
	hc.CloseIdleConnections()
}

// A token the server refuses fails OverWebsocket itself.
func TestOverWebsocketRefusesBadToken(t *testing.T) {
	srv := newServer(t)
	c, err := client.New(srv.URL, client.WithToken("not-a-token"))
	if err != nil {
		t.Fatal(err)
	}
	if ws, err := c.OverWebsocket(context.Background()); err == nil {
		_ = ws.Close()
		t.Fatal("a bad token opened an operations socket")
	}
}
