package graph

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	coderws "github.com/coder/websocket"
)

// frameSocket accepts websockets for socketTransport over coder/websocket,
// and frameConn writes its protocol messages.
//
// Every write is bounded by WriteTimeout: a client that stops reading would
// otherwise block the write, and with it the socket's subscriptions, for
// ever.
type frameSocket struct {
	AcceptOptions coderws.AcceptOptions
	WriteTimeout  time.Duration // <= 0: none
}

func (f frameSocket) accept(w http.ResponseWriter, r *http.Request, protocols []string) (*frameConn, error) {
	accept := f.AcceptOptions
	for _, p := range protocols {
		if !slices.Contains(accept.Subprotocols, p) {
			accept.Subprotocols = append(accept.Subprotocols, p)
		}
	}
	conn, err := coderws.Accept(smallBuffers{w}, r, &accept)
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

// The buffers a websocket reads and writes through. net/http hands a
// hijacked connection its own 4 KiB buffers; most sockets are idle, so the
// read buffer is smaller (a larger frame is read straight into its
// message), while the write buffer keeps a delivery of a few KiB to one
// system call.
const (
	socketReadBuffer  = 1 << 10
	socketWriteBuffer = 4 << 10
)

// smallBuffers gives coder/websocket the hijacked connection with buffers of
// the sizes above instead of net/http's. net/http's buffer structs are
// reused in place: the connection's serving goroutine, which runs the
// socket, keeps pointers to them, so their old arrays are freed only if the
// structs stop holding them.
type smallBuffers struct{ http.ResponseWriter }

func (s smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	if brw.Writer.Buffered() > 0 {
		if err := brw.Writer.Flush(); err != nil {
			return conn, brw, err
		}
	}
	// Whatever the client sent after its upgrade request is buffered, and
	// must stay in the buffer: coder/websocket keeps the buffered bytes and
	// reads the rest from conn.
	n := brw.Reader.Buffered()
	pending, _ := brw.Reader.Peek(n)
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(pending)), conn), max(socketReadBuffer, n))
	if _, err := r.Peek(n); err != nil {
		return conn, brw, err
	}
	*brw.Reader = *r
	*brw.Writer = *bufio.NewWriterSize(conn, socketWriteBuffer)
	return conn, brw, nil
}

type frameConn struct {
	conn  *coderws.Conn
	state *SocketState // nil outside the server's socket tracking

	writeTimeout time.Duration
	writeTimer   *time.Timer // nil: writes are not bounded

	mu           sync.Mutex
	closeStarted bool
}

// frames holds frame buffers between writes. A pool rather than a buffer per
// connection: thousands of mostly idle sockets would each keep one.
var frames = sync.Pool{New: func() any { return new([]byte) }}

// errSocketClosed is the peer's normal close.
var errSocketClosed = errors.New("websocket connection closed")

func (c *frameConn) close() error {
	if c.writeTimer != nil {
		c.writeTimer.Stop()
	}
	c.mu.Lock()
	closing := c.closeStarted
	c.mu.Unlock()
	// A close handshake started by WriteClose owns the connection's end;
	// CloseNow here would cut it short before the close frame is written.
	if closing {
		return nil
	}
	return c.conn.CloseNow()
}

// read returns the next message's bytes.
func (c *frameConn) read() ([]byte, error) {
	_, data, err := c.conn.Read(context.Background())
	if err != nil {
		switch coderws.CloseStatus(err) {
		case coderws.StatusNormalClosure, coderws.StatusNoStatusRcvd:
			return nil, errSocketClosed
		}
		return nil, err
	}
	return data, nil
}

// writeMessage writes one protocol message, {"payload":…,"id":…,"type":…}
// as gqlgen lays it out; payload is JSON the server encoded, or empty.
func (c *frameConn) writeMessage(typ, id string, payload []byte) error {
	buf := frames.Get().(*[]byte)
	frame := appendMessage((*buf)[:0], typ, id, payload)
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

func (c *frameConn) writeClose(code int, msg string) error {
	c.mu.Lock()
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

// appendMessage appends a protocol message as json.Marshal would encode
// gqlgen's message struct (payload, id, type, the empty ones left out).
func appendMessage(b []byte, typ, id string, payload []byte) []byte {
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
	return append(b, '}')
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
