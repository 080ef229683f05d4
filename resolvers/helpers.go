package resolvers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vikstrous/dataloadgen"
	"golang.org/x/text/unicode/norm"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// Input limits.
const (
	maxPageSize    = models.MaxPageSize
	defaultPage    = 50
	maxRoomName    = 100
	maxIDsPerQuery = 100
	maxMarkRead    = 500
	maxRoomMembers = models.MaxRoomMembers
)

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,32}$`)

func isMissing(err error) bool {
	return errors.Is(err, dataloadgen.ErrNotFound) || errors.Is(err, models.ErrNotFound)
}

// me returns the authenticated user or UNAUTHENTICATED.
func me(ctx context.Context) (*models.User, error) {
	if u := auth.UserFrom(ctx); u != nil {
		return u, nil
	}
	return nil, models.Unauthenticated("authentication required: send Authorization: Bearer <token>")
}

// checkID rejects ids that are not lower-case canonical UUIDs: nothing else can
// name an object, and client-generated ids enter the envelope's aad as sent.
func checkID(field, id string) error {
	if !pqcrypto.IsCanonicalUUID(id) {
		return models.Invalid("%s: must be a lower-case UUID", field)
	}
	return nil
}

func checkIDs(field string, ids []string, limit int) error {
	if len(ids) > limit {
		return models.Invalid("%s: at most %d ids", field, limit)
	}
	for _, id := range ids {
		if err := checkID(field, id); err != nil {
			return err
		}
	}
	return nil
}

func checkRoomName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", models.Invalid("name: must not be empty")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxRoomName {
		return "", models.Invalid("name: at most %d characters of valid UTF-8", maxRoomName)
	}
	if err := checkVisible("name", name); err != nil {
		return "", err
	}
	return name, nil
}

// hidden are the characters a name must not hold because they make it show
// other than it reads: control characters (Cc), format characters (Cf: the
// bidirectional overrides and isolates that turn "invoice\u202Efdp.exe" into
// "invoiceexe.pdf", zero-width spaces and joiners, soft hyphens, tag
// characters) and the line and paragraph separators. The price: emoji that
// are built with a zero-width joiner (a family, a profession) are refused
// in names too.
var hidden = []*unicode.RangeTable{unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp}

// checkVisible refuses a name holding a hidden character, naming the field
// and the character.
func checkVisible(field, s string) error {
	for _, c := range s {
		if unicode.IsOneOf(hidden, c) {
			return models.InvalidField(field, fmt.Sprintf("%s: must not contain control or invisible formatting characters (found U+%04X)", field, c))
		}
	}
	return nil
}

// maxUsernameInput bounds the bytes normalised: 32 characters of what NFKC
// folds to ASCII (fullwidth letters) take 3 bytes each.
const maxUsernameInput = 4 * 32

// canonicalUsername is the form a username is stored, unique (case-folded:
// db.UsernameKey) and looked up in, or ok=false if there is none. NFKC folds
// the compatibility forms of ASCII letters and digits (fullwidth "ａｌｉｃｅ",
// the ligature "ﬁ", the Kelvin sign, superscript digits) into the ASCII they
// stand for, so that they name the account they look like; every other
// non-ASCII character fails usernameRE, so Cyrillic or Greek look-alikes of
// a name cannot be registered at all.
func canonicalUsername(s string) (name string, ok bool) {
	if len(s) > maxUsernameInput {
		return "", false
	}
	name = norm.NFKC.String(s)
	return name, usernameRE.MatchString(name)
}

func pageSize(first *int) (int, error) {
	if first == nil {
		return defaultPage, nil
	}
	if *first < 1 || *first > maxPageSize {
		return 0, models.Invalid("first: must be between 1 and %d", maxPageSize)
	}
	return *first, nil
}

// Invite codes use an alphabet without look-alikes (0/O, 1/I/L).
const codeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
const codeLength = 8

func newRoomCode() (string, error) {
	b := make([]byte, codeLength)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		// 256 % 31 bias is negligible for invite codes that are also rate limited.
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b), nil
}

func normalizeCode(code string) (string, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	if len(code) != codeLength {
		return "", models.Invalid("code: must be %d characters", codeLength)
	}
	for _, c := range code {
		if !strings.ContainsRune(codeAlphabet, c) {
			return "", models.Invalid("code: not an invite code")
		}
	}
	return code, nil
}

// membership returns the caller's membership of a room; a room the caller is
// not in is NOT_FOUND, whether it exists or not.
func (r *Resolver) membership(ctx context.Context, roomID, userID string) (*models.RoomMember, error) {
	if err := checkID("roomId", roomID); err != nil {
		return nil, err
	}
	m, err := r.store.Membership(ctx, roomID, userID)
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return nil, models.NotFound("room")
		}
		return nil, err
	}
	return m, nil
}

// isMember answers from a short-lived cache; used on every live event.
func (r *Resolver) isMember(ctx context.Context, roomID, userID string) bool {
	key := memberKey(roomID, userID)
	if ok, hit := r.members.GetIfPresent(key); hit {
		return ok
	}
	_, err := r.store.Membership(ctx, roomID, userID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return false // fail closed; do not cache a transient error
	}
	r.members.Set(key, err == nil)
	return err == nil
}

// forgetMembers drops the cached memberships of users in roomID, here and on
// every other instance.
func (r *Resolver) forgetMembers(ctx context.Context, roomID string, users ...string) {
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = memberKey(roomID, u)
	}
	r.invalidate(ctx, "member", keys...)
}

// canRead says whether userID may read message m.
func (r *Resolver) canRead(ctx context.Context, m *models.Message, userID string) bool {
	if m.RoomID != nil {
		return r.isMember(ctx, *m.RoomID, userID)
	}
	return m.SenderID == userID || (m.RecipientID != nil && *m.RecipientID == userID)
}

// audience lists the users who see events of a conversation.
func (r *Resolver) audience(ctx context.Context, m *models.Message) ([]string, error) {
	if m.RoomID == nil {
		ids := []string{m.SenderID}
		if m.RecipientID != nil && *m.RecipientID != m.SenderID {
			ids = append(ids, *m.RecipientID)
		}
		return ids, nil
	}
	return r.roomAudience(ctx, *m.RoomID)
}

func (r *Resolver) roomAudience(ctx context.Context, roomID string) ([]string, error) {
	// The cached recipient set: typing notices and receipts go out on every
	// keystroke and read, and membership changes invalidate it first.
	rs, err := r.roomRecipients(ctx, roomID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(rs))
	for i, m := range rs {
		ids[i] = m.UserID
	}
	return ids, nil
}

// publish sends ev to the topics of users. Live delivery is best effort: the
// change is already stored, so a broker failure is logged, not returned.
func (r *Resolver) publish(ctx context.Context, users []string, ev *broker.Event) {
	topics := make([]string, len(users))
	for i, u := range users {
		topics[i] = broker.UserTopic(u)
	}
	if err := r.broker.Publish(context.WithoutCancel(ctx), topics, ev); err != nil {
		r.log.WarnContext(ctx, "publish event", "kind", ev.Kind, "err", err)
	}
}

func (r *Resolver) publishRoomEvent(ctx context.Context, typ models.RoomEventType, room *models.Room, user *string, extra ...string) {
	users, err := r.roomAudience(ctx, room.ID)
	if err != nil {
		r.log.WarnContext(ctx, "room audience", "err", err)
	}
	users = append(users, extra...)
	snapshot := *room
	r.publish(ctx, users, &broker.Event{Kind: broker.RoomChanged, Room: &models.RoomEvent{Type: typ, Room: &snapshot, UserID: user}})
}

// connection builds a page of history.
func connection(ms []*models.Message, more bool) *models.MessageConnection {
	c := &models.MessageConnection{Edges: make([]*models.MessageEdge, len(ms)), PageInfo: &models.PageInfo{HasNextPage: more}}
	for i, m := range ms {
		c.Edges[i] = &models.MessageEdge{Cursor: db.EncodeCursor(m), Node: m}
	}
	if len(ms) > 0 {
		end := c.Edges[len(ms)-1].Cursor
		c.PageInfo.EndCursor = &end
	}
	return c
}

func (r *Resolver) history(ctx context.Context, conversation string, first *int, after *string) (*models.MessageConnection, error) {
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	var cur *db.Cursor
	if after != nil && *after != "" {
		c, err := db.DecodeCursor(*after)
		if err != nil {
			return nil, err
		}
		cur = &c
	}
	ms, more, err := r.store.History(ctx, conversation, cur, n)
	if err != nil {
		return nil, err
	}
	if err := r.present(ctx, userID(ctx), ms...); err != nil {
		return nil, err
	}
	return connection(ms, more), nil
}

// present fills what the Message fields read from memory (sender, room or
// recipient, and viewerID's own key) for messages about to be returned to
// viewerID: users and rooms from the caches, the keys that no event carried
// in one query. The fields are plain struct fields rather than resolvers,
// because gqlgen runs each resolver field in a goroutine of its own: four per
// message of a history page, or per subscriber of an event.
func (r *Resolver) present(ctx context.Context, viewerID string, ms ...*models.Message) error {
	var pairs []db.MessageUser
	for _, m := range ms {
		if err := r.fillRefs(ctx, m); err != nil {
			return err
		}
		switch {
		case m.Deleted():
			m.Mine = nil
		case m.Keys != nil:
			m.Mine = m.KeyFor(viewerID)
		default:
			pairs = append(pairs, db.MessageUser{MessageID: m.ID, UserID: viewerID})
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	keys, err := r.store.RecipientKeys(ctx, pairs)
	if err != nil {
		return err
	}
	byMessage := index(keys, func(k *models.RecipientKey) string { return k.MessageID })
	for _, m := range ms {
		if !m.Deleted() && m.Keys == nil {
			m.Mine = byMessage[m.ID]
		}
	}
	return nil
}

// fillRefs sets a message's sender and its room or recipient from the caches.
func (r *Resolver) fillRefs(ctx context.Context, m *models.Message) error {
	var err error
	if m.Sender == nil {
		if m.Sender, err = r.userRef(ctx, m.SenderID); err != nil {
			return fmt.Errorf("sender of message %s: %w", m.ID, err)
		}
	}
	switch {
	case m.RoomID != nil && m.RoomRef == nil:
		m.RoomRef, err = r.roomRef(ctx, *m.RoomID)
	case m.RecipientID != nil && m.RecipientRef == nil:
		m.RecipientRef, err = r.userRef(ctx, *m.RecipientID)
	}
	if err != nil {
		return fmt.Errorf("room or recipient of message %s: %w", m.ID, err)
	}
	return nil
}

// forReader is a subscriber's shallow copy of an event's message, with its
// own key; the message itself is shared by every subscriber.
func forReader(m *models.Message, userID string) *models.Message {
	c := *m
	c.Mine = nil
	if !m.Deleted() {
		c.Mine = m.KeyFor(userID)
	}
	return &c
}

// subscribe starts a subscription on the caller's topic: each event passes
// through pick, which returns the value to deliver or ok=false to skip it. The
// goroutine and both channels end when ctx ends or the broker drops the
// subscriber.
func subscribe[T any](ctx context.Context, r *Resolver, pick func(ctx context.Context, ev *broker.Event) (T, bool)) (<-chan T, error) {
	return subscribeEach(ctx, r, func(ctx context.Context, ev *broker.Event, emit func(T) bool) bool {
		v, ok := pick(ctx, ev)
		return !ok || emit(v)
	})
}

// subscribeEach is subscribe for events that carry several values (a batch of
// receipts): deliver hands each value to emit, which reports false once the
// subscription has ended, and returns false to end it. The expansion happens
// here, in the subscriber's own goroutine, at the pace its client reads: the
// broker and its buffers carry one event however many values it holds.
func subscribeEach[T any](ctx context.Context, r *Resolver, deliver func(ctx context.Context, ev *broker.Event, emit func(T) bool) bool) (<-chan T, error) {
	u, err := me(ctx)
	if err != nil {
		return nil, err
	}
	release, err := r.acquireSubscription(ctx)
	if err != nil {
		return nil, err
	}
	in, err := r.broker.Subscribe(ctx, broker.UserTopic(u.ID))
	if err != nil {
		release()
		return nil, err
	}
	out := make(chan T, 1)
	emit := func(v T) bool {
		select {
		case out <- v:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer release()
		defer close(out)
		for ev := range in {
			if !deliver(ctx, ev, emit) {
				return
			}
		}
	}()
	return out, nil
}

// checkRoomFilter validates a subscription's roomId: it must name a room the
// caller is in.
func (r *Resolver) checkRoomFilter(ctx context.Context, roomID *string) error {
	u, err := me(ctx)
	if err != nil {
		return err
	}
	if roomID == nil {
		return nil
	}
	_, err = r.membership(ctx, *roomID, u.ID)
	return err
}

func userID(ctx context.Context) string {
	if u := auth.UserFrom(ctx); u != nil {
		return u.ID
	}
	return ""
}
