package server_test

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/qchat/qchat/internal/qchattest"
)

// Benchmarks of issue 15's websocket rows: delivering one event to a
// subscriber, and what an idle subscribed socket holds on the server.

// BenchmarkFanoutDelivery sends sealed messages into a room of 100 members,
// each with a socket subscribed to messageAdded, and waits for all 100
// deliveries before the next send. ns/delivery is ns/op over 100, the send
// included, as the load tool's µs per delivery; the subscribers' reading
// runs in the same process and is included too.
func BenchmarkFanoutDelivery(b *testing.B) {
	const members = 100
	store := qchattest.NewSQLite(b)
	srv, users, roomID := benchRoom(b, store, members)
	bodies := sealedBodies(b, users, roomID, b.N)
	subs := make([]*qchattest.Sub, members)
	for i, u := range users {
		subs[i] = srv.Connect(b, qchattest.TransportWS, u.Token).Subscribe(messageAddedSub, map[string]any{"r": roomID})
	}
	srv.WaitSubscribers(b, members)
	p := newPoster(srv, users[0].Token)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.post(b, bodies[i])
		for _, s := range subs {
			if m, ok := s.Raw(b, 10*time.Second); !ok || m.Type != "next" {
				b.Fatalf("delivery: %s %s (received: %v)", m.Type, m.Payload, ok)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/delivery")
}

// BenchmarkIdleWebsocket opens sockets that authenticate, subscribe to
// messageAdded and then stay quiet, as most of a server's sockets are, and
// reports what each holds on the server: goroutines, and live heap plus
// goroutine stacks. The client side is a bare connection with no reader
// (no goroutine of its own); its heap, allocated under websocket.Dial, is
// left out by the heap profile's call stacks.
func BenchmarkIdleWebsocket(b *testing.B) {
	srv := qchattest.NewServer(b, qchattest.NewSQLite(b))
	u := srv.Register(b, "idle")
	var goroutines, bytes float64
	for b.Loop() {
		g, m := idleSockets(b, srv, u.Token, qchattest.TransportWS, 200)
		goroutines += g
		bytes += m
	}
	b.ReportMetric(goroutines/float64(b.N), "goroutines/socket")
	b.ReportMetric(bytes/float64(b.N), "bytes/socket")
}

// TestIdleWebsocketBudget keeps what an idle subscribed socket holds on the
// server within one goroutine (the one reading the socket: a subscription
// runs only while it has events to deliver) and its memory within
// idleSocketBytes, in both protocols.
func TestIdleWebsocketBudget(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	u := srv.Register(t, "idle")
	for _, proto := range qchattest.Protocols {
		t.Run(proto, func(t *testing.T) {
			g, m := idleSockets(t, srv, u.Token, proto, 50)
			t.Logf("%.2f goroutines, %.0f bytes per socket", g, m)
			if g > 1 {
				t.Errorf("%.2f goroutines per idle socket, want at most 1", g)
			}
			// The race detector's shadow memory and larger stacks are not
			// the server's.
			if !raceEnabled && m > idleSocketBytes {
				t.Errorf("%.0f bytes per idle socket, want at most %d", m, idleSocketBytes)
			}
		})
	}
}

// idleSocketBytes is the budget of heap and stack per idle subscribed socket
// (issue 15's target is 20 KB; measured 16.9-18.3 KB with 50 sockets of
// graphql-transport-ws, 12.8-14.7 KB of graphql-ws, which comes second and
// so shares less of the process's first-use allocations; see
// docs/PERFORMANCE.md for what a socket holds).
const idleSocketBytes = 22 << 10

// idleSockets opens n idle subscribed sockets and returns the goroutines and
// the bytes of live heap and stacks each adds to the server, then closes them.
func idleSockets(tb testing.TB, srv *qchattest.Server, token, proto string, n int) (goroutines, bytes float64) {
	tb.Helper()
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1 // every allocation, so that the profile is exact
	defer func() { runtime.MemProfileRate = rate }()
	base := srv.Broker.Subscribers()
	g0, h0, s0 := serverMemory()
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = dialIdle(tb, srv, token, proto)
	}
	srv.WaitSubscribers(tb, base-1+n)
	g1, h1, s1 := serverMemory()
	for _, c := range conns {
		_ = c.CloseNow()
	}
	for deadline := time.Now().Add(10 * time.Second); srv.Broker.Subscribers() > base; {
		if time.Now().After(deadline) {
			tb.Fatalf("%d broker subscribers 10s after closing the sockets, want %d", srv.Broker.Subscribers(), base)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return float64(g1-g0) / float64(n), (float64(h1-h0) + float64(s1-s0)) / float64(n)
}

// dialIdle opens a socket, authenticates it and subscribes to messageAdded,
// reading nothing after connection_ack.
func dialIdle(tb testing.TB, srv *qchattest.Server, token, proto string) *websocket.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{proto}})
	if err != nil {
		tb.Fatal(err)
	}
	write := func(v any) {
		msg, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			tb.Fatal(err)
		}
	}
	write(map[string]any{"type": "connection_init", "payload": map[string]any{"authToken": token}})
	if _, msg, err := c.Read(ctx); err != nil || !strings.Contains(string(msg), "connection_ack") {
		tb.Fatalf("connection_init: %s %v", msg, err)
	}
	subscribe := "subscribe"
	if proto == qchattest.LegacyWS {
		subscribe = "start"
	}
	write(map[string]any{"type": subscribe, "id": "1", "payload": map[string]any{"query": messageAddedSub}})
	return c
}

// serverMemory is the process's goroutines, live heap but what the
// benchmark's client side allocated, and goroutine stacks.
func serverMemory() (goroutines int, heap, stacks int64) {
	// Settle: goroutines of closed sockets finish, and the heap profile is
	// complete as of the last of two collections.
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+50)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	for _, r := range recs {
		if !allocatedByDial(r.Stack()) {
			heap += r.InUseBytes()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), heap, int64(ms.StackInuse)
}

// allocatedByDial recognises the client side's allocations: under
// websocket.Dial, or in the HTTP transport's own dialing goroutine (the
// client connection and its buffers, which the socket keeps).
func allocatedByDial(stack []uintptr) bool {
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		switch {
		case strings.HasPrefix(f.Function, "github.com/coder/websocket.Dial"),
			strings.HasSuffix(f.Function, "server_test.dialIdle"),
			strings.HasPrefix(f.Function, "net/http.(*Transport)."),
			strings.HasPrefix(f.Function, "net/http.(*persistConn)."):
			return true
		}
		if !more {
			return false
		}
	}
}
