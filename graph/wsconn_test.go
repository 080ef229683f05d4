package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/testserver"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
)

// Look-alikes of gqlgen's protocol messages, for ids and payloads a real
// session would rarely produce.
type kind string

func (k kind) MarshalText() ([]byte, error) { return []byte(k), nil }

type lookAlike struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	ID      string          `json:"id,omitempty"`
	Type    kind            `json:"type"`
	noOp    bool
}

func TestAppendFrameMatchesJSONMarshal(t *testing.T) {
	ids := []string{"", "1", "a-b_c", `q"uote`, `back\slash`, "<html>&", "tab\there", "nul\x00", "é日本", "\u2028", "bad\xffutf8"}
	// gqlgen encodes every payload with json.Marshal before WriteJSON sees it.
	var payloads []json.RawMessage
	for _, raw := range []string{`{}`, `{"data":{"x":"<&>\u00e9 é"}}`, `[ {"message" : "e"} ]`} {
		p, err := json.Marshal(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	payloads = append(payloads, nil)
	for _, id := range ids {
		for _, p := range payloads {
			for _, typ := range []kind{"next", "connection_ack", "ka"} {
				m := &lookAlike{Payload: p, ID: id, Type: typ}
				want, err := json.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				got, ok := appendFrame(nil, m)
				if !ok || !bytes.Equal(got, want) {
					t.Errorf("id %q payload %s: got %s (fast %v), want %s", id, p, got, ok, want)
				}
			}
		}
	}
	// Anything else is left to json.Marshal.
	for _, v := range []any{map[string]any{"a": 1}, lookAlike{}, (*lookAlike)(nil), &struct{ Payload string }{}, &struct {
		Payload json.RawMessage
		ID      string
		Type    string
	}{}} {
		if _, ok := appendFrame(nil, v); ok {
			t.Errorf("%T took the fast path", v)
		}
	}
}

// recording wraps frameSocket and checks, for every message gqlgen's real
// transport writes, that the fast encoding was taken and equals json.Marshal.
type recording struct {
	frameSocket
	mu    sync.Mutex
	types map[string]bool
	fails []string
}

type recordingConn struct {
	transport.WebsocketConn
	r *recording
}

func (r *recording) Accept(w http.ResponseWriter, req *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	c, err := r.frameSocket.Accept(w, req, o)
	if err != nil {
		return nil, err
	}
	return recordingConn{c, r}, nil
}

func (c recordingConn) WriteJSON(v any) error {
	want, _ := json.Marshal(v)
	got, ok := appendFrame(nil, v)
	var typ struct{ Type string }
	_ = json.Unmarshal(want, &typ)
	c.r.mu.Lock()
	c.r.types[typ.Type] = true
	if !ok || !bytes.Equal(got, want) {
		c.r.fails = append(c.r.fails, string(want))
	}
	c.r.mu.Unlock()
	return c.WebsocketConn.WriteJSON(v)
}

func TestFrameSocketWithGqlgenTransport(t *testing.T) {
	for _, tc := range []struct {
		proto            string
		init, sub, types []string
	}{
		{"graphql-transport-ws",
			[]string{`{"type":"connection_init"}`, `{"type":"ping"}`},
			[]string{`{"type":"subscribe","id":"s\"1","payload":{"query":"subscription { name }"}}`, `{"type":"subscribe","id":"bad","payload":{"query":"subscription { nope }"}}`},
			[]string{"connection_ack", "pong", "next", "error", "complete"}},
		{"graphql-ws",
			[]string{`{"type":"connection_init"}`},
			[]string{`{"type":"start","id":"s<1>","payload":{"query":"subscription { name }"}}`, `{"type":"start","id":"bad","payload":{"query":"subscription { nope }"}}`},
			[]string{"connection_ack", "ka", "data", "error", "complete"}},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			rec := &recording{types: map[string]bool{}}
			ts := testserver.New()
			ts.AddTransport(transport.Websocket{Implementation: rec, KeepAlivePingInterval: time.Hour})
			hs := httptest.NewServer(ts)
			defer hs.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &coderws.DialOptions{Subprotocols: []string{tc.proto}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			read := func(want string) string {
				t.Helper()
				_, b, err := c.Read(ctx)
				if err != nil || !strings.Contains(string(b), want) {
					t.Fatalf("read %s (%v), want %s", b, err, want)
				}
				return string(b)
			}
			write := func(s string) {
				if err := c.Write(ctx, coderws.MessageText, []byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range tc.init {
				write(m)
			}
			read("connection_ack")
			if tc.proto == "graphql-ws" {
				read(`"ka"`)
			} else {
				read("pong")
			}
			write(tc.sub[0])
			ts.SendNextSubscriptionMessage()
			read(`"name":"test"`)
			write(tc.sub[1])
			read(`"error"`)
			ts.SendCompleteSubscriptionMessage()
			read(`"complete"`)

			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.fails) > 0 {
				t.Errorf("frames not written by the fast path or differing from json.Marshal: %q", rec.fails)
			}
			for _, typ := range tc.types {
				if !rec.types[typ] {
					t.Errorf("no %s frame seen (seen %v)", typ, rec.types)
				}
			}
		})
	}
}
