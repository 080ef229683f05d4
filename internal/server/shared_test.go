package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/qchattest"
)

// TestSharedMessageResponses compares, frame by frame, what subscribers
// receive from messageAdded responses shared by an event's subscribers
// (graph/shared.go) with what the normal path sends them: each selection is
// subscribed twice by every reader, once as is and once with an
// @include(if: true) on the root field, which always takes the normal path
// and changes nothing in the response.
func TestSharedMessageResponses(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		for _, proto := range qchattest.Protocols {
			t.Run(proto, func(t *testing.T) { testSharedMessageResponses(t, store, proto) })
		}
	})
}

func testSharedMessageResponses(t *testing.T, store *db.Store, proto string) {
	srv := qchattest.NewServer(t, store)
	suffix := uuid.NewString()[:8]
	alice := srv.Register(t, "sa_"+suffix)
	bob := srv.Register(t, "sb_"+suffix)
	carol := srv.Register(t, "sc_"+suffix)
	room := createRoom(t, srv, alice, "shared", bob, carol)
	readers := []*qchattest.User{alice, bob, carol}

	// %s is where the root field's directive goes.
	cases := []struct {
		name   string
		query  string
		shared bool
	}{
		{"the test client's fields", `subscription($r: ID) { messageAdded(roomId: $r) %s { ` + qchattest.MessageFields + ` } }`, true},
		{"the SDK's operation", `subscription messageAdded($r: ID) { messageAdded(roomId: $r) %s { ...Message } }
fragment Message on Message { id ciphertext nonce createdAt deleted version signature keyDigests attachmentId
  sender { ...UserRef } room { id } recipient { ...UserRef } myKey { ...RecipientKey } attachment { id name mimeType size } }
fragment UserRef on User { id username }
fragment RecipientKey on RecipientKey { userId keyId kemCiphertext wrappedKey readAt }`, true},
		{"aliases, typenames, inline fragments, myKey twice", `subscription Named($r: ID) { added: messageAdded(roomId: $r) %s {
  __typename k2: myKey { keyId __typename } ... on Message { sender { __typename u: username createdAt identityKey { fingerprint createdAt } } }
  room { id name isGroup createdAt __typename } myKey { wrappedKey readAt userId kemCiphertext } id } }`, true},
		{"no myKey", `subscription { messageAdded %s { id ciphertext createdAt room { id } } }`, true},
		{"a reader-dependent field", `subscription { messageAdded %s { id sender { online } myKey { keyId } } }`, false},
		{"a field's directive", `subscription($r: ID) { messageAdded(roomId: $r) %s { id myKey { keyId @skip(if: false) } } }`, false},
		{"a room's role", `subscription($r: ID) { messageAdded(roomId: $r) %s { id room { myRole } } }`, false},
	}
	type pair struct{ fast, slow *qchattest.Sub }
	subs := make([][]pair, len(cases))
	for i, c := range cases {
		for _, u := range readers {
			ws := srv.Connect(t, proto, u.Token)
			vars := map[string]any{"r": room.ID}
			subs[i] = append(subs[i], pair{
				fast: ws.Subscribe(fmt.Sprintf(c.query, ""), vars),
				slow: ws.Subscribe(fmt.Sprintf(c.query, "@include(if: true)"), vars),
			})
		}
	}
	srv.WaitSubscribers(t, 2*len(cases)*len(readers))

	for n, text := range []string{"first", "second"} {
		before := graph.SharedDeliveries()
		send(t, srv, readers[n], qchattest.Seal(t, uuid.NewString(), readers[n], room.ID, "", text, readers...))
		for i, c := range cases {
			for j, p := range subs[i] {
				fast, ok1 := p.fast.Raw(t, 10*time.Second)
				slow, ok2 := p.slow.Raw(t, 10*time.Second)
				if !ok1 || !ok2 {
					t.Fatalf("%s, %s: no delivery", c.name, readers[j].Name)
				}
				if fast.Type != slow.Type || string(fast.Payload) != string(slow.Payload) {
					t.Errorf("%s, %s:\n shared %s %s\n normal %s %s", c.name, readers[j].Name, fast.Type, fast.Payload, slow.Type, slow.Payload)
				}
				if !strings.Contains(string(fast.Payload), `"data":{`) || strings.Contains(string(fast.Payload), `"errors"`) {
					t.Errorf("%s, %s: %s", c.name, readers[j].Name, fast.Payload)
				}
			}
		}
		want := 0
		for _, c := range cases {
			if c.shared {
				want += len(readers)
			}
		}
		if got := graph.SharedDeliveries() - before; got != int64(want) {
			t.Errorf("%d values written from shared responses, want %d", got, want)
		}
	}
}

// TestSharedEventResponses is TestSharedMessageResponses for the
// subscriptions whose values are the same for every subscriber (typing,
// readReceipts, presence): each reader subscribes to each selection twice,
// as is and with @include(if: true) on the root field (always the normal
// path), and every frame of the twins must be the same bytes; the values
// written from shared responses are counted.
func TestSharedEventResponses(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		for _, proto := range qchattest.Protocols {
			t.Run(proto, func(t *testing.T) { testSharedEventResponses(t, store, proto) })
		}
	})
}

func testSharedEventResponses(t *testing.T, store *db.Store, proto string) {
	srv := qchattest.NewServer(t, store)
	suffix := uuid.NewString()[:8]
	alice := srv.Register(t, "ea_"+suffix)
	bob := srv.Register(t, "eb_"+suffix)
	carol := srv.Register(t, "ec_"+suffix)
	dave := srv.Register(t, "ed_"+suffix) // the one who types, reads and comes and goes
	room := createRoom(t, srv, alice, "shared events", bob, carol, dave)
	readers := []*qchattest.User{alice, bob, carol}

	// %s is where the root field's directive goes.
	cases := []struct {
		kind   string
		query  string
		shared bool
	}{
		{"typing", `subscription($r: ID) { typing(roomId: $r) %s { user { id username } roomId recipientId isTyping } }`, true},
		{"typing", `subscription Named { t: typing %s { __typename ... on TypingEvent { isTyping u: user { __typename createdAt identityKey { fingerprint key createdAt } } } roomId } }`, true},
		{"typing", `subscription { typing %s { user { online } isTyping } }`, false},
		{"typing", `subscription($r: ID) { typing(roomId: $r) %s { isTyping @skip(if: false) } }`, false},
		{"receipts", `subscription($r: ID) { readReceipts(roomId: $r) %s { messageId readAt user { id username } } }`, true},
		{"receipts", `subscription { readReceipts %s { ...R } }
fragment R on ReadReceipt { __typename messageId user { identityKey { fingerprint } } }`, true},
		{"receipts", `subscription { readReceipts %s { messageId user { publicKey { id } } } }`, false},
		{"presence", `subscription { presence %s { user { id username } online } }`, true},
		{"presence", `subscription { presence %s { __typename online user { __typename id createdAt } } }`, true},
		{"presence", `subscription { presence %s { user { id online } online } }`, false},
	}
	// Every reader's socket is open before any subscription, so that the
	// readers' own presence events reach none of them.
	sockets := make([]*qchattest.WS, len(readers))
	for j, u := range readers {
		sockets[j] = srv.Connect(t, proto, u.Token)
	}
	type pair struct{ fast, slow *qchattest.Sub }
	subs := make([][]pair, len(cases))
	for i, c := range cases {
		for _, ws := range sockets {
			vars := map[string]any{"r": room.ID}
			if !strings.Contains(c.query, "$r") {
				vars = nil
			}
			subs[i] = append(subs[i], pair{
				fast: ws.Subscribe(fmt.Sprintf(c.query, ""), vars),
				slow: ws.Subscribe(fmt.Sprintf(c.query, "@include(if: true)"), vars),
			})
		}
	}
	srv.WaitSubscribers(t, 2*len(cases)*len(readers))

	var ids []string
	for _, text := range []string{"one", "two", "three"} {
		ids = append(ids, send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", text, alice, bob, carol, dave)).ID)
	}
	var daveWS *qchattest.WS
	rounds := []struct {
		kind   string
		values int // per subscription
		do     func()
	}{
		{"typing", 1, func() {
			srv.MustDo(t, dave.Token, `mutation($r: ID) { setTyping(roomId: $r, isTyping: true) }`, map[string]any{"r": room.ID}, nil)
		}},
		{"receipts", len(ids), func() { // one event with three receipts
			srv.MustDo(t, dave.Token, `mutation($ids: [ID!]!) { markRead(messageIds: $ids) }`, map[string]any{"ids": ids}, nil)
		}},
		{"presence", 1, func() { daveWS = srv.Connect(t, proto, dave.Token) }},
		{"presence", 1, func() { daveWS.Shutdown() }},
	}
	for _, r := range rounds {
		before := graph.SharedDeliveries()
		r.do()
		want := 0
		for i, c := range cases {
			if c.kind != r.kind {
				continue
			}
			if c.shared {
				want += r.values * len(readers)
			}
			for j, p := range subs[i] {
				for range r.values {
					fast, ok1 := p.fast.Raw(t, 10*time.Second)
					slow, ok2 := p.slow.Raw(t, 10*time.Second)
					if !ok1 || !ok2 {
						t.Fatalf("%s, %s: no delivery", c.query, readers[j].Name)
					}
					if fast.Type != slow.Type || string(fast.Payload) != string(slow.Payload) {
						t.Errorf("%s, %s:\n shared %s %s\n normal %s %s", c.query, readers[j].Name, fast.Type, fast.Payload, slow.Type, slow.Payload)
					}
					if !strings.Contains(string(fast.Payload), `"data":{`) || strings.Contains(string(fast.Payload), `"errors"`) {
						t.Errorf("%s, %s: %s", c.query, readers[j].Name, fast.Payload)
					}
				}
			}
		}
		if got := graph.SharedDeliveries() - before; got != int64(want) {
			t.Errorf("%s: %d values written from shared responses, want %d", r.kind, got, want)
		}
	}
}
