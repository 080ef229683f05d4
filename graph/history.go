package graph

import (
	"context"
	"encoding/base64"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/qchat/qchat/models"
)

// A page of history (room(id){messages(first: 50){...}} or
// directMessages(...)) is 50 messages of a dozen fields each, and gqlgen's
// executor spends a field context, a path, a closure and a marshaler on every
// field: ~12,000 allocations and most of the page's CPU, for values that are
// plain struct fields. A query whose selection has only such fields
// (historyFields) and no directives is answered here instead: the root
// fields' and Room.messages's resolvers are called as the executor calls
// them, the attachments' concurrently as it does, and the JSON is written
// directly, in the order and with the encoders of the generated code (base64
// fields from their bytes: their alphabet has nothing to escape), so that the
// bytes are the same. Anything else, and any error, null where the schema
// says non-null, or panic on the way, takes the normal path from the start
// (the resolvers only read, so calling them again changes nothing).
// TestHistoryPages holds the two paths to the same bytes.

// historyWrites counts the responses written by the fast path.
var historyWrites atomic.Int64

// HistoryPages is how many query responses the history fast path has
// written since the process started.
func HistoryPages() int64 { return historyWrites.Load() }

// fieldKind is one field of historyFields: how its value is found and
// written.
type fieldKind uint8

const (
	fTypename fieldKind = iota
	qRoom
	qDirectMessages
	rID
	rName
	rIsGroup
	rCode
	rCreatedAt
	rMessages
	cEdges
	cPageInfo
	eCursor
	eNode
	pHasNextPage
	pEndCursor
	mID
	mSender
	mRoom
	mRecipient
	mCiphertext
	mNonce
	mMyKey
	mCreatedAt
	mDeleted
	mVersion
	mSignature
	mKeyDigests
	mAttachmentID
	mAttachment
	uID
	uUsername
	uCreatedAt
	kUserID
	kKeyID
	kKemCiphertext
	kWrappedKey
	kReadAt
	dID
	dName
	dMimeType
	dSize
	dNonce
	dCreatedAt
	dVersion
	dSignature
	dKeyDigests
)

// historyFields are the fields the fast path answers, by type: plain fields
// (struct fields or methods of the models, no resolver), plus the resolvers
// the executor would call anyway for a page (Query.room,
// Query.directMessages, Room.messages, Message.attachment). A room's messages
// only at the root: Message.room is a plain Room.
var historyFields = map[string]map[string]fieldKind{
	"Query": {"__typename": fTypename, "room": qRoom, "directMessages": qDirectMessages},
	"Room": {"__typename": fTypename, "id": rID, "name": rName, "isGroup": rIsGroup, "code": rCode,
		"createdAt": rCreatedAt, "messages": rMessages},
	"MessageConnection": {"__typename": fTypename, "edges": cEdges, "pageInfo": cPageInfo},
	"MessageEdge":       {"__typename": fTypename, "cursor": eCursor, "node": eNode},
	"PageInfo":          {"__typename": fTypename, "hasNextPage": pHasNextPage, "endCursor": pEndCursor},
	"Message": {"__typename": fTypename, "id": mID, "sender": mSender, "room": mRoom, "recipient": mRecipient,
		"ciphertext": mCiphertext, "nonce": mNonce, "myKey": mMyKey, "createdAt": mCreatedAt, "deleted": mDeleted,
		"version": mVersion, "signature": mSignature, "keyDigests": mKeyDigests, "attachmentId": mAttachmentID,
		"attachment": mAttachment},
	"User": {"__typename": fTypename, "id": uID, "username": uUsername, "createdAt": uCreatedAt},
	"RecipientKey": {"__typename": fTypename, "userId": kUserID, "keyId": kKeyID, "kemCiphertext": kKemCiphertext,
		"wrappedKey": kWrappedKey, "readAt": kReadAt},
	"Document": {"__typename": fTypename, "id": dID, "name": dName, "mimeType": dMimeType, "size": dSize,
		"nonce": dNonce, "createdAt": dCreatedAt, "version": dVersion, "signature": dSignature, "keyDigests": dKeyDigests},
}

// historyImplementors are the generated code's, for graphql.CollectFields.
var historyImplementors = map[string][]string{
	"Query": queryImplementors, "Room": roomImplementors, "MessageConnection": messageConnectionImplementors,
	"MessageEdge": messageEdgeImplementors, "PageInfo": pageInfoImplementors, "Message": messageImplementors,
	"User": userImplementors, "RecipientKey": recipientKeyImplementors, "Document": documentImplementors,
}

// pageField is one field of a compiled selection.
type pageField struct {
	alias    string
	kind     fieldKind
	typename string // the enclosing type, for __typename
	field    graphql.CollectedField
	children []pageField
	// attachments: a connection whose nodes select attachment.
	attachments bool
}

// historySchema is the generated schema with the fast path in front of its
// query execution.
type historySchema struct{ *executableSchema }

func (s historySchema) Exec(ctx context.Context) graphql.ResponseHandler {
	opCtx := graphql.GetOperationContext(ctx)
	plan, ok := compileHistory(opCtx)
	if !ok {
		return s.executableSchema.Exec(ctx)
	}
	execCtx := ctx
	var normal graphql.ResponseHandler
	done := false
	return func(ctx context.Context) *graphql.Response {
		if normal != nil {
			return normal(ctx)
		}
		if done {
			return nil
		}
		done = true
		if data, ok := writeHistory(ctx, opCtx, s.executableSchema, plan); ok {
			historyWrites.Add(1)
			return &graphql.Response{Data: data}
		}
		normal = s.executableSchema.Exec(execCtx)
		return normal(ctx)
	}
}

// compileHistory returns the root fields of a query the fast path answers.
func compileHistory(opCtx *graphql.OperationContext) ([]pageField, bool) {
	op := opCtx.Operation
	if op == nil || op.Operation != ast.Query || len(op.Directives) != 0 {
		return nil, false
	}
	return compileSelection(opCtx, "Query", op.SelectionSet, true)
}

// compileSelection collects a selection set of typ as the generated code
// does, if every field in it is one of historyFields and nothing carries a
// directive.
func compileSelection(opCtx *graphql.OperationContext, typ string, set ast.SelectionSet, top bool) ([]pageField, bool) {
	allowed := historyFields[typ]
	if !plainSelection(typ, set, nil) {
		return nil, false
	}
	collected := graphql.CollectFields(opCtx, set, historyImplementors[typ])
	out := make([]pageField, 0, len(collected))
	for _, f := range collected {
		kind, ok := allowed[f.Name]
		if !ok || f.Definition == nil || (kind == rMessages && !top) {
			return nil, false
		}
		if written(out, f.Alias) {
			// The generated FieldSet writes the first of an alias only.
			continue
		}
		pf := pageField{alias: f.Alias, kind: kind, typename: typ, field: f}
		if len(f.Selections) != 0 {
			child := f.Definition.Type.Name()
			var ok bool
			if pf.children, ok = compileSelection(opCtx, child, f.Selections, kind == qRoom); !ok {
				return nil, false
			}
			if child == "MessageConnection" {
				pf.attachments = selectsAttachment(pf.children)
			}
		}
		out = append(out, pf)
	}
	return out, true
}

func written(fs []pageField, alias string) bool {
	for _, f := range fs {
		if f.alias == alias {
			return true
		}
	}
	return false
}

// selectsAttachment reports whether a connection's selection asks for its
// nodes' attachment.
func selectsAttachment(conn []pageField) bool {
	for _, c := range conn {
		if c.kind != cEdges {
			continue
		}
		for _, e := range c.children {
			if e.kind != eNode {
				continue
			}
			for _, m := range e.children {
				if m.kind == mAttachment {
					return true
				}
			}
		}
	}
	return false
}

// plainSelection reports whether a selection set of typ, fragments
// included, is free of directives and of fragments on other types, and
// whether every field in it passes field (when given).
func plainSelection(typ string, set ast.SelectionSet, field func(*ast.Field) bool) bool {
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			if len(s.Directives) != 0 || (field != nil && !field(s)) {
				return false
			}
		case *ast.InlineFragment:
			if len(s.Directives) != 0 || (s.TypeCondition != "" && s.TypeCondition != typ) || !plainSelection(typ, s.SelectionSet, field) {
				return false
			}
		case *ast.FragmentSpread:
			if len(s.Directives) != 0 || s.Definition == nil || len(s.Definition.Directives) != 0 ||
				s.Definition.TypeCondition != typ || !plainSelection(typ, s.Definition.SelectionSet, field) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// historyWriter writes a response of the fast path.
type historyWriter struct {
	ctx context.Context
	ec  *executionContext
	b   []byte
	// docs are the attachments of the connection being written, by message.
	docs map[*models.Message]*models.Document
}

// errFallBack ends the fast path for the normal one.
type errFallBack struct{}

// writeHistory answers the query of plan, or returns false for the normal
// path to answer it.
func writeHistory(ctx context.Context, opCtx *graphql.OperationContext, es *executableSchema, plan []pageField) (data []byte, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			data, ok = nil, false
		}
	}()
	w := &historyWriter{ctx: ctx, ec: newExecutionContext(opCtx, es, nil)}
	w.b = make([]byte, 0, historySize.Load()*9/8)
	w.object(plan, func(f *pageField) { w.query(f) })
	historySize.Store(int64(len(w.b)))
	return w.b, true
}

// historySize is the size of the latest page written, which the next one
// allocates (plus an eighth) at once: growing a 350 KB page from less, the
// copies and the clearing of the larger buffers cost a tenth of its CPU.
var historySize atomic.Int64

func fallBack() { panic(errFallBack{}) }

// object writes the fields of one object, each by value.
func (w *historyWriter) object(fs []pageField, value func(f *pageField)) {
	w.b = append(w.b, '{')
	for i := range fs {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.str(fs[i].alias)
		w.b = append(w.b, ':')
		if fs[i].kind == fTypename {
			w.str(fs[i].typename)
			continue
		}
		value(&fs[i])
	}
	w.b = append(w.b, '}')
}

// Write and WriteString make the writer the io.Writer of gqlgen's and the
// models' marshalers.
func (w *historyWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *historyWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// str writes s with gqlgen's string marshaler.
func (w *historyWriter) str(s string) { graphql.MarshalString(s).MarshalGQL(w) }

// b64 writes b as the quoted standard base64 that the models' string
// methods return: its alphabet has nothing the string marshaler escapes.
func (w *historyWriter) b64(b []byte) {
	w.b = append(w.b, '"')
	w.b = base64.StdEncoding.AppendEncode(w.b, b)
	w.b = append(w.b, '"')
}

func (w *historyWriter) null() { w.b = append(w.b, "null"...) }

func (w *historyWriter) boolean(b bool) { w.b = strconv.AppendBool(w.b, b) }

func (w *historyWriter) int(n int) { w.b = strconv.AppendInt(w.b, int64(n), 10) }

func (w *historyWriter) time(t models.Time) { t.MarshalGQL(w) }

// digests writes the signed leaves as KeyDigests returns them: null for
// none, else each whole models.KeyDigestSize bytes as quoted base64.
func (w *historyWriter) digests(b []byte) {
	if b == nil {
		w.null()
		return
	}
	w.b = append(w.b, '[')
	for i := 0; len(b) >= models.KeyDigestSize; i++ {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b64(b[:models.KeyDigestSize])
		b = b[models.KeyDigestSize:]
	}
	w.b = append(w.b, ']')
}

// args parses a field's arguments with its generated function.
func (w *historyWriter) args(f *pageField, parse func(context.Context, map[string]any) (map[string]any, error)) map[string]any {
	args, err := parse(w.ctx, f.field.ArgumentMap(w.ec.Variables))
	if err != nil {
		fallBack()
	}
	return args
}

func (w *historyWriter) query(f *pageField) {
	switch f.kind {
	case qRoom:
		args := w.args(f, w.ec.field_Query_room_args)
		room, err := w.ec.Resolvers.Query().Room(w.ctx, args["id"].(string))
		if err != nil {
			fallBack()
		}
		w.room(f.children, room)
	case qDirectMessages:
		args := w.args(f, w.ec.field_Query_directMessages_args)
		conn, err := w.ec.Resolvers.Query().DirectMessages(w.ctx, args["withUserId"].(string), args["first"].(*int), args["after"].(*string))
		if err != nil {
			fallBack()
		}
		w.connection(f, conn)
	default:
		fallBack()
	}
}

func (w *historyWriter) room(fs []pageField, r *models.Room) {
	if r == nil {
		w.null()
		return
	}
	w.object(fs, func(f *pageField) {
		switch f.kind {
		case rID:
			w.str(r.ID)
		case rName:
			w.str(r.Name)
		case rIsGroup:
			w.boolean(r.IsGroup)
		case rCode:
			w.str(r.Code)
		case rCreatedAt:
			w.time(r.CreatedAt)
		case rMessages:
			args := w.args(f, w.ec.field_Room_messages_args)
			conn, err := w.ec.Resolvers.Room().Messages(w.ctx, r, args["first"].(*int), args["after"].(*string))
			if err != nil {
				fallBack()
			}
			w.connection(f, conn)
		default:
			fallBack()
		}
	})
}

func (w *historyWriter) connection(f *pageField, c *models.MessageConnection) {
	if c == nil {
		fallBack() // MessageConnection!
	}
	if f.attachments {
		w.attachments(c.Edges)
	}
	w.object(f.children, func(f *pageField) {
		switch f.kind {
		case cEdges:
			w.b = append(w.b, '[')
			for i, e := range c.Edges {
				if i > 0 {
					w.b = append(w.b, ',')
				}
				w.edge(f.children, e)
			}
			w.b = append(w.b, ']')
		case cPageInfo:
			p := c.PageInfo
			if p == nil {
				fallBack()
			}
			w.object(f.children, func(f *pageField) {
				switch f.kind {
				case pHasNextPage:
					w.boolean(p.HasNextPage)
				case pEndCursor:
					w.optionalStr(p.EndCursor)
				default:
					fallBack()
				}
			})
		default:
			fallBack()
		}
	})
}

// attachments resolves the attachments of a page's messages as the
// executor does: concurrently, so that the resolver's loader batches them.
func (w *historyWriter) attachments(edges []*models.MessageEdge) {
	w.docs = make(map[*models.Message]*models.Document, len(edges))
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		failed atomic.Bool
	)
	resolver := w.ec.Resolvers.Message()
	resolve := func(m *models.Message) {
		defer func() {
			if recover() != nil {
				failed.Store(true)
			}
		}()
		d, err := resolver.Attachment(w.ctx, m)
		if err != nil {
			failed.Store(true)
			return
		}
		mu.Lock()
		w.docs[m] = d
		mu.Unlock()
	}
	for _, e := range edges {
		if e == nil || e.Node == nil {
			fallBack()
		}
		if e.Node.AttachmentID == nil {
			resolve(e.Node) // nothing to load: no goroutine
			continue
		}
		wg.Go(func() { resolve(e.Node) })
	}
	wg.Wait()
	if failed.Load() {
		fallBack()
	}
}

func (w *historyWriter) edge(fs []pageField, e *models.MessageEdge) {
	if e == nil {
		fallBack()
	}
	w.object(fs, func(f *pageField) {
		switch f.kind {
		case eCursor:
			w.str(e.Cursor)
		case eNode:
			w.message(f.children, e.Node)
		default:
			fallBack()
		}
	})
}

func (w *historyWriter) optionalStr(s *string) {
	if s == nil {
		w.null()
		return
	}
	w.str(*s)
}

func (w *historyWriter) message(fs []pageField, m *models.Message) {
	if m == nil {
		fallBack()
	}
	w.object(fs, func(f *pageField) {
		switch f.kind {
		case mID:
			w.str(m.ID)
		case mSender:
			if m.Sender == nil {
				fallBack() // User!
			}
			w.user(f.children, m.Sender)
		case mRoom:
			if m.RoomRef == nil {
				w.null()
				return
			}
			w.room(f.children, m.RoomRef)
		case mRecipient:
			if m.RecipientRef == nil {
				w.null()
				return
			}
			w.user(f.children, m.RecipientRef)
		case mCiphertext:
			w.b64(m.CipherBytes)
		case mNonce:
			w.b64(m.NonceBytes)
		case mMyKey:
			w.key(f.children, m.Mine)
		case mCreatedAt:
			w.time(m.CreatedAt)
		case mDeleted:
			w.boolean(m.Deleted())
		case mVersion:
			w.int(m.EnvelopeVersion())
		case mSignature:
			if m.SignatureBytes == nil {
				w.null()
				return
			}
			w.b64(m.SignatureBytes)
		case mKeyDigests:
			w.digests(m.KeyDigestBytes)
		case mAttachmentID:
			w.optionalStr(m.AttachmentID)
		case mAttachment:
			d, ok := w.docs[m]
			if !ok {
				fallBack()
			}
			w.document(f.children, d)
		default:
			fallBack()
		}
	})
}

func (w *historyWriter) user(fs []pageField, u *models.User) {
	w.object(fs, func(f *pageField) {
		switch f.kind {
		case uID:
			w.str(u.ID)
		case uUsername:
			w.str(u.Username)
		case uCreatedAt:
			w.time(u.CreatedAt)
		default:
			fallBack()
		}
	})
}

func (w *historyWriter) key(fs []pageField, k *models.RecipientKey) {
	if k == nil {
		w.null()
		return
	}
	w.object(fs, func(f *pageField) {
		switch f.kind {
		case kUserID:
			w.str(k.UserID)
		case kKeyID:
			w.str(k.KeyID)
		case kKemCiphertext:
			w.b64(k.KEMBytes)
		case kWrappedKey:
			w.b64(k.WrappedBytes)
		case kReadAt:
			if k.ReadAt == nil {
				w.null()
				return
			}
			w.time(*k.ReadAt)
		default:
			fallBack()
		}
	})
}

func (w *historyWriter) document(fs []pageField, d *models.Document) {
	if d == nil {
		w.null()
		return
	}
	w.object(fs, func(f *pageField) {
		switch f.kind {
		case dID:
			w.str(d.ID)
		case dName:
			w.str(d.Name)
		case dMimeType:
			w.str(d.MimeType)
		case dSize:
			w.int(d.Size)
		case dNonce:
			w.b64(d.NonceBytes)
		case dCreatedAt:
			w.time(d.CreatedAt)
		case dVersion:
			w.int(d.EnvelopeVersion())
		case dSignature:
			if d.SignatureBytes == nil {
				w.null()
				return
			}
			w.b64(d.SignatureBytes)
		case dKeyDigests:
			w.digests(d.KeyDigestBytes)
		default:
			fallBack()
		}
	})
}
