package graph

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
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
// hijacked connection its own 4 KiB buffers; most sockets are idle and
// would keep them for nothing. The read buffer is small (a larger frame is
// read straight into its message). Writes go through a buffer only as
// large as a frame's header (coder/websocket writes the header and the
// payload separately) to a frameWriter, which gathers each frame in a
// buffer from a pool for as long as it is being written: a delivery is
// still one system call, and an idle socket holds no write buffer.
const (
	socketReadBuffer  = 256
	socketWriteBuffer = 16 // >= the largest header of a server's frame (10 bytes)
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
	*brw.Writer = *bufio.NewWriterSize(&frameWriter{conn: conn}, socketWriteBuffer)
	return conn, brw, nil
}

// maxGathered is the largest frame a frameWriter gathers into one write; a
// larger one is written as it comes (its start, then the rest: two system
// calls, as with a 4 KiB buffer).
const maxGathered = 32 << 10

// frameWriter writes a server's websocket frames to conn, each in one
// write: the start of a frame that is not yet complete waits in a buffer
// from frames until the rest comes. It relies on coder/websocket flushing
// its buffered writer at the end of each frame, and serialising frames.
type frameWriter struct {
	conn    io.Writer
	pending *[]byte // the start of an incomplete frame; nil: none
	direct  int     // bytes still to come of a frame too large to gather
}

func (w *frameWriter) Write(p []byte) (int, error) {
	written := 0
	if w.direct > 0 {
		k := min(len(p), w.direct)
		n, err := w.conn.Write(p[:k])
		w.direct -= n
		written += n
		if err != nil || k == len(p) {
			return written, err
		}
		p = p[k:]
	}
	buf := p
	if w.pending != nil {
		*w.pending = append(*w.pending, p...)
		buf = *w.pending
	}
	switch gap := frameGap(buf); {
	case gap == 0 || gap > maxGathered:
		// Whole frames, or the start of one too large to gather.
		_, err := w.conn.Write(buf)
		w.release()
		if err != nil {
			return written, err
		}
		w.direct = max(gap, 0)
	case w.pending == nil:
		w.pending = frames.Get().(*[]byte)
		*w.pending = append((*w.pending)[:0], p...)
	}
	return written + len(p), nil
}

func (w *frameWriter) release() {
	if w.pending == nil {
		return
	}
	if cap(*w.pending) <= 64<<10 {
		frames.Put(w.pending)
	}
	w.pending = nil
}

// frameGap is how many bytes b lacks to end where a websocket frame ends:
// 0 when it holds whole frames, -1 when its last frame's header is
// incomplete (RFC 6455, 5.2).
func frameGap(b []byte) int {
	for len(b) > 0 {
		if len(b) < 2 {
			return -1
		}
		header, size := 2, uint64(b[1]&0x7f)
		switch size {
		case 126:
			header = 4
		case 127:
			header = 10
		}
		if b[1]&0x80 != 0 {
			header += 4 // a masking key (a client's frame)
		}
		if len(b) < header {
			return -1
		}
		switch size {
		case 126:
			size = uint64(binary.BigEndian.Uint16(b[2:]))
		case 127:
			size = binary.BigEndian.Uint64(b[2:])
		}
		if have := uint64(len(b) - header); have < size {
			return int(min(size-have, 1<<40))
		}
		b = b[header+int(size):]
	}
	return 0
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
