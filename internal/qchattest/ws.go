package qchattest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Websocket subprotocols.
const (
	TransportWS = "graphql-transport-ws" // graphql-ws, what Apollo Client uses
	LegacyWS    = "graphql-ws"           // subscriptions-transport-ws
)

// Protocols lists both, for table-driven tests.
var Protocols = []string{TransportWS, LegacyWS}

// WS is a test websocket client speaking either protocol.
type WS struct {
	t        testing.TB
	conn     *websocket.Conn
	protocol string
	ctx      context.Context
	cancel   context.CancelFunc

	mu      sync.Mutex
	nextID  int
	events  map[string]chan WSMessage // per subscription id
	closed  chan struct{}
	reading bool
	Close   websocket.StatusCode // close status seen by the reader, once closed
	Errors  []WSMessage          // connection-level messages nobody asked for
}

// WSMessage is one protocol message.
type WSMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Dial opens a socket without sending connection_init.
func (s *Server) Dial(t testing.TB, protocol string, header http.Header) (*WS, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := "ws" + strings.TrimPrefix(s.URL, "http") + "/graphql"
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{protocol}, HTTPHeader: header})
	if err != nil {
		cancel()
		return nil, err
	}
	conn.SetReadLimit(8 << 20)
	ws := &WS{t: t, conn: conn, protocol: protocol, ctx: ctx, cancel: cancel, events: map[string]chan WSMessage{}, closed: make(chan struct{})}
	t.Cleanup(ws.Shutdown)
	return ws, nil
}

// Connect dials and completes connection_init with token; it fails the test if
// the server does not acknowledge.
func (s *Server) Connect(t testing.TB, protocol, token string) *WS {
	t.Helper()
	ws, err := s.Dial(t, protocol, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err := ws.Init(map[string]any{"authToken": token}); err != nil {
		t.Fatalf("connection_init: %v", err)
	}
	return ws
}

// Init sends connection_init and waits for connection_ack; it returns the
// connection error or close the server answered instead.
func (ws *WS) Init(payload map[string]any) error {
	p, _ := json.Marshal(payload)
	if err := ws.write(WSMessage{Type: "connection_init", Payload: p}); err != nil {
		return err
	}
	for {
		var m WSMessage
		if err := ws.read(&m); err != nil {
			return err
		}
		switch m.Type {
		case "connection_ack":
			ws.reading = true
			go ws.readLoop()
			return nil
		case "ka", "ping":
			continue
		default:
			return &InitError{Message: m}
		}
	}
}

// InitError is a refused connection_init.
type InitError struct{ Message WSMessage }

func (e *InitError) Error() string {
	return "connection refused: " + e.Message.Type + " " + string(e.Message.Payload)
}

func (ws *WS) write(m WSMessage) error {
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(ws.ctx, 5*time.Second)
	defer cancel()
	return ws.conn.Write(ctx, websocket.MessageText, b)
}

func (ws *WS) read(m *WSMessage) error {
	_, b, err := ws.conn.Read(ws.ctx)
	if err != nil {
		ws.Close = websocket.CloseStatus(err)
		return err
	}
	return json.Unmarshal(b, m)
}

func (ws *WS) readLoop() {
	defer close(ws.closed)
	for {
		var m WSMessage
		if err := ws.read(&m); err != nil {
			ws.mu.Lock()
			for id, ch := range ws.events {
				close(ch)
				delete(ws.events, id)
			}
			ws.mu.Unlock()
			return
		}
		switch m.Type {
		case "ping":
			_ = ws.write(WSMessage{Type: "pong"})
			continue
		case "ka", "pong":
			continue
		}
		ws.mu.Lock()
		ch := ws.events[m.ID]
		if ch == nil {
			ws.Errors = append(ws.Errors, m)
		}
		ws.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
				ws.t.Errorf("test websocket buffer full for subscription %s", m.ID)
			}
		}
	}
}

// Sub is one subscription on a socket.
type Sub struct {
	ws     *WS
	ID     string
	events chan WSMessage
}

// Subscribe starts a subscription.
func (ws *WS) Subscribe(query string, vars map[string]any) *Sub {
	ws.t.Helper()
	ws.mu.Lock()
	ws.nextID++
	id := strconv.Itoa(ws.nextID)
	ch := make(chan WSMessage, 1024)
	ws.events[id] = ch
	ws.mu.Unlock()
	typ := "subscribe"
	if ws.protocol == LegacyWS {
		typ = "start"
	}
	p, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err := ws.write(WSMessage{Type: typ, ID: id, Payload: p}); err != nil {
		ws.t.Fatalf("subscribe: %v", err)
	}
	return &Sub{ws: ws, ID: id, events: ch}
}

// Stop ends a subscription from the client side.
func (s *Sub) Stop() {
	typ := "complete"
	if s.ws.protocol == LegacyWS {
		typ = "stop"
	}
	_ = s.ws.write(WSMessage{Type: typ, ID: s.ID})
}

// Next waits for the next data payload and decodes its data into v. It fails
// the test on an error message, completion or timeout.
func (s *Sub) Next(t testing.TB, v any) {
	t.Helper()
	m, ok := s.Raw(t, 5*time.Second)
	if !ok {
		t.Fatalf("subscription %s: no event within 5s", s.ID)
	}
	if m.Type != "next" && m.Type != "data" {
		t.Fatalf("subscription %s: got %s %s, want data", s.ID, m.Type, m.Payload)
	}
	var p struct {
		Data   json.RawMessage `json:"data"`
		Errors []GQLError      `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	if len(p.Errors) > 0 {
		t.Fatalf("subscription %s: errors %+v", s.ID, p.Errors)
	}
	if err := json.Unmarshal(p.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", p.Data, err)
	}
}

// Raw waits up to d for the next message of the subscription.
func (s *Sub) Raw(t testing.TB, d time.Duration) (WSMessage, bool) {
	t.Helper()
	select {
	case m, ok := <-s.events:
		return m, ok
	case <-time.After(d):
		return WSMessage{}, false
	}
}

// ExpectNone asserts that nothing arrives within d.
func (s *Sub) ExpectNone(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-s.events:
		if ok {
			t.Fatalf("subscription %s: unexpected %s %s", s.ID, m.Type, m.Payload)
		}
	case <-time.After(d):
	}
}

// WaitSubscribers waits until the broker holds n subscriptions, so that events
// published afterwards are not raced against the subscribe.
func (s *Server) WaitSubscribers(t testing.TB, n int) {
	t.Helper()
	n++ // the server's own subscription to cache invalidations
	deadline := time.Now().Add(5 * time.Second)
	for s.Broker.Subscribers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d broker subscribers, want %d", s.Broker.Subscribers(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Shutdown closes the socket and waits for its reader.
func (ws *WS) Shutdown() {
	_ = ws.conn.Close(websocket.StatusNormalClosure, "")
	ws.cancel()
	if !ws.reading {
		return
	}
	select {
	case <-ws.closed:
	case <-time.After(5 * time.Second):
	}
}

// Done is closed when the server closed the socket.
func (ws *WS) Done() <-chan struct{} { return ws.closed }
