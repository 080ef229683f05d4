package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
)

// frameSocket is gqlgen's coder/websocket adapter
// (transport.CoderWebsocketImplementation) with one change: WriteJSON writes
// gqlgen's protocol messages without encoding/json. gqlgen hands WriteJSON a
// message whose payload is already-encoded JSON (a json.RawMessage), and
// json.Marshal validates and compacts every byte of that payload again: 6% of
// server CPU under the fan-out load, where each event becomes one frame per
// subscriber. Anything that is not such a message still goes through
// json.Marshal.
//
// It also bounds every write by WriteTimeout: gqlgen writes with no deadline,
// so a client that stops reading would block the write, and with it the
// socket's subscriptions, for ever.
type frameSocket struct {
	AcceptOptions coderws.AcceptOptions
	WriteTimeout  time.Duration // <= 0: none
}

func (f frameSocket) Accept(w http.ResponseWriter, r *http.Request, options transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	for key, values := range options.ResponseHeader {
		for _, value := range values {
			w.Header().Add(key, value)
		}
	}
	accept := f.AcceptOptions
	for _, p := range options.Subprotocols {
		if !slices.Contains(accept.Subprotocols, p) {
			accept.Subprotocols = append(accept.Subprotocols, p)
		}
	}
	conn, err := coderws.Accept(w, r, &accept)
	if err != nil {
		return nil, err
	}
	c := &frameConn{conn: conn, state: SocketStateFrom(r.Context())}
	if f.WriteTimeout > 0 {
		// One timer per socket, armed around each write: a context with a
		// deadline per write would cost a timer and a context per frame on
		// the fan-out path. Firing, it closes the connection, which fails
		// the blocked write and then the transport's read loop, which
		// tears the socket down (subscriptions cancelled, CloseFunc run).
		c.writeTimeout = f.WriteTimeout
		c.writeTimer = time.AfterFunc(time.Hour, func() { _ = conn.CloseNow() })
		c.writeTimer.Stop()
	}
	return c, nil
}

type frameConn struct {
	conn  *coderws.Conn
	state *SocketState // nil outside the server's socket tracking

	writeTimeout time.Duration
	writeTimer   *time.Timer // nil: writes are not bounded

	mu           sync.Mutex
	deadline     *time.Timer
	closeStarted bool
}

// frames holds frame buffers between writes. A pool rather than a buffer per
// connection: thousands of mostly idle sockets would each keep one.
var frames = sync.Pool{New: func() any { return new([]byte) }}

var (
	_ transport.WebsocketReadLimiter   = (*frameConn)(nil)
	_ transport.WebsocketReadDeadliner = (*frameConn)(nil)
)

func (c *frameConn) Close() error {
	if c.writeTimer != nil {
		c.writeTimer.Stop()
	}
	c.mu.Lock()
	c.stopDeadlineLocked()
	closing := c.closeStarted
	c.mu.Unlock()
	// A close handshake started by WriteClose owns the connection's end;
	// CloseNow here would cut it short before the close frame is written.
	if closing {
		return nil
	}
	return c.conn.CloseNow()
}

func (c *frameConn) NextReader() (int, io.Reader, error) {
	typ, data, err := c.conn.Read(context.Background())
	if err != nil {
		switch coderws.CloseStatus(err) {
		case coderws.StatusNormalClosure, coderws.StatusNoStatusRcvd:
			return int(typ), nil, transport.ErrWebsocketClosed
		}
		return int(typ), nil, err
	}
	return int(typ), bytes.NewReader(data), nil
}

func (c *frameConn) WriteJSON(v any) error {
	buf := frames.Get().(*[]byte)
	frame, ok := appendFrame((*buf)[:0], v)
	if !ok {
		frames.Put(buf)
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return c.write(data)
	}
	// coder/websocket has copied the frame out when Write returns.
	err := c.write(frame)
	if cap(frame) <= 64<<10 { // one huge payload's buffer is not kept
		*buf = frame
		frames.Put(buf)
	}
	return err
}

// write sends one text frame within the write timeout. gqlgen serialises its
// writes, so one timer serves them all.
func (c *frameConn) write(frame []byte) error {
	if c.writeTimer == nil {
		return c.conn.Write(context.Background(), coderws.MessageText, frame)
	}
	c.writeTimer.Reset(c.writeTimeout)
	err := c.conn.Write(context.Background(), coderws.MessageText, frame)
	c.writeTimer.Stop()
	if err != nil {
		return fmt.Errorf("websocket write (timeout %v): %w", c.writeTimeout, err)
	}
	return nil
}

func (c *frameConn) WriteClose(code int, msg string) error {
	c.mu.Lock()
	c.stopDeadlineLocked()
	if c.closeStarted {
		c.mu.Unlock()
		return nil
	}
	c.closeStarted = true
	c.mu.Unlock()
	// coder/websocket's Close waits up to 5 s for the peer's close frame; the
	// transport's teardown (and CloseFunc) must not wait for a silent peer.
	// The handshake is tracked by the socket's state, so that the server's
	// socket accounting (and with it a graceful shutdown) waits until the
	// close frame is written: a process that exits first leaves the client
	// a dropped connection instead of 1001, going away.
	done := func() {}
	if c.state != nil {
		done = c.state.closeStarted()
	}
	go func() {
		defer done()
		_ = c.conn.Close(coderws.StatusCode(code), msg)
	}()
	return nil
}

func (c *frameConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *frameConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

func (c *frameConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.stopDeadlineLocked()
	if !t.IsZero() {
		if d := time.Until(t); d > 0 {
			c.deadline = time.AfterFunc(d, func() { _ = c.conn.CloseNow() })
			t = time.Time{}
		}
	}
	c.mu.Unlock()
	if !t.IsZero() { // already past
		return c.conn.CloseNow()
	}
	return nil
}

func (c *frameConn) stopDeadlineLocked() {
	if c.deadline != nil {
		c.deadline.Stop()
		c.deadline = nil
	}
}

// messageFields locates Payload, ID and Type in one of gqlgen's (unexported)
// protocol message types, found by reflection once per type. A type of any
// other shape is not a protocol message and gets nil.
type messageFields struct{ payload, id, typ int }

var protocolTypes sync.Map // reflect.Type -> *messageFields (nil: not one)

func fieldsOf(t reflect.Type) *messageFields {
	if f, ok := protocolTypes.Load(t); ok {
		return f.(*messageFields)
	}
	var f *messageFields
	payload, ok1 := t.FieldByName("Payload")
	id, ok2 := t.FieldByName("ID")
	typ, ok3 := t.FieldByName("Type")
	if ok1 && ok2 && ok3 && t.NumField() >= 3 &&
		payload.Type == reflect.TypeFor[json.RawMessage]() && payload.Tag.Get("json") == "payload,omitempty" &&
		id.Type.Kind() == reflect.String && id.Tag.Get("json") == "id,omitempty" &&
		typ.Type.Kind() == reflect.String && typ.Tag.Get("json") == "type" &&
		!reflect.PointerTo(typ.Type).Implements(reflect.TypeFor[json.Marshaler]()) &&
		!typ.Type.Implements(reflect.TypeFor[json.Marshaler]()) &&
		len(payload.Index) == 1 && len(id.Index) == 1 && len(typ.Index) == 1 {
		f = &messageFields{payload.Index[0], id.Index[0], typ.Index[0]}
	}
	protocolTypes.Store(t, f)
	return f
}

// appendFrame appends v encoded as json.Marshal would (fields in declaration
// order: payload, id, type), trusting the payload to be JSON that gqlgen
// itself encoded with json.Marshal. ok is false for anything else.
func appendFrame(b []byte, v any) ([]byte, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return b, false
	}
	rv = rv.Elem()
	f := fieldsOf(rv.Type())
	if f == nil {
		return b, false
	}
	payload := rv.Field(f.payload).Bytes()
	id := rv.Field(f.id).String()
	typ := rv.Field(f.typ).String()
	b = append(b, '{')
	if len(payload) > 0 {
		b = append(b, `"payload":`...)
		b = append(b, payload...)
		b = append(b, ',')
	}
	if id != "" {
		b = append(b, `"id":`...)
		b = appendString(b, id)
		b = append(b, ',')
	}
	b = append(b, `"type":`...)
	b = appendString(b, typ)
	return append(b, '}'), true
}

// appendString appends s as a JSON string, escaped exactly as json.Marshal
// escapes it (the id is the client's and may hold anything).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
