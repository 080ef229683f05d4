package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/reqctx"
)

// socketTransport serves GraphQL over a websocket in both protocols that
// gqlgen's transport.Websocket speaks, graphql-transport-ws (graphql-ws's
// current protocol, Apollo Client's) and the legacy graphql-ws, with the
// same messages, close codes and errors. It replaces gqlgen's transport
// because of what that one holds per socket: besides the handler's own
// goroutine, one that waits for the socket's context to end, one per
// keepalive ticker, and per subscription one goroutine in the transport
// that reads the resolver's channel on top of the resolver's own goroutine
// that feeds it — four goroutines for a socket with one subscription, most
// of a socket's memory. Here the handler's goroutine reads the socket,
// timers stand in for the waiting goroutines (they run only when they
// fire), and a subscription runs in one goroutine: the resolver hands its
// loop to the transport (RunStream), which resolves and writes each value as
// the loop produces it.
type socketTransport struct {
	sockets      frameSocket
	initTimeout  time.Duration
	keepAlive    time.Duration // graphql-ws's "ka" messages; <= 0: none
	readLimit    int64
	init         func(ctx context.Context, payload transport.InitPayload) (context.Context, error)
	closed       func(ctx context.Context)
	errorf       func(ctx context.Context, err error)
	panicked     func(ctx context.Context, v any) // a panic serving a detached socket
	shuttingDown func() bool
	// schema is the executable schema, for shared messageAdded responses
	// (shared.go); any other schema serves every value the normal way.
	schema graphql.ExecutableSchema
}

var _ graphql.Transport = socketTransport{}

// The subprotocols, in the order gqlgen offers them.
const (
	protoLegacy  = "graphql-ws"
	protoCurrent = "graphql-transport-ws"
)

// Close codes (RFC 6455 and graphql-ws's).
const (
	closeNormal        = 1000
	closeGoingAway     = 1001
	closeProtocolError = 1002
	closeInternalError = 1011
	closeForbidden     = 4403
	closeTooManyInits  = 4429
)

func (socketTransport) Supports(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

func (t socketTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	fc, err := t.sockets.accept(w, r, []string{protoLegacy, protoCurrent})
	if err != nil {
		// As gqlgen (coder/websocket has usually answered already).
		t.errorf(r.Context(), fmt.Errorf("websocket upgrade: %w", err))
		transport.SendErrorf(w, http.StatusBadRequest, "unable to upgrade")
		return
	}
	c := &wsConn{t: t, conn: fc, ctx: r.Context(), exec: exec, headers: r.Header, state: SocketStateFrom(r.Context())}
	switch fc.conn.Subprotocol() {
	case protoLegacy, "":
		// gqlgen's default for a client that names no subprotocol.
		c.legacy = true
	case protoCurrent:
	default:
		_ = fc.writeClose(closeProtocolError, "unsupported negotiated subprotocol "+fc.conn.Subprotocol())
		return
	}
	if t.readLimit > 0 {
		fc.conn.SetReadLimit(t.readLimit)
	}
	// connection_init is served here: authenticating it (a database query
	// at worst) grows the stack, which would then stay with the socket.
	if !c.initialise() {
		return
	}
	end, detached := reqctx.Detach(r.Context())
	if !detached {
		c.run()
		return
	}
	// The socket is served on by a goroutine of its own, so that this
	// one's stack of middleware frames and net/http's state for the
	// upgrade request are not kept for the socket's life (most of an idle
	// socket's memory). The middlewares' end of the request (its log line,
	// the socket accounting) waits for end.
	c.watch()
	go c.serveDetached(end)
}

// wsConn is one socket's session.
type wsConn struct {
	t       socketTransport
	conn    *frameConn
	state   *SocketState // nil outside the server's socket tracking
	ctx     context.Context
	exec    graphql.GraphExecutor
	headers http.Header
	legacy  bool // graphql-ws rather than graphql-transport-ws

	wmu sync.Mutex // serialises writes

	mu        sync.Mutex
	active    []activeOp // a slice: a socket has few operations, most one
	closed    bool
	keepAlive *time.Timer
	stopWatch func() // stops watching the socket's context
}

// activeOp is a running operation: its client's id, and what stops it.
type activeOp struct {
	id     string
	cancel context.CancelFunc
}

// activeIndex is the index of the operation id in c.active, or -1; c.mu
// is held.
func (c *wsConn) activeIndex(id string) int {
	for i, op := range c.active {
		if op.id == id {
			return i
		}
	}
	return -1
}

// kind is a protocol message's meaning, whatever its name in either protocol.
type kind int

const (
	kindInvalid kind = iota // a name the protocol has, but not from a client
	kindInit
	kindAck
	kindKeepAlive
	kindConnectionError
	kindTerminate
	kindStart
	kindStop
	kindData
	kindComplete
	kindError
	kindPing
	kindPong
)

// String is gqlgen's name of the kind, as its "unexpected message" errors
// say it.
func (k kind) String() string {
	switch k {
	case kindInit:
		return "init"
	case kindAck:
		return "connection ack"
	case kindKeepAlive:
		return "keep alive"
	case kindConnectionError:
		return "connection error"
	case kindTerminate:
		return "connection close"
	case kindStart:
		return "start"
	case kindStop:
		return "stop subscription"
	case kindData:
		return "data"
	case kindComplete:
		return "complete"
	case kindError:
		return "error"
	case kindPing:
		return "ping"
	case kindPong:
		return "pong"
	}
	return "unknown"
}

// What a client may send, by protocol. A name the protocol knows that is
// not a client's is kindInvalid in graphql-transport-ws; graphql-ws maps
// every one of its names (gqlgen does both).
var (
	clientKinds = map[string]kind{
		"connection_init": kindInit, "subscribe": kindStart, "complete": kindStop,
		"ping": kindPing, "pong": kindPong,
		"connection_ack": kindInvalid, "next": kindInvalid, "error": kindInvalid,
	}
	legacyClientKinds = map[string]kind{
		"connection_init": kindInit, "connection_terminate": kindTerminate, "start": kindStart,
		"stop": kindStop, "connection_ack": kindAck, "connection_error": kindConnectionError,
		"data": kindData, "error": kindError, "complete": kindComplete, "ka": kindKeepAlive,
	}
)

// serverName is the name of what the server sends, by protocol; "" is a
// message the protocol does not have, which is not sent.
func (c *wsConn) serverName(k kind) string {
	if c.legacy {
		switch k {
		case kindAck:
			return "connection_ack"
		case kindKeepAlive:
			return "ka"
		case kindConnectionError:
			return "connection_error"
		case kindData:
			return "data"
		case kindComplete:
			return "complete"
		case kindError:
			return "error"
		}
		return ""
	}
	switch k {
	case kindAck:
		return "connection_ack"
	case kindData:
		return "next"
	case kindComplete:
		return "complete"
	case kindError:
		return "error"
	case kindPing:
		return "ping"
	case kindPong:
		return "pong"
	}
	return ""
}

type message struct {
	kind    kind
	id      string
	payload json.RawMessage
}

var (
	errInvalidMessage = errors.New("invalid message received")
	errInitTimeout    = errors.New("connection initialisation timeout")
)

// next reads one message. errInvalidMessage is a frame that is not a
// message of the protocol; a message of the protocol that a client may not
// send is an error too, as in gqlgen.
func (c *wsConn) next() (message, error) {
	data, err := c.conn.read()
	if err != nil {
		return message{}, err
	}
	var m struct {
		Payload json.RawMessage `json:"payload,omitempty"`
		ID      string          `json:"id,omitempty"`
		Type    string          `json:"type"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return message{}, errInvalidMessage
	}
	kinds := clientKinds
	if c.legacy {
		kinds = legacyClientKinds
	}
	k, ok := kinds[m.Type]
	if !ok {
		return message{}, errInvalidMessage
	}
	if k == kindInvalid {
		return message{}, fmt.Errorf("invalid client->server message type %s", m.Type)
	}
	return message{kind: k, id: m.ID, payload: m.Payload}, nil
}

// initialise waits for connection_init and authenticates it.
func (c *wsConn) initialise() bool {
	var m message
	var err error
	if c.t.initTimeout > 0 {
		// A timer rather than a goroutine with the read: firing, it closes
		// the socket, which ends the read.
		timer := time.AfterFunc(c.t.initTimeout, func() {
			c.close(closeProtocolError, "connection initialisation timeout")
		})
		m, err = c.next()
		if !timer.Stop() {
			err = errInitTimeout
		}
	} else {
		m, err = c.next()
	}
	if err != nil {
		switch {
		case errors.Is(err, errInitTimeout):
			// closed by the timer
		case errors.Is(err, errInvalidMessage):
			c.connectionError("invalid json")
			fallthrough
		default:
			c.close(closeProtocolError, "decoding error")
		}
		return false
	}
	switch m.kind {
	case kindInit:
	case kindTerminate:
		c.close(closeNormal, "terminated")
		return false
	default:
		c.connectionError("unexpected message %s", m.kind)
		c.close(closeProtocolError, "unexpected message")
		return false
	}
	var payload transport.InitPayload
	if len(m.payload) > 0 {
		payload = make(transport.InitPayload)
		if err := json.Unmarshal(m.payload, &payload); err != nil {
			c.close(closeProtocolError, "decoding error")
			return false
		}
	}
	if c.t.init != nil {
		ctx, err := c.t.init(c.ctx, payload)
		if err != nil {
			c.connectionError("%s", err.Error())
			c.close(closeForbidden, "Forbidden")
			return false
		}
		c.ctx = ctx
	}
	c.write(kindAck, "", nil)
	c.write(kindKeepAlive, "", nil)
	return true
}

// watch starts what closes the socket besides its client (its context's
// end) and graphql-ws's keepalive.
func (c *wsConn) watch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	// The socket closes when its context ends (a revoked session, the
	// server's shutdown), or when its reading ends.
	ctx, cancel := context.WithCancel(c.ctx)
	c.ctx = ctx
	stop := context.AfterFunc(ctx, func() { c.close(closeNormal, "terminated") })
	c.stopWatch = func() { stop(); cancel() }
	if c.legacy && c.t.keepAlive > 0 {
		c.keepAlive = time.AfterFunc(c.t.keepAlive, c.sendKeepAlive)
	}
}

// run serves the socket's messages until it closes.
func (c *wsConn) run() {
	c.watch()
	defer c.close(closeNormal, "terminated")
	for c.serveNext() {
	}
}

// serveDetached serves the socket's next message, and hands the rest on
// to a fresh goroutine: reading and handling a message (coder/websocket's
// read, JSON decoding, a write) grows a goroutine's stack to 8 KiB, while
// waiting for the next message needs 4, and the runtime shrinks a parked
// goroutine's stack only while it uses less than a quarter of it. The
// socket's last goroutine closes it, and calls end.
func (c *wsConn) serveDetached(end func()) {
	handedOn := false
	defer func() {
		if handedOn {
			return
		}
		defer end()
		c.close(closeNormal, "terminated")
		if v := recover(); v != nil {
			c.t.panicked(c.ctx, v)
			c.close(closeInternalError, "internal server error")
		}
	}()
	if c.serveNext() {
		handedOn = true
		go c.serveDetached(end)
	}
}

// serveNext reads and serves one message; false: the socket is done.
func (c *wsConn) serveNext() bool {
	start := graphql.Now()
	m, err := c.next()
	if err != nil {
		if !errors.Is(err, errSocketClosed) {
			c.t.errorf(c.ctx, transport.WebsocketError{Err: err, IsReadError: true})
		}
		return false
	}
	switch m.kind {
	case kindStart:
		c.subscribe(start, m)
	case kindStop:
		var cancel context.CancelFunc
		c.mu.Lock()
		if i := c.activeIndex(m.id); i >= 0 {
			cancel = c.active[i].cancel
		}
		c.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	case kindTerminate:
		c.close(closeNormal, "terminated")
		return false
	case kindPing:
		c.write(kindPong, "", m.payload)
	case kindPong:
	default:
		c.connectionError("unexpected message %s", m.kind)
		c.close(closeProtocolError, "unexpected message")
		return false
	}
	return true
}

func (c *wsConn) sendKeepAlive() {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	c.write(kindKeepAlive, "", nil)
	c.mu.Lock()
	if !c.closed {
		c.keepAlive.Reset(c.t.keepAlive)
	}
	c.mu.Unlock()
}

// subscribe starts one operation (a subscription, or a query or mutation:
// both protocols carry them) in a goroutine of its own.
func (c *wsConn) subscribe(start time.Time, m message) {
	ctx := graphql.StartOperationTrace(c.ctx)
	params := &graphql.RawParams{}
	// The POST transport's decode (rawparams.go): encoding/json decodes
	// what it does not, errors included.
	if !decodeParams(m.payload, params) {
		*params = graphql.RawParams{}
		dec := json.NewDecoder(bytes.NewReader(m.payload))
		dec.UseNumber()
		if err := dec.Decode(params); err != nil {
			c.sendErrors(m.id, &gqlerror.Error{Message: "invalid json"})
			c.write(kindComplete, m.id, nil)
			return
		}
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	params.Headers = c.headers
	rc, errs := createOperationContext(ctx, c.exec, params)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			c.sendErrors(m.id, resp.Errors...)
		} else {
			c.sendResponse(m.id, &graphql.Response{Errors: errs})
		}
		c.write(kindComplete, m.id, nil)
		return
	}
	ctx = graphql.WithOperationContext(ctx, rc)
	ctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		return
	}
	if i := c.activeIndex(m.id); i >= 0 {
		// A reused id takes the entry over, as gqlgen's map does.
		c.active[i].cancel = cancel
	} else {
		c.active = append(c.active, activeOp{m.id, cancel})
	}
	c.mu.Unlock()
	go c.serve(ctx, cancel, m.id, rc)
}

// serve runs one operation: its responses are written as they come, and
// the operation ends with complete, or error for a subscription that ended
// with one (SLOW_CONSUMER).
func (c *wsConn) serve(ctx context.Context, cancel context.CancelFunc, id string, rc *graphql.OperationContext) {
	ctx, errs := withSubscriptionErrors(ctx)
	ctx, slot := withStreamSlot(ctx)
	slot.shared = newSharedDelivery(c, id, rc)
	op := &operation{c: c, id: id, rc: rc, cancel: cancel, errs: errs}
	handedOff := false
	slot.ready.Add(1)
	defer func() {
		slot.ready.Done()
		if !handedOff {
			op.end(ctx, recover())
		}
	}()
	responses, ctx := c.exec.DispatchOperation(ctx, rc)
	deliver := func() bool {
		resp := responses(ctx)
		if resp == nil {
			return false
		}
		c.sendResponse(id, resp)
		return true
	}
	if !slot.claimed.Load() {
		for deliver() {
		}
		return
	}
	// The subscription is served from the broker's goroutine for it, which
	// runs only while events wait (RunStream), and this one ends: an idle
	// subscription holds no goroutine, and this one's stack grew deep
	// dispatching the operation.
	handedOff = true
	slot.ctx, slot.op, slot.deliver = ctx, op, deliver
	slot.running.Store(true)
}

// operation is what ends a websocket operation.
type operation struct {
	c      *wsConn
	id     string
	rc     *graphql.OperationContext
	cancel context.CancelFunc
	errs   *subscriptionErrors
	ended  atomic.Bool
}

// end finishes the operation, once: an error for a panic (r) or for the
// errors it ended with (SLOW_CONSUMER), complete otherwise.
func (op *operation) end(ctx context.Context, r any) {
	if op.ended.Swap(true) {
		return
	}
	c, id := op.c, op.id
	if r != nil {
		err := op.rc.Recover(ctx, r)
		var gqlErr *gqlerror.Error
		if !errors.As(err, &gqlErr) {
			gqlErr = &gqlerror.Error{}
			if err != nil {
				gqlErr.Message = err.Error()
			}
		}
		c.sendErrors(id, gqlErr)
	}
	if list := op.errs.list(); len(list) != 0 {
		c.sendErrors(id, list...)
	} else if c.ctx.Err() == nil {
		// An ended socket context closes the socket: complete would tell
		// the client of a normal end.
		c.write(kindComplete, id, nil)
	}
	c.mu.Lock()
	if i := c.activeIndex(id); i >= 0 {
		c.active = slices.Delete(c.active, i, i+1)
	}
	c.mu.Unlock()
	op.cancel()
}

func (c *wsConn) sendResponse(id string, resp *graphql.Response) {
	buf := frames.Get().(*[]byte)
	payload := appendResponse((*buf)[:0], resp)
	c.write(kindData, id, payload)
	if cap(payload) <= 64<<10 {
		*buf = payload
		frames.Put(buf)
	}
}

func (c *wsConn) sendErrors(id string, list ...*gqlerror.Error) {
	b, err := json.Marshal(list)
	if err != nil {
		b = []byte(`[{"message":"the error could not be encoded"}]`)
	}
	c.write(kindError, id, b)
}

func (c *wsConn) connectionError(format string, args ...any) {
	b, _ := json.Marshal(&gqlerror.Error{Message: fmt.Sprintf(format, args...)})
	c.write(kindConnectionError, "", b)
}

// write sends one message, if the protocol has it.
func (c *wsConn) write(k kind, id string, payload []byte) {
	name := c.serverName(k)
	if name == "" {
		return
	}
	c.wmu.Lock()
	err := c.conn.writeMessage(name, id, payload)
	c.wmu.Unlock()
	if err != nil {
		c.t.errorf(c.ctx, transport.WebsocketError{Err: err})
	}
}

// close ends the socket once: the close frame (whose code says why: a
// revoked session, a refused init for its rate, a shutdown), every
// operation cancelled, the closed callback.
func (c *wsConn) close(code int, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	active := c.active
	c.active = nil
	if c.keepAlive != nil {
		c.keepAlive.Stop()
	}
	stopWatch := c.stopWatch
	c.mu.Unlock()
	switch {
	case c.state != nil && c.state.rateLimited.Load():
		code, reason = closeTooManyInits, "Too many initialisation requests"
	case c.state != nil && c.state.revoked.Load():
		code, reason = closeForbidden, "Forbidden: session ended"
	case code == closeNormal && c.t.shuttingDown():
		code, reason = closeGoingAway, "server shutting down"
	}
	_ = c.conn.writeClose(code, reason)
	for _, op := range active {
		op.cancel()
	}
	_ = c.conn.close()
	if stopWatch != nil {
		stopWatch()
	}
	if c.t.closed != nil {
		c.t.closed(c.ctx)
	}
}

// streamSlot is how a subscription resolver and the transport serve a
// subscription from the broker's calls (see RunStream).
type streamSlot struct {
	claimed atomic.Bool    // RunStream was called
	ready   sync.WaitGroup // done once the operation is dispatched
	// Set when the transport takes the subscription over, before ready
	// (nil otherwise).
	ctx      context.Context
	op       *operation
	deliver  func() bool // resolve and write the value in the channel
	panicked any         // a panic of step, for end
	// shared writes values from shared responses (nil when
	// the operation does not qualify), once the transport serves the
	// subscription.
	shared  *sharedDelivery
	running atomic.Bool
}

type streamSlotKey struct{}

func withStreamSlot(ctx context.Context) (context.Context, *streamSlot) {
	s := &streamSlot{}
	return context.WithValue(ctx, streamSlotKey{}, s), s
}

// RunStream lets the websocket transport serve a subscription fed by the
// broker's calls (broker.Broker's SubscribeFunc) without a goroutine of its
// own: nothing waits while no event does. step and end are the
// subscription's: step takes one event and, for each value it has for the
// client, puts it into the resolver's channel (which must have room for
// one) and calls write, which resolves and writes it and reports false
// once the subscription has ended; end releases what the subscription
// holds and closes the channel. RunStream returns step and end as the
// transport wraps them, to subscribe with, and write; write is nil when
// the transport does not serve subscriptions so (the channel is then read
// as usual, and step and end are returned as they are). The wrapped step
// and end wait for the operation's dispatch to finish, and end finishes
// the operation (complete, or error).
func RunStream(ctx context.Context, step func(*broker.Event) bool, end func()) (func(*broker.Event) bool, func(), func() bool) {
	s, _ := ctx.Value(streamSlotKey{}).(*streamSlot)
	if s == nil || s.claimed.Swap(true) {
		return step, end, nil
	}
	wstep := func(ev *broker.Event) (ok bool) {
		s.ready.Wait()
		if s.op == nil {
			return false // the dispatch failed; end follows
		}
		defer func() {
			if r := recover(); r != nil {
				s.panicked = r
				ok = false
			}
		}()
		return step(ev)
	}
	wend := func() {
		s.ready.Wait()
		op := s.op
		if op == nil {
			end()
			return
		}
		defer func() {
			r := recover()
			if r == nil {
				r = s.panicked
			}
			op.end(s.ctx, r)
		}()
		end()
		if s.panicked == nil {
			// What the channel still holds, and the end of gqlgen's
			// stream.
			for s.deliver() {
			}
		}
	}
	return wstep, wend, func() bool { return s.deliver() }
}

// SharedValues returns, for a subscription whose loop the websocket
// transport runs (RunStream), a function for the loop to call with each
// value instead of putting it into the channel: it writes the value from a
// response resolved once for its event ev and shared by every subscriber
// with the same operation (for messageAdded, with the reader's key spliced
// in; the same bytes as the normal path). handled false: the value must go
// through the channel as usual (the operation or the value does not
// qualify); sent false: the subscription has ended. nil when the
// subscription does not qualify at all (see sharedRoots).
func SharedValues(ctx context.Context) func(ctx context.Context, ev *broker.Event, v any) (sent, handled bool) {
	s, _ := ctx.Value(streamSlotKey{}).(*streamSlot)
	if s == nil || s.shared == nil {
		return nil
	}
	return func(ctx context.Context, ev *broker.Event, v any) (bool, bool) {
		if !s.running.Load() || !s.claimed.Load() {
			return false, false
		}
		return s.shared.deliver(ctx, ev, v)
	}
}

// subscriptionErrors collects the errors a subscription ends with.
type subscriptionErrors struct {
	mu   sync.Mutex
	errs []*gqlerror.Error
}

type subscriptionErrorsKey struct{}

func withSubscriptionErrors(ctx context.Context) (context.Context, *subscriptionErrors) {
	e := &subscriptionErrors{}
	return context.WithValue(ctx, subscriptionErrorsKey{}, e), e
}

// addSubscriptionError makes the subscription of ctx end with err instead
// of complete; false outside a websocket operation.
func addSubscriptionError(ctx context.Context, err *gqlerror.Error) bool {
	e, _ := ctx.Value(subscriptionErrorsKey{}).(*subscriptionErrors)
	if e == nil {
		return false
	}
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
	return true
}

func (e *subscriptionErrors) list() []*gqlerror.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.errs
}
