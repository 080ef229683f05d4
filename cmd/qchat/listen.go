package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

// maxCatchUp bounds the messages fetched per conversation after a
// reconnect; beyond it, history shows the rest.
const maxCatchUp = 500

// remembered is how many shown messages listen remembers (to drop
// duplicates and name messages in receipts); a listen left running for
// weeks forgets the oldest rather than grow without bound.
const remembered = 20000

// listen prints events until ctx ends (Ctrl-C). Messages from others are
// marked read once shown, which is what sends them read receipts; use
// --no-receipts to read silently. When the server restarts or drops the
// connection, listen reconnects with backoff and catches up from where it
// was, so that every message is shown once, in order.
func (a *app) listen(ctx context.Context, args []string) error {
	fs := a.flags("listen")
	noReceipts := fs.Bool("no-receipts", false, "do not mark shown messages read")
	pos, err := a.start(ctx, fs, args, spec{args: "[ROOM]", max: 1, signIn: true, keys: true,
		about: "Shows new messages (opened here), typing, read receipts and key changes of every conversation, or of one room,\n" +
			"until Ctrl-C. If the server restarts, it reconnects and shows what was sent meanwhile."})
	if err != nil {
		return err
	}
	l := &listening{a: a, c: a.client, receipts: !*noReceipts,
		seen: map[string]bool{}, newest: map[string]cursor{}, peers: map[string]bool{}, texts: map[string]string{}}
	if len(pos) == 1 {
		conv, _, err := a.conversation(ctx, a.client, pos[0])
		if err != nil {
			return err
		}
		if conv.RoomID == "" {
			return usageErr("listen takes a room, or nothing for everything")
		}
		l.roomID = conv.RoomID
	}
	if l.v, err = a.newView(ctx, a.client, a.session); err != nil {
		return err
	}
	l.keysStamp = l.stamp()
	return l.run(ctx)
}

// cursor is the newest message known in one conversation: catching up
// shows what came after it.
type cursor struct {
	id string
	at time.Time
}

// listening is the state of one listen: what was shown, so that catching up
// after a reconnect neither misses nor repeats a message.
type listening struct {
	a        *app
	c        *client.Client
	v        *view
	receipts bool
	roomID   string // "" for every conversation

	seen      map[string]bool   // ids of the messages shown
	order     []string          // the same ids, oldest first
	newest    map[string]cursor // conversation key → newest message known there
	peers     map[string]bool   // user ids of the direct conversations seen
	texts     map[string]string // message id → how a receipt names it
	keysStamp string            // keys.json's size and time when last loaded
	// settled is set by the first live message of a connection: from
	// then on the server has the subscription registered.
	settled bool
}

func (l *listening) subscriptions() []client.Subscription {
	r := l.roomID
	return []client.Subscription{client.MessagesAdded(r), client.Typing(r), client.ReadReceipts(r), client.MessagesDeleted(r), client.RoomEvents(), client.KeyChanges()}
}

func (l *listening) run(ctx context.Context) error {
	stderr := l.a.stderr
	var wait backoff
	connected, lost := false, false
	for {
		err := l.connect(ctx, !connected, func() {
			if !connected {
				fmt.Fprintf(stderr, "listening as %s (Ctrl-C to stop)\n", l.a.session.Username)
			}
			connected, lost = true, false
			wait.reset()
		})
		if ctx.Err() != nil {
			return nil // interrupted: the normal way to stop
		}
		if !connected {
			return fail(err, "cannot listen")
		}
		if !client.Resubscribe(err) {
			if client.HasCode(err, client.CodeForbidden) || client.HasCode(err, client.CodeUnauthenticated) {
				return &failure{msg: fmt.Sprintf("the server ended your session (logged out or revoked elsewhere): run %s login %s", l.a.me(), l.a.session.Username),
					code: errCode(err), cause: err}
			}
			return fail(err, "listening stopped")
		}
		if !lost {
			fmt.Fprintln(stderr, lostLine(err))
			lost = true
		}
		if wait.sleep(ctx) != nil {
			return nil
		}
	}
}

// lostLine is the one line a person reads when the live connection ends.
func lostLine(err error) string {
	switch {
	case errors.Is(err, client.ErrGoingAway):
		return "the server is restarting or shutting down: reconnecting…"
	case client.HasCode(err, client.CodeSlowConsumer), errors.Is(err, client.ErrCompleted):
		return "the server dropped this listener (it fell behind): reconnecting…"
	}
	return "lost the connection to the server: reconnecting…"
}

// connect subscribes once and shows events until the subscription ends,
// returning why. The first time it notes where every conversation stands;
// after a reconnect it first shows what was missed.
func (l *listening) connect(ctx context.Context, first bool, up func()) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the SDK's reader when we stop reading
	events, err := l.c.Subscribe(sctx, l.subscriptions()...)
	if err != nil {
		return err
	}
	// The subscription is open before history is read, so a message sent
	// in between is in one or the other; seen drops the duplicate. The
	// server registers a subscription a moment after it arrives, though:
	// a message sent in that moment is in neither, so the first live
	// message, proof of registration, triggers one more catch-up.
	l.settled = false
	if first {
		err = l.mark(ctx)
	} else {
		var n int
		if n, err = l.catchUp(ctx); err == nil {
			fmt.Fprintf(l.a.stderr, "reconnected; %s\n", plural(n, "missed message", "missed messages")+" shown")
		}
	}
	if err != nil {
		return err
	}
	up()
	for e := range events {
		if e.Kind == client.EventError {
			return e.Err
		}
		if err := l.show(ctx, e); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// conversations are what listen covers: every conversation of mine, rooms
// and direct ones, as the server lists them (so a direct message from
// someone new, sent while listen was disconnected, is caught up too), or
// the one room.
func (l *listening) conversations(ctx context.Context) ([]client.Conversation, error) {
	if l.roomID != "" {
		return []client.Conversation{client.InRoom(l.roomID)}, nil
	}
	all, err := l.c.AllConversations(ctx)
	if err != nil {
		return nil, err
	}
	var convs []client.Conversation
	listed := map[string]bool{}
	for _, cv := range all {
		switch {
		case cv.Room != nil:
			l.v.rooms[cv.Room.Id] = cv.Room.Name
			convs = append(convs, client.InRoom(cv.Room.Id))
		case cv.User != nil:
			listed[cv.User.Id] = true
			convs = append(convs, client.WithUser(cv.User.Id))
		}
	}
	// A direct conversation seen live is covered even if the list was
	// read before its first message was stored.
	for id := range l.peers {
		if !listed[id] {
			convs = append(convs, client.WithUser(id))
		}
	}
	return convs, nil
}

func convKey(c client.Conversation) string {
	if c.RoomID != "" {
		return "room:" + c.RoomID
	}
	return "user:" + c.UserID
}

// messageConv is the conversation of a message, as the reader sees it.
func (l *listening) messageConv(m *client.Message) client.Conversation {
	if m.Room != nil {
		return client.InRoom(m.Room.Id)
	}
	if m.Sender.Id == l.v.self && m.Recipient != nil {
		return client.WithUser(m.Recipient.Id)
	}
	return client.WithUser(m.Sender.Id)
}

// mark notes the newest message of every conversation at the start.
func (l *listening) mark(ctx context.Context) error {
	convs, err := l.conversations(ctx)
	if err != nil {
		return err
	}
	for _, conv := range convs {
		p, err := l.c.MessagePage(ctx, conv, 1, "")
		if err != nil {
			return err
		}
		cur := cursor{}
		if len(p.Edges) > 0 {
			cur = cursor{p.Edges[0].Node.Id, p.Edges[0].Node.CreatedAt}
		}
		l.newest[convKey(conv)] = cur
	}
	return nil
}

// catchUp shows, oldest first, the messages that arrived while listen was
// disconnected: in each conversation, those after its newest known one. A
// conversation new since the start (a room joined meanwhile) shows those
// after the newest message known anywhere.
func (l *listening) catchUp(ctx context.Context) (int, error) {
	convs, err := l.conversations(ctx)
	if err != nil {
		return 0, err
	}
	var since time.Time
	for _, c := range l.newest {
		if c.at.After(since) {
			since = c.at
		}
	}
	var missed []*client.Message
	for _, conv := range convs {
		cur, ok := l.newest[convKey(conv)]
		if !ok {
			cur = cursor{at: since}
		}
		after, n := "", 0
		for n < maxCatchUp {
			p, err := l.c.MessagePage(ctx, conv, min(client.DefaultPageSize, maxCatchUp-n), after)
			if err != nil {
				return 0, err
			}
			done := !p.PageInfo.HasNextPage
			for i := range p.Edges {
				m := &p.Edges[i].Node
				if m.Id == cur.id || !m.CreatedAt.After(cur.at) {
					done = true
					break
				}
				n++
				if !l.seen[m.Id] {
					missed = append(missed, m)
				}
			}
			if done || p.PageInfo.EndCursor == nil {
				break
			}
			after = *p.PageInfo.EndCursor
		}
		if n >= maxCatchUp {
			where := "a direct conversation"
			if conv.RoomID != "" {
				where = l.v.rooms[conv.RoomID]
			}
			fmt.Fprintf(l.a.stderr, "more than %d messages in %s while disconnected: qchat history shows the older ones\n", maxCatchUp, where)
		}
	}
	sort.SliceStable(missed, func(i, j int) bool {
		if !missed[i].CreatedAt.Equal(missed[j].CreatedAt) {
			return missed[i].CreatedAt.Before(missed[j].CreatedAt)
		}
		return missed[i].Id < missed[j].Id
	})
	shown := 0
	for _, m := range missed {
		if l.seen[m.Id] {
			continue
		}
		if err := l.showMessage(ctx, m); err != nil {
			return shown, err
		}
		shown++
	}
	return shown, nil
}

// stamp identifies the key store's current contents cheaply.
func (l *listening) stamp() string {
	info, err := os.Stat(filepath.Join(l.a.dir, keysFile))
	if err != nil {
		return ""
	}
	return fmt.Sprint(info.Size(), info.ModTime().UnixNano())
}

// reloadKeys reads the key store again if it changed since it was loaded:
// "qchat rotate-key" in another terminal adds the key that new messages are
// sealed for.
func (l *listening) reloadKeys() bool {
	st := l.stamp()
	if st == l.keysStamp {
		return false
	}
	ring, err := l.a.keyring()
	if err != nil {
		fmt.Fprintf(l.a.stderr, "warning: cannot reload the key store: %v\n", err)
		return false
	}
	l.a.ring, l.keysStamp = ring, st
	return true
}

func (l *listening) showMessage(ctx context.Context, m *client.Message) error {
	if l.seen[m.Id] {
		return nil
	}
	l.seen[m.Id] = true
	l.order = append(l.order, m.Id)
	if len(l.order) > remembered {
		for _, id := range l.order[:remembered/2] {
			delete(l.seen, id)
			delete(l.texts, id)
		}
		l.order = append([]string(nil), l.order[remembered/2:]...)
	}
	conv := l.messageConv(m)
	if k := convKey(conv); m.CreatedAt.After(l.newest[k].at) {
		l.newest[k] = cursor{m.Id, m.CreatedAt}
	}
	if conv.UserID != "" && l.roomID == "" {
		l.peers[conv.UserID] = true
	}
	r := l.c.Decrypt(ctx, m, l.a.ring)
	if errors.Is(r.Err, client.ErrMissingSecretKey) && l.reloadKeys() {
		r = l.c.Decrypt(ctx, m, l.a.ring)
	}
	v := l.v
	if r.Err == nil {
		who := r.Sender.Username + "'s message"
		if r.Sender.Id == v.self {
			who = "your message"
		}
		l.texts[r.Id] = fmt.Sprintf("%s %q in %s", who, snippet(r.Text(), 40), v.conversation(&r.Message))
	}
	if err := l.a.out(v.messageJSON(&r), "%s\n", v.messageLine(&r)); err != nil {
		return err
	}
	if l.receipts && r.Sender.Id != v.self && r.Err == nil {
		if _, err := l.c.MarkRead(ctx, r.Id); err != nil && ctx.Err() == nil {
			fmt.Fprintf(l.a.stderr, "warning: could not send a read receipt: %s\n", reason(err))
		}
	}
	return nil
}

// snippet is the start of a text, on one line.
func snippet(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func (l *listening) show(ctx context.Context, e client.Event) error {
	a, v := l.a, l.v
	switch e.Kind {
	case client.EventMessage:
		if !l.settled {
			l.settled = true
			if _, err := l.catchUp(ctx); err != nil {
				return err
			}
		}
		return l.showMessage(ctx, e.Message)
	case client.EventTyping:
		t := e.Typing
		if t.User.Id == v.self {
			return nil
		}
		where := "to you"
		if t.RoomId != nil {
			where = "in " + v.rooms[*t.RoomId]
		}
		state := "stopped typing"
		if t.IsTyping {
			state = "is typing…"
		}
		return a.out(map[string]any{"event": "typing", "from": t.User.Username, "fromId": t.User.Id, "roomId": t.RoomId, "isTyping": t.IsTyping},
			"  %s %s %s\n", t.User.Username, state, where)
	case client.EventReadReceipt:
		rr := e.ReadReceipt
		if rr.User.Id == v.self {
			return nil
		}
		what, ok := l.texts[rr.MessageId]
		if !ok {
			what = "an earlier message"
		}
		return a.out(map[string]any{"event": "receipt", "messageId": rr.MessageId, "by": rr.User.Username, "byId": rr.User.Id, "readAt": rr.ReadAt},
			"  %s read %s\n", rr.User.Username, what)
	case client.EventMessageDeleted:
		what, ok := l.texts[e.DeletedMessageID]
		if !ok {
			what = "a message"
		}
		return a.out(map[string]any{"event": "deleted", "messageId": e.DeletedMessageID}, "  deleted: %s\n", what)
	case client.EventKeyChange:
		return l.showKeyChange(ctx, e.KeyChange)
	case client.EventRoom:
		re := e.Room
		v.rooms[re.Room.Id] = re.Room.Name // renames and joins keep names current
		who := ""
		if re.User != nil {
			who = re.User.Username
		}
		return a.out(map[string]any{"event": "room", "type": re.Type, "roomId": re.Room.Id, "room": re.Room.Name, "user": who},
			"  [%s] %s\n", re.Room.Name, roomEventText(re.Type, who))
	}
	return nil
}

// showKeyChange prints a key change as it arrives. A new KEM key certified
// by the pinned identity key is routine; a new identity key is a warning
// unless it is the one already pinned (accepted meanwhile, or the first
// identity key of an account from before version 2).
func (l *listening) showKeyChange(ctx context.Context, kc *client.KeyChange) error {
	a, who := l.a, kc.User.Username
	if kc.Kind == client.KeyChangeKindKemRotated {
		return a.out(map[string]any{"event": "keyChange", "kind": kc.Kind, "user": who, "userId": kc.User.Id, "warning": false},
			"  %s has a new key\n", who)
	}
	pin, err := a.pins().Pin(kc.User.Id)
	if err != nil {
		return err
	}
	text, warn := who+" set up an identity key", false
	if pin != nil {
		u, err := l.c.User(ctx, kc.User.Id)
		if err != nil {
			return fail(err, "cannot look up %s", who)
		}
		text = who + "'s identity key changed; you have already accepted it"
		if u.IdentityKey == nil || u.IdentityKey.Key != pqcrypto.EncodeB64(pin.IdentityKey) {
			text = fmt.Sprintf("WARNING: %s's identity key changed: nothing will be sent to them until you check with them and run %s trust @%s", who, a.me(), who)
			warn = true
		}
	}
	return a.out(map[string]any{"event": "keyChange", "kind": kc.Kind, "user": who, "userId": kc.User.Id, "warning": warn}, "  %s\n", text)
}

func roomEventText(t client.RoomEventType, who string) string {
	switch t {
	case client.RoomEventTypeMemberJoined:
		return who + " joined"
	case client.RoomEventTypeMemberLeft:
		return who + " left"
	case client.RoomEventTypeRenamed:
		return "renamed"
	case client.RoomEventTypeDeleted:
		return "deleted"
	case client.RoomEventTypeCodeRotated:
		return "has a new invite code"
	case client.RoomEventTypeRoleChanged:
		return who + "'s role changed"
	}
	return strings.ToLower(strings.ReplaceAll(string(t), "_", " ")) + " " + who
}

// backoff spaces reconnection attempts: a quarter second, doubling to
// eight, with jitter so that many listeners of a restarted server do not
// return all at once.
type backoff struct{ next time.Duration }

func (b *backoff) reset() { b.next = 0 }

func (b *backoff) sleep(ctx context.Context) error {
	if b.next == 0 {
		b.next = 250 * time.Millisecond
	}
	d := b.next + rand.N(b.next/4)
	b.next = min(2*b.next, 8*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
