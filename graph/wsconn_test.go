package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/testserver"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
)

// Look-alikes of gqlgen's protocol messages, for ids and payloads a real
// session would rarely produce.
type msgKind string

func (k msgKind) MarshalText() ([]byte, error) { return []byte(k), nil }

type lookAlike struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	ID      string          `json:"id,omitempty"`
	Type    msgKind         `json:"type"`
	noOp    bool
}

func TestAppendMessageMatchesJSONMarshal(t *testing.T) {
	ids := []string{"", "1", "a-b_c", `q"uote`, `back\slash`, "<html>&", "tab\there", "nul\x00", "é日本", "\u2028", "bad\xffutf8"}
	// Payloads are JSON the server encoded.
	var payloads []json.RawMessage
	for _, raw := range []string{`{}`, `{"data":{"x":"\u003c\u0026\u003e\u00e9 é"}}`, `[{"message":"e"}]`} {
		p, err := json.Marshal(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	payloads = append(payloads, nil)
	for _, id := range ids {
		for _, p := range payloads {
			for _, typ := range []msgKind{"next", "connection_ack", "ka"} {
				want, err := json.Marshal(&lookAlike{Payload: p, ID: id, Type: typ})
				if err != nil {
					t.Fatal(err)
				}
				if got := appendMessage(nil, string(typ), id, p); !bytes.Equal(got, want) {
					t.Errorf("id %q payload %s: got %s, want %s", id, p, got, want)
				}
			}
		}
	}
}

// TestSocketTransportProtocols runs both protocols through socketTransport
// against gqlgen's test schema, and through gqlgen's transport.Websocket,
// which it replaces: the messages, their bytes, their order and the close
// codes are the same.
func TestSocketTransportProtocols(t *testing.T) {
	transports := map[string]graphql.Transport{
		"ours": socketTransport{
			sockets:      frameSocket{WriteTimeout: time.Minute},
			initTimeout:  time.Minute,
			keepAlive:    time.Hour,
			errorf:       func(context.Context, error) {},
			shuttingDown: func() bool { return false },
		},
		"gqlgen": transport.Websocket{InitTimeout: time.Minute, KeepAlivePingInterval: time.Hour},
	}
	for _, tc := range []struct {
		proto string
		// init is sent first; ack is what follows connection_ack.
		init   []string
		ack    string
		sub    func(id, query string) string
		stop   func(id string) string
		next   string
		badMsg string // a client message the protocol does not take after init
	}{
		{"graphql-transport-ws",
			[]string{`{"type":"connection_init"}`, `{"type":"ping","payload":{"x":1}}`},
			`{"payload":{"x":1},"type":"pong"}`,
			func(id, q string) string {
				return `{"type":"subscribe","id":` + quote(id) + `,"payload":{"query":` + quote(q) + `}}`
			},
			func(id string) string { return `{"type":"complete","id":` + quote(id) + `}` },
			"next", `{"type":"next","id":"1"}`},
		{"graphql-ws",
			[]string{`{"type":"connection_init"}`},
			`{"type":"ka"}`,
			func(id, q string) string {
				return `{"type":"start","id":` + quote(id) + `,"payload":{"query":` + quote(q) + `}}`
			},
			func(id string) string { return `{"type":"stop","id":` + quote(id) + `}` },
			"data", `{"type":"data","id":"1"}`},
	} {
		for name, tr := range transports {
			t.Run(tc.proto+"/"+name, func(t *testing.T) {
				ts := testserver.New()
				ts.AddTransport(tr)
				hs := httptest.NewServer(ts)
				defer hs.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &coderws.DialOptions{Subprotocols: []string{tc.proto}})
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				read := func(want string) {
					t.Helper()
					_, b, err := c.Read(ctx)
					if err != nil || string(b) != want {
						t.Fatalf("read %s (%v), want %s", b, err, want)
					}
				}
				write := func(s string) {
					t.Helper()
					if err := c.Write(ctx, coderws.MessageText, []byte(s)); err != nil {
						t.Fatal(err)
					}
				}
				for _, m := range tc.init {
					write(m)
				}
				read(`{"type":"connection_ack"}`)
				read(tc.ack)
				id := `s"<1>`
				write(tc.sub(id, "subscription { name }"))
				ts.SendNextSubscriptionMessage()
				read(`{"payload":{"data":{"name":"test"}},"id":` + quote(id) + `,"type":"` + tc.next + `"}`)
				write(tc.stop(id))
				read(`{"id":` + quote(id) + `,"type":"complete"}`)
				write(tc.sub("bad", "subscription { nope }"))
				read(`{"payload":[{"message":"Cannot query field \"nope\" on type \"Subscription\". Did you mean \"name\"?","locations":[{"line":1,"column":16}],"extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}],"id":"bad","type":"error"}`)
				read(`{"id":"bad","type":"complete"}`)
				write(tc.badMsg)
				if tc.proto == "graphql-ws" {
					read(`{"payload":{"message":"unexpected message data"},"type":"connection_error"}`)
				}
				_, _, err = c.Read(ctx)
				want := coderws.StatusProtocolError
				if tc.proto == "graphql-transport-ws" {
					// Not a client's message: the socket ends as after a read error.
					want = coderws.StatusNormalClosure
				}
				if got := coderws.CloseStatus(err); got != want {
					t.Fatalf("closed with %v (%v), want %v", got, err, want)
				}
			})
		}
	}
}

func TestSocketTransportInitTimeout(t *testing.T) {
	ts := testserver.New()
	ts.AddTransport(socketTransport{
		sockets:      frameSocket{WriteTimeout: time.Minute},
		initTimeout:  time.Millisecond,
		errorf:       func(context.Context, error) {},
		shuttingDown: func() bool { return false },
	})
	hs := httptest.NewServer(ts)
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &coderws.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx)
	var ce coderws.CloseError
	if !errors.As(err, &ce) || ce.Code != coderws.StatusProtocolError || ce.Reason != "connection initialisation timeout" {
		t.Fatalf("got %v, want close 1002 connection initialisation timeout", err)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
