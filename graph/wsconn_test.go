package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
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
				// A payload that is not an operation's parameters.
				write(strings.Replace(tc.sub("json", "q"), `{"query":"q"}`, `[1]`, 1))
				read(`{"payload":[{"message":"invalid json"}],"id":"json","type":"error"}`)
				read(`{"id":"json","type":"complete"}`)
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

// countingListener counts the writes to each accepted connection.
type countingListener struct {
	net.Listener
	writes chan *atomic.Int64
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	n := new(atomic.Int64)
	l.writes <- n
	return countingConn{c, n}, nil
}

// A frame up to maxGathered bytes is one write to the connection, whatever
// its size, and every frame arrives whole and in order.
func TestFrameWriterOneWritePerFrame(t *testing.T) {
	sizes := []int{0, 1, 5, 6, 20, 125, 126, 1000, 4096, 20_000, maxGathered - 10, 65_535, 65_536, 200_000, 3}
	payload := func(n int) []byte { return bytes.Repeat([]byte{'a' + byte(n%26)}, n) }
	writes := make([]int64, len(sizes))
	done := make(chan error, 1)
	counters := make(chan *atomic.Int64, 1)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fc, err := frameSocket{WriteTimeout: time.Minute}.accept(w, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer fc.close()
		n := <-counters
		for i, size := range sizes {
			before := n.Load()
			if err := fc.write(payload(size)); err != nil {
				done <- err
				return
			}
			writes[i] = n.Load() - before
		}
		_, _, err = fc.conn.Read(r.Context()) // the client's close
		done <- nil
	}))
	hs.Listener = countingListener{hs.Listener, counters}
	hs.Start()
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	for _, size := range sizes {
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, payload(size)) {
			t.Fatalf("frame of %d bytes: got %d bytes %.20q…", size, len(got), got)
		}
	}
	_ = c.Close(coderws.StatusNormalClosure, "")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, size := range sizes {
		want := int64(1)
		if size > maxGathered {
			want = 2
		}
		if writes[i] != want {
			t.Errorf("a frame of %d bytes took %d writes, want %d", size, writes[i], want)
		}
	}
}

func TestFrameGap(t *testing.T) {
	frame := func(n int) []byte {
		h := []byte{0x81}
		switch {
		case n < 126:
			h = append(h, byte(n))
		case n < 1<<16:
			h = append(h, 126, byte(n>>8), byte(n))
		default:
			h = append(h, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		}
		return append(h, make([]byte, n)...)
	}
	for _, n := range []int{0, 1, 125, 126, 65_535, 65_536, 100_000} {
		f := frame(n)
		two := append(slices.Clone(f), frame(3)...)
		for cut := 0; cut <= len(f); cut++ {
			want := len(f) - cut
			if cut < len(f)-n { // the header is incomplete
				want = -1
			}
			if cut == 0 {
				want = 0
			}
			if got := frameGap(f[:cut]); got != want {
				t.Fatalf("frame of %d bytes cut at %d: gap %d, want %d", n, cut, got, want)
			}
			if cut == 200 && n > 200 {
				cut = len(f) - 200 // the middle of a large frame says nothing new
			}
		}
		if got := frameGap(two); got != 0 {
			t.Fatalf("two whole frames: gap %d", got)
		}
		if got := frameGap(two[:len(two)-1]); got != 1 {
			t.Fatalf("two frames but a byte: gap %d", got)
		}
	}
}
