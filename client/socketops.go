package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/Khan/genqlient/graphql"
	"github.com/coder/websocket"
)

// OverWebsocket returns a client like c whose queries and mutations travel
// over one open websocket (graphql-transport-ws carries any operation, as
// Apollo Client's split link uses it) instead of one HTTP request each: no
// per-request headers, body framing or authentication, which is most of a
// small request's cost on the server. The socket authenticates once with
// c's token. Operations on it run one at a time; uploads and downloads
// still use HTTP. Close the returned client to close its socket; after a
// socket failure every operation fails and a new one is needed.
func (c *Client) OverWebsocket(ctx context.Context) (*Client, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("operations socket: %w", err)
	}
	c.mu.Lock()
	ws := &Client{base: c.base, http: c.http, token: c.token, selfID: c.selfID,
		identity: c.identity, pins: c.pins, identities: c.identities}
	c.mu.Unlock()
	ws.gql = &socketTransport{conn: conn}
	return ws, nil
}

// Close closes the socket of a client made by OverWebsocket; it does
// nothing for other clients.
func (c *Client) Close() error {
	if t, ok := c.gql.(*socketTransport); ok {
		return t.conn.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}

// socketTransport is the genqlient graphql.Client over a websocket: each
// operation is a graphql-transport-ws subscribe message whose result comes
// back as next (data and errors) and complete.
type socketTransport struct {
	mu     sync.Mutex // one operation at a time: the reader is the caller
	conn   *websocket.Conn
	nextID int
	err    error // the socket failed; every later operation gets this
}

func (t *socketTransport) MakeRequest(ctx context.Context, req *graphql.Request, resp *graphql.Response) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return fmt.Errorf("%s: %w", req.OpName, t.err)
	}
	t.nextID++
	id := strconv.Itoa(t.nextID)
	payload, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", req.OpName, err)
	}
	if err := wsWrite(ctx, t.conn, wsMessage{ID: id, Type: "subscribe", Payload: payload}); err != nil {
		t.err = fmt.Errorf("operations socket: %w", err)
		return fmt.Errorf("%s: %w", req.OpName, t.err)
	}
	got := false
	for {
		m, err := wsRead(ctx, t.conn)
		if err != nil {
			// coder/websocket closes the connection when a read's context
			// ends, so a failed read of either kind ends the socket.
			t.err = fmt.Errorf("operations socket: %w", closeError(err))
			return fmt.Errorf("%s: %w", req.OpName, t.err)
		}
		switch {
		case m.Type == "ping":
			if err := wsWrite(ctx, t.conn, wsMessage{Type: "pong"}); err != nil {
				t.err = fmt.Errorf("operations socket: pong: %w", err)
				return fmt.Errorf("%s: %w", req.OpName, t.err)
			}
		case m.ID != id:
			// the complete of an earlier operation that ended with error
		case m.Type == "next":
			if err := json.Unmarshal(m.Payload, resp); err != nil {
				return fmt.Errorf("%s: decode payload: %w", req.OpName, err)
			}
			got = true
		case m.Type == "error":
			var errs []wireError
			if json.Unmarshal(m.Payload, &errs) == nil && len(errs) > 0 {
				return fmt.Errorf("%s: %w", req.OpName, errs[0].toError(0))
			}
			return fmt.Errorf("%s: server error %s", req.OpName, m.Payload)
		case m.Type == "complete":
			if len(resp.Errors) > 0 {
				return fmt.Errorf("%s: %w", req.OpName, fromGQLError(resp.Errors[0], 0))
			}
			if !got {
				return fmt.Errorf("%s: completed without a result", req.OpName)
			}
			return nil
		}
	}
}
