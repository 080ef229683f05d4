package graph

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
)

// A messageAdded event goes to every subscriber who may read it, and what
// each of them receives differs only in myKey: the reader's own recipient
// key. Resolving the subscription's selection for each subscriber (a field
// context, a path and a marshaler per field) was most of a delivery's cost.
// Here the response is resolved once per event and distinct query, by
// gqlgen's generated code as the normal path does, for a stand-in key whose
// strings are random markers; each delivery splices the reader's own values
// into the marked places. Selections that touch anything that may depend on
// the reader beyond myKey (attachment, a user's online, keys, a room's
// members or role, …), or that carry directives, take the normal path, as do
// readers whose key has been read (readAt, not a marker).
//
// typing, readReceipts and presence values are the event's own and the same
// for every subscriber: their responses are resolved once per event, value
// and operation, without holes, under the same rules for what qualifies.

// sharedWrites counts the values written from shared responses.
var sharedWrites atomic.Int64

// SharedDeliveries is how many subscription values have been written from
// shared responses since the process started.
func SharedDeliveries() int64 { return sharedWrites.Load() }

// sharedFields are the fields a shared response may select, by type: fields
// whose value is the same for every reader (plain fields of the event's
// value; a message's attachment and a user's identity key, which their
// resolvers load without regard to the reader, once per event instead of
// once per subscriber), and myKey's, whose strings are spliced per reader.
var sharedFields = map[string]map[string]bool{
	"Message": {"__typename": true, "id": true, "sender": true, "room": true, "recipient": true,
		"ciphertext": true, "nonce": true, "myKey": true, "createdAt": true, "deleted": true,
		"version": true, "signature": true, "keyDigests": true, "attachmentId": true, "attachment": true},
	"RecipientKey": {"__typename": true, "userId": true, "keyId": true, "kemCiphertext": true,
		"wrappedKey": true, "readAt": true},
	"User":        {"__typename": true, "id": true, "username": true, "createdAt": true, "identityKey": true},
	"IdentityKey": {"__typename": true, "key": true, "fingerprint": true, "createdAt": true},
	"Room":        {"__typename": true, "id": true, "name": true, "isGroup": true, "createdAt": true},
	"Document": {"__typename": true, "id": true, "name": true, "mimeType": true, "size": true,
		"nonce": true, "createdAt": true, "version": true, "signature": true, "keyDigests": true},
	// The event's own value: its user is loaded by id without regard to
	// the reader (a user's online is left out, as above).
	"TypingEvent":   {"__typename": true, "user": true, "roomId": true, "recipientId": true, "isTyping": true},
	"ReadReceipt":   {"__typename": true, "messageId": true, "user": true, "readAt": true},
	"PresenceEvent": {"__typename": true, "user": true, "online": true},
}

// sharedRoot is a subscription whose values may be written from shared
// responses: the type of its values, and gqlgen's generated code for its
// field's context and for marshaling a value.
type sharedRoot struct {
	typ     string
	context func(ec *executionContext, ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error)
	marshal func(ec *executionContext, ctx context.Context, sel ast.SelectionSet, v any) graphql.Marshaler
}

// sharedRoots are the subscriptions whose values are the same for every
// subscriber (messageAdded's but for myKey). A typing, presence or receipt
// value is the event's own, the same pointer for each subscriber, and so
// is part of the key of its shared response; messageAdded's value is a copy
// with the reader's key, and its event carries one message.
var sharedRoots = map[string]sharedRoot{
	"messageAdded": {"Message", (*executionContext).fieldContext_Subscription_messageAdded,
		func(ec *executionContext, ctx context.Context, sel ast.SelectionSet, v any) graphql.Marshaler {
			return ec.marshalNMessage2ᚖgithubᚗcomᚋqchatᚋqchatᚋmodelsᚐMessage(ctx, sel, v.(*models.Message))
		}},
	"typing": {"TypingEvent", (*executionContext).fieldContext_Subscription_typing,
		func(ec *executionContext, ctx context.Context, sel ast.SelectionSet, v any) graphql.Marshaler {
			return ec.marshalNTypingEvent2ᚖgithubᚗcomᚋqchatᚋqchatᚋmodelsᚐTypingEvent(ctx, sel, v.(*models.TypingEvent))
		}},
	"readReceipts": {"ReadReceipt", (*executionContext).fieldContext_Subscription_readReceipts,
		func(ec *executionContext, ctx context.Context, sel ast.SelectionSet, v any) graphql.Marshaler {
			return ec.marshalNReadReceipt2ᚖgithubᚗcomᚋqchatᚋqchatᚋmodelsᚐReadReceipt(ctx, sel, v.(*models.ReadReceipt))
		}},
	"presence": {"PresenceEvent", (*executionContext).fieldContext_Subscription_presence,
		func(ec *executionContext, ctx context.Context, sel ast.SelectionSet, v any) graphql.Marshaler {
			return ec.marshalNPresenceEvent2ᚖgithubᚗcomᚋqchatᚋqchatᚋmodelsᚐPresenceEvent(ctx, sel, v.(*models.PresenceEvent))
		}},
}

// shareable reports whether a selection set of the type named typ selects
// only sharedFields, without directives (which may depend on variables).
func shareable(typ string, set ast.SelectionSet) bool {
	allowed := sharedFields[typ]
	return allowed != nil && plainSelection(typ, set, func(f *ast.Field) bool {
		return allowed[f.Name] && f.Definition != nil &&
			(len(f.SelectionSet) == 0 || shareable(f.Definition.Type.Name(), f.SelectionSet))
	})
}

// sharedDelivery writes a subscription's values from shared responses; nil
// when its operation does not qualify.
type sharedDelivery struct {
	c     *wsConn
	id    string
	rc    *graphql.OperationContext
	es    *executableSchema
	field graphql.CollectedField
	root  sharedRoot
}

func newSharedDelivery(c *wsConn, id string, rc *graphql.OperationContext) *sharedDelivery {
	es, _ := c.t.schema.(*executableSchema)
	if es == nil || rc.Operation == nil || rc.Operation.Operation != ast.Subscription ||
		len(rc.Operation.Directives) != 0 {
		return nil
	}
	fields := graphql.CollectFields(rc, rc.Operation.SelectionSet, subscriptionImplementors)
	if len(fields) != 1 || len(fields[0].Directives) != 0 {
		return nil
	}
	root, ok := sharedRoots[fields[0].Name]
	if !ok || !shareable(root.typ, fields[0].Selections) {
		return nil
	}
	return &sharedDelivery{c: c, id: id, rc: rc, es: es, field: fields[0], root: root}
}

// deliver writes v, which the subscription's loop took from ev, if a shared
// response fits it: handled is false when v must take the normal path
// (emitted into the subscription's channel); sent is false once the
// subscription has ended.
func (d *sharedDelivery) deliver(ctx context.Context, ev *broker.Event, v any) (sent, handled bool) {
	k := sharedKey{ev: weak.Make(ev), query: d.rc.RawQuery, name: d.rc.OperationName}
	m, _ := v.(*models.Message)
	if m != nil {
		if m.Mine != nil && m.Mine.ReadAt != nil {
			return false, false
		}
		k.keyless = m.Mine == nil
	} else {
		k.value = v
	}
	t := sharedResponses.get(k, func() *template {
		if m != nil {
			return d.resolveMessage(ctx, m)
		}
		return d.resolve(ctx, v, [4]string{})
	})
	if t == nil {
		return false, false
	}
	if ctx.Err() != nil {
		// As the executor: an ended subscription produces nothing more.
		return false, true
	}
	buf := frames.Get().(*[]byte)
	var mine *models.RecipientKey
	if m != nil {
		mine = m.Mine
	}
	payload := t.appendFor((*buf)[:0], mine)
	// Counted before the write: a test that has read the frame must find
	// it counted (after the write, the reader could overtake the count).
	sharedWrites.Add(1)
	d.c.write(kindData, d.id, payload)
	if cap(payload) <= 64<<10 {
		*buf = payload
		frames.Put(buf)
	}
	return true, true
}

// resolveMessage resolves the response for m with a stand-in key whose
// strings are markers if m has a key.
func (d *sharedDelivery) resolveMessage(ctx context.Context, m *models.Message) *template {
	v := *m
	var marks [4]string
	if m.Mine != nil {
		var raw [4][18]byte
		for i := range raw {
			_, _ = rand.Read(raw[i][:])
		}
		marks[0] = hex.EncodeToString(raw[0][:])
		marks[1] = hex.EncodeToString(raw[1][:])
		marks[2] = base64.StdEncoding.EncodeToString(raw[2][:])
		marks[3] = base64.StdEncoding.EncodeToString(raw[3][:])
		v.Mine = &models.RecipientKey{MessageID: m.Mine.MessageID, UserID: marks[0], KeyID: marks[1],
			KEMBytes: raw[2][:], WrappedBytes: raw[3][:]}
	}
	return d.resolve(ctx, &v, marks)
}

// resolve runs the generated code on v as the executor's subscription path
// does, and returns the response with holes where marks are, or nil if
// anything went wrong (an error, or a marker not found where expected).
func (d *sharedDelivery) resolve(ctx context.Context, v any, marks [4]string) *template {
	ec := newExecutionContext(d.rc, d.es, nil)
	ctx = graphql.WithResponseContext(ctx, graphql.DefaultErrorPresenter, graphql.DefaultRecover)
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Subscription"})
	fc, err := d.root.context(ec, ctx, d.field)
	if err != nil {
		return nil
	}
	ctx = graphql.WithFieldContext(ctx, fc)
	var data bytes.Buffer
	ok := func() (ok bool) {
		defer func() {
			if recover() != nil {
				ok = false
			}
		}()
		data.WriteByte('{')
		graphql.MarshalString(d.field.Alias).MarshalGQL(&data)
		data.WriteByte(':')
		d.root.marshal(ec, ctx, d.field.Selections, v).MarshalGQL(&data)
		data.WriteByte('}')
		return true
	}()
	if !ok || len(graphql.GetErrors(ctx)) != 0 || len(graphql.GetExtensions(ctx)) != 0 {
		return nil
	}
	whole := appendResponse(nil, &graphql.Response{Data: data.Bytes()})
	return newTemplate(whole, marks)
}

// template is a response with holes for the reader's key: parts[i] is
// followed by the quoted value of hole[i].
type template struct {
	parts [][]byte
	holes []int // 0 userId, 1 keyId, 2 kemCiphertext, 3 wrappedKey
}

func newTemplate(whole []byte, marks [4]string) *template {
	t := &template{}
	rest := whole
	for {
		at, hole := -1, -1
		for i, mk := range marks {
			if mk == "" {
				continue
			}
			if j := bytes.Index(rest, []byte(`"`+mk+`"`)); j >= 0 && (at < 0 || j < at) {
				at, hole = j, i
			}
		}
		if at < 0 {
			t.parts = append(t.parts, rest)
			return t
		}
		t.parts = append(t.parts, rest[:at])
		t.holes = append(t.holes, hole)
		rest = rest[at+len(marks[hole])+2:]
	}
}

// appendFor appends the response for the reader whose key is k (nil for a
// template without holes).
func (t *template) appendFor(b []byte, k *models.RecipientKey) []byte {
	for i, p := range t.parts {
		b = append(b, p...)
		if i == len(t.holes) {
			break
		}
		b = append(b, '"')
		switch t.holes[i] {
		case 0:
			b = appendQuotedInner(b, k.UserID)
		case 1:
			b = appendQuotedInner(b, k.KeyID)
		case 2:
			b = base64.StdEncoding.AppendEncode(b, k.KEMBytes)
		case 3:
			b = base64.StdEncoding.AppendEncode(b, k.WrappedBytes)
		}
		b = append(b, '"')
	}
	return b
}

// appendQuotedInner appends s as gqlgen's string marshaler writes it,
// without the quotes.
func appendQuotedInner(b []byte, s string) []byte {
	var w bytes.Buffer
	graphql.MarshalID(s).MarshalGQL(&w)
	q := w.Bytes()
	return append(b, q[1:len(q)-1]...)
}

// sharedKey names one shared response: an event, an operation's text and
// name, and whether the reader has a key (messageAdded) or the value (the
// other subscriptions: an event may carry several receipts). The event is
// held weakly: a cached response must not keep an event (a room message
// carries every member's key) alive, and a later event at the same address
// is another key. A value (a small struct of the event's) is held as long
// as its response.
type sharedKey struct {
	ev      weak.Pointer[broker.Event]
	query   string
	name    string
	keyless bool
	value   any
}

type sharedEntry struct {
	once sync.Once
	t    *template
}

// sharedCache keeps the responses of the latest events: a subscriber that
// falls behind further than that resolves its own (the normal path's cost,
// the same bytes).
type sharedCache struct {
	mu    sync.Mutex
	m     map[sharedKey]*sharedEntry
	order []sharedKey // insertion order, a ring of len(order)
	next  int
}

const sharedCacheSize = 512

var sharedResponses = &sharedCache{m: map[sharedKey]*sharedEntry{}, order: make([]sharedKey, sharedCacheSize)}

func (c *sharedCache) get(k sharedKey, resolve func() *template) *template {
	c.mu.Lock()
	e := c.m[k]
	if e == nil {
		e = &sharedEntry{}
		delete(c.m, c.order[c.next])
		c.order[c.next] = k
		c.next = (c.next + 1) % len(c.order)
		c.m[k] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.t = resolve() })
	return e.t
}
