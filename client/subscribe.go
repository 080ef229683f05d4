package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// The websocket side of the SDK: the graphql-transport-ws protocol (the
// graphql-ws library's, what Apollo Client speaks), one socket per Subscribe
// call carrying any number of subscriptions.

// wsProtocol is the subprotocol negotiated on the socket.
const wsProtocol = "graphql-transport-ws"

// handshakeTimeout bounds connection_init → connection_ack; the server
// closes an uninitialised socket itself, but a client should not rely on it.
const handshakeTimeout = 10 * time.Second

// EventKind says which field of an Event is set.
type EventKind string

// The kinds of event, one per subscription, and EventError.
const (
	EventMessage        EventKind = "message"
	EventMessageDeleted EventKind = "messageDeleted"
	EventTyping         EventKind = "typing"
	EventReadReceipt    EventKind = "readReceipt"
	EventRoom           EventKind = "room"
	EventPresence       EventKind = "presence"
	// EventKeyChange: a user who shares a conversation with the caller has
	// a new KEM key (KEM_ROTATED) or a new identity key (IDENTITY_CHANGED).
	EventKeyChange EventKind = "keyChange"
	// EventError carries Err: a subscription the server refused or ended
	// (with an error or a plain complete), or the socket failing or being
	// closed by the server. After a socket failure the channel is closed.
	// Err says why: errors.Is ErrGoingAway or ErrCompleted, an *Error with
	// CodeForbidden, CodeUnauthenticated or CodeSlowConsumer, or a network
	// error. Resubscribe tells whether starting again can help.
	EventError EventKind = "error"
)

// Why a subscription ended, besides an *Error from the server.
var (
	// ErrGoingAway: the server closed the socket with 1001 because it is
	// shutting down or restarting.
	ErrGoingAway = errors.New("the server is going away (shutting down or restarting)")
	// ErrCompleted: the server completed a subscription the caller did not
	// stop. A QChat server ends a subscriber that fell too far behind with
	// an *Error of CodeSlowConsumer instead; servers that do not say why
	// complete it.
	ErrCompleted = errors.New("the server ended the subscription")
	// ErrSocketClosed: the server closed the socket with another code.
	ErrSocketClosed = errors.New("the server closed the socket")
)

// Resubscribe reports whether a subscription that ended with err can be
// started again: yes after a restart, a dropped connection, a slow consumer
// or a plain complete; no when the server refused the caller (a revoked
// session, FORBIDDEN) or the request, or when the caller's context ended.
func Resubscribe(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Code {
		case CodeSlowConsumer, CodeRateLimited, CodeInternalServerError, "":
			return true
		}
		return false
	}
	return true
}

// Event is one thing that happened, as a typed value: exactly the field
// that Kind names is set.
type Event struct {
	Kind             EventKind
	Message          *Message // not decrypted: see Decrypt
	DeletedMessageID string
	Typing           *TypingEvent
	ReadReceipt      *ReadReceipt
	Room             *RoomEvent
	Presence         *PresenceEvent
	KeyChange        *KeyChange
	Err              error
}

// Subscription is one GraphQL subscription to run; build them with
// MessagesAdded, MessagesDeleted, Typing, ReadReceipts, RoomEvents, KeyChanges and
// Presence.
type Subscription struct {
	op     string
	query  string
	vars   map[string]any
	decode func(data json.RawMessage) (Event, error)
}

func roomVars(roomID string) map[string]any {
	if roomID == "" {
		return map[string]any{}
	}
	return map[string]any{"roomId": roomID}
}

// MessagesAdded delivers every new message the caller can read, or only
// those of one room if roomID is set.
func MessagesAdded(roomID string) Subscription {
	return Subscription{"messageAdded", messageAdded_Operation, roomVars(roomID), func(d json.RawMessage) (Event, error) {
		var r messageAddedResponse
		err := json.Unmarshal(d, &r)
		return Event{Kind: EventMessage, Message: &r.MessageAdded}, err
	}}
}

// MessagesDeleted delivers the ids of deleted messages.
func MessagesDeleted(roomID string) Subscription {
	return Subscription{"messageDeleted", messageDeleted_Operation, roomVars(roomID), func(d json.RawMessage) (Event, error) {
		var r messageDeletedResponse
		err := json.Unmarshal(d, &r)
		return Event{Kind: EventMessageDeleted, DeletedMessageID: r.MessageDeleted}, err
	}}
}

// Typing delivers typing indicators.
func Typing(roomID string) Subscription {
	return Subscription{"typing", typing_Operation, roomVars(roomID), func(d json.RawMessage) (Event, error) {
		var r typingResponse
		err := json.Unmarshal(d, &r)
		return Event{Kind: EventTyping, Typing: &r.Typing}, err
	}}
}

// ReadReceipts delivers read receipts of the caller's conversations.
func ReadReceipts(roomID string) Subscription {
	return Subscription{"readReceipts", readReceipts_Operation, roomVars(roomID), func(d json.RawMessage) (Event, error) {
		var r readReceiptsResponse
		err := json.Unmarshal(d, &r)
		return Event{Kind: EventReadReceipt, ReadReceipt: &r.ReadReceipts}, err
	}}
}

// RoomEvents delivers membership and room changes of the caller's rooms.
func RoomEvents() Subscription {
	return Subscription{"roomEvents", roomEvents_Operation, map[string]any{}, func(d json.RawMessage) (Event, error) {
		var r roomEventsResponse
		err := json.Unmarshal(d, &r)
		return Event{Kind: EventRoom, Room: &r.RoomEvents}, err
	}}
}

// KeyChanges delivers the key changes of users who share a conversation
// with the caller. On IDENTITY_CHANGED a client warns: the next send to
// that user fails with an *IdentityChangedError until the caller accepts
// the new key.
func KeyChanges() Subscription {
	return Subscription{"keyChanged", keyChanged_Operation, map[string]any{}, func(d json.RawMessage) (Event, error) {
		var r keyChangedResponse
		err := json.Unmarshal(d, &r)
		return Event{Kind: EventKeyChange, KeyChange: &r.KeyChanged}, err
	}}
}

// Presence delivers users who share a conversation with the caller going
// online or offline.
func Presence() Subscription {
	return Subscription{"presence", presence_Operation, map[string]any{}, func(d json.RawMessage) (Event, error) {
		var r presenceResponse
		err := json.Unmarshal(d, &r)
		return Event{Kind: EventPresence, Presence: &r.Presence}, err
	}}
}

// wsMessage is one graphql-transport-ws protocol message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Subscribe opens a websocket, authenticates with the client's token and
// starts subs on it. Events arrive on the returned channel until ctx ends,
// the server completes every subscription, or the socket fails (reported as
// a last EventError); then the channel is closed and the socket with it. The
// caller must keep reading until the channel closes or cancel ctx.
//
// The server registers a subscription a moment after receiving it; an event
// published in that moment is not delivered (the protocol has no "subscribed"
// acknowledgement), so callers that must not miss one catch up with History.
func (c *Client) Subscribe(ctx context.Context, subs ...Subscription) (<-chan Event, error) {
	if len(subs) == 0 {
		return nil, errors.New("subscribe: no subscriptions")
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	active := make(map[string]Subscription, len(subs))
	for i, s := range subs {
		id := strconv.Itoa(i + 1)
		payload, err := json.Marshal(map[string]any{"operationName": s.op, "query": s.query, "variables": s.vars})
		if err == nil {
			err = wsWrite(ctx, conn, wsMessage{ID: id, Type: "subscribe", Payload: payload})
		}
		if err != nil {
			_ = conn.CloseNow()
			return nil, fmt.Errorf("subscribe %s: %w", s.op, err)
		}
		active[id] = s
	}
	out := make(chan Event, 64)
	go readEvents(ctx, conn, active, out)
	return out, nil
}

// dial opens a websocket to the server and authenticates it with the
// client's token.
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	u := *c.base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path += "/graphql"
	conn, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.http, Subprotocols: []string{wsProtocol}})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.Redacted(), err)
	}
	conn.SetReadLimit(16 << 20)
	if err := c.wsInit(ctx, conn); err != nil {
		_ = conn.CloseNow()
		return nil, err
	}
	return conn, nil
}

func (c *Client) wsInit(ctx context.Context, conn *websocket.Conn) error {
	payload, err := json.Marshal(map[string]string{"authToken": c.Token()})
	if err != nil {
		return err
	}
	if err := wsWrite(ctx, conn, wsMessage{Type: "connection_init", Payload: payload}); err != nil {
		return fmt.Errorf("connection_init: %w", err)
	}
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	for {
		m, err := wsRead(hctx, conn)
		if err != nil {
			return fmt.Errorf("waiting for connection_ack: %w", closeError(err))
		}
		switch m.Type {
		case "connection_ack":
			return nil
		case "ping":
			if err := wsWrite(ctx, conn, wsMessage{Type: "pong"}); err != nil {
				return fmt.Errorf("pong: %w", err)
			}
		case "pong":
		default:
			return fmt.Errorf("server answered connection_init with %q", m.Type)
		}
	}
}

// readEvents is the socket's only reader and, after Subscribe returns, its
// only writer. Every send to out also watches ctx, so a caller that stops
// reading and cancels never leaves this goroutine blocked.
func readEvents(ctx context.Context, conn *websocket.Conn, active map[string]Subscription, out chan<- Event) {
	defer close(out)
	defer func() { _ = conn.CloseNow() }()
	emit := func(e Event) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for len(active) > 0 {
		m, err := wsRead(ctx, conn)
		if err != nil {
			if ctx.Err() == nil {
				emit(Event{Kind: EventError, Err: fmt.Errorf("subscription socket: %w", closeError(err))})
			}
			return
		}
		switch m.Type {
		case "ping":
			if err := wsWrite(ctx, conn, wsMessage{Type: "pong"}); err != nil && ctx.Err() == nil {
				emit(Event{Kind: EventError, Err: fmt.Errorf("subscription socket: pong: %w", err)})
				return
			}
		case "next":
			s, ok := active[m.ID]
			if !ok {
				continue
			}
			var p struct {
				Data   json.RawMessage `json:"data"`
				Errors []wireError     `json:"errors"`
			}
			var e Event
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				e = Event{Kind: EventError, Err: fmt.Errorf("%s: decode payload: %w", s.op, err)}
			} else if len(p.Errors) > 0 {
				e = Event{Kind: EventError, Err: fmt.Errorf("%s: %w", s.op, p.Errors[0].toError(0))}
			} else if e, err = s.decode(p.Data); err != nil {
				e = Event{Kind: EventError, Err: fmt.Errorf("%s: decode data: %w", s.op, err)}
			}
			if !emit(e) {
				return
			}
		case "error":
			s, ok := active[m.ID]
			if !ok {
				continue
			}
			delete(active, m.ID) // an error message ends the subscription
			var errs []wireError
			err := fmt.Errorf("%s: server error %s", s.op, m.Payload)
			if json.Unmarshal(m.Payload, &errs) == nil && len(errs) > 0 {
				err = fmt.Errorf("%s: %w", s.op, errs[0].toError(0))
			}
			if !emit(Event{Kind: EventError, Err: err}) {
				return
			}
		case "complete":
			s, ok := active[m.ID]
			if !ok {
				continue
			}
			delete(active, m.ID)
			if !emit(Event{Kind: EventError, Err: fmt.Errorf("%s: %w", s.op, ErrCompleted)}) {
				return
			}
		}
	}
	// The server completed every subscription: say goodbye properly.
	_ = conn.Close(websocket.StatusNormalClosure, "")
}

func wsWrite(ctx context.Context, conn *websocket.Conn, m wsMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, b)
}

func wsRead(ctx context.Context, conn *websocket.Conn) (wsMessage, error) {
	var m wsMessage
	typ, b, err := conn.Read(ctx)
	if err != nil {
		return m, err
	}
	if typ != websocket.MessageText {
		return m, errors.New("binary message on a graphql-transport-ws socket")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("invalid protocol message: %w", err)
	}
	return m, nil
}

// closeError turns the protocol's close codes into errors a caller can
// branch on: 4401/4403 are how graphql-transport-ws refuses a token (4403
// also ends a revoked session's socket), 1001 is a server going away.
func closeError(err error) error {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return err
	}
	code := ""
	switch ce.Code {
	case websocket.StatusGoingAway:
		return fmt.Errorf("%w (%d %s)", ErrGoingAway, ce.Code, ce.Reason)
	case 4401:
		code = CodeUnauthenticated
	case 4403:
		code = CodeForbidden
	case 4429:
		code = CodeRateLimited
	}
	if code == "" {
		return fmt.Errorf("%w (%d %s)", ErrSocketClosed, ce.Code, ce.Reason)
	}
	return &Error{Code: code, Message: fmt.Sprintf("socket closed %d %s", ce.Code, ce.Reason), Extensions: map[string]any{"code": code}}
}
