package chat_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/chat"
	"github.com/qchat/qchat/internal/presence"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// The domain's rules, tested on the Service itself (not through GraphQL) on
// both databases.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

// recorder is a broker that remembers what was published to which topics,
// and delivers through a memory broker.
type recorder struct {
	*broker.Memory
	mu   sync.Mutex
	sent []sent
}

type sent struct {
	topics []string
	ev     *broker.Event
}

func (r *recorder) Publish(ctx context.Context, topics []string, ev *broker.Event) error {
	r.mu.Lock()
	r.sent = append(r.sent, sent{slices.Clone(topics), ev})
	r.mu.Unlock()
	return r.Memory.Publish(ctx, topics, ev)
}

// since returns, for events of kind published after mark, the users they
// were addressed to (each user once per event).
func (r *recorder) since(mark int, kind broker.Kind) [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]string
	for _, s := range r.sent[mark:] {
		if s.ev.Kind == kind {
			users := make([]string, len(s.topics))
			for i, t := range s.topics {
				users[i] = t[len(broker.UserTopic("")):]
			}
			slices.Sort(users)
			out = append(out, users)
		}
	}
	return out
}

func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

type fixture struct {
	svc   *chat.Service
	store *db.Store
	bk    *recorder
	n     atomic.Int32
}

func newFixture(t *testing.T, store *db.Store) *fixture {
	t.Helper()
	authn := auth.New(store, auth.Config{BcryptCost: 4})
	bk := &recorder{Memory: broker.NewMemory(256)}
	svc := chat.New(chat.Deps{Store: store, Sessions: authn, Broker: bk, Presence: presence.NewMemory()})
	t.Cleanup(func() {
		svc.Close()
		authn.Close()
		_ = bk.Close()
	})
	return &fixture{svc: svc, store: store, bk: bk}
}

type user struct {
	*models.User
	token string
	key   *pqcrypto.KeyPair
	ik    *pqcrypto.IdentityKey
	seq   int
}

func (f *fixture) register(t *testing.T, name string) *user {
	t.Helper()
	c := qchattest.NewV2Keys(t)
	name = fmt.Sprintf("%s%d", name, f.n.Add(1))
	p, err := f.svc.Register(context.Background(), models.RegisterInput{Username: name, Password: "password-" + name, PublicKey: c.Pub(),
		IdentityKey: c.Identity(), PublicKeySignature: c.Cert(t, 1)})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return &user{User: p.User, token: p.Token, key: c.KP, ik: c.IK, seq: 1}
}

// rotate gives u a fresh KEM key certified with the next seq.
func (f *fixture) rotate(ctx context.Context, u *user) error {
	kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		return err
	}
	cert, err := pqcrypto.CertifyKEMKey(u.ik, kp.Algorithm, u.seq+1, kp.PublicKey)
	if err != nil {
		return err
	}
	fresh, err := f.svc.RotateKey(ctx, u.User, pqcrypto.EncodeB64(kp.PublicKey), nil, u.seq+1, pqcrypto.EncodeB64(cert))
	if err != nil {
		return err
	}
	u.User, u.key, u.seq = fresh, kp, u.seq+1
	return nil
}

// world is a group room owned by alice, with bob an admin and carol a
// member, and dave who is in no room with them.
type world struct {
	alice, bob, carol, dave *user
	room                    *models.Room
}

func (f *fixture) world(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{alice: f.register(t, "alice"), bob: f.register(t, "bob"), carol: f.register(t, "carol"), dave: f.register(t, "dave")}
	var err error
	w.room, err = f.svc.CreateRoom(ctx, w.alice.User, models.CreateRoomInput{Name: "team", MemberIds: []string{w.bob.ID, w.carol.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetRole(ctx, w.alice.User, w.room.ID, w.bob.ID, models.RoomRoleAdmin); err != nil {
		t.Fatal(err)
	}
	return w
}

// seal builds a sendMessage input sealed for recipients.
func seal(t *testing.T, sender *user, roomID, recipientID *string, recipients ...*user) models.SendMessageInput {
	t.Helper()
	id := uuid.NewString()
	// The envelope names a direct conversation by the recipient's id.
	conv := ""
	if roomID != nil {
		conv = *roomID
	} else {
		conv = *recipientID
	}
	rs := make([]pqcrypto.Recipient, len(recipients))
	for i, u := range recipients {
		rs[i] = pqcrypto.Recipient{UserID: u.ID, KeyID: u.CurrentKeyID, Algorithm: u.key.Algorithm, PublicKey: u.key.PublicKey}
	}
	env, err := pqcrypto.SealSigned(nil, sender.ik, pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: id, SenderID: sender.ID, ConversationID: conv}, []byte("hi"), rs)
	if err != nil {
		t.Fatal(err)
	}
	wire := env.Wire()
	keys := make([]*models.RecipientKeyInput, len(wire.Keys))
	for i, k := range wire.Keys {
		keys[i] = &models.RecipientKeyInput{UserID: k.UserID, KeyID: k.KeyID, KemCiphertext: k.KEMCiphertext, WrappedKey: k.WrappedKey}
	}
	return models.SendMessageInput{ID: id, RoomID: roomID, RecipientID: recipientID, Ciphertext: wire.Ciphertext, Nonce: wire.Nonce, Keys: keys, Signature: wire.Signature}
}

// kindOf names an error's contract kind for comparisons ("" for nil).
func kindOf(err error) string {
	if err == nil {
		return ""
	}
	return models.Reason(err)
}

func TestAccessRules(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		tests := []struct {
			name string
			do   func(t *testing.T, w *world) error
			want string // models.Reason of the error; "" for success
		}{
			{"a non-member reads the room", func(t *testing.T, w *world) error { _, err := f.svc.Room(ctx, w.dave.User, w.room.ID); return err }, "not_found"},
			{"a non-member reads the history", func(t *testing.T, w *world) error {
				_, err := f.svc.RoomMessages(ctx, w.dave.User, w.room.ID, nil, nil)
				return err
			}, "not_found"},
			{"a non-member lists documents", func(t *testing.T, w *world) error {
				_, err := f.svc.RoomDocumentList(ctx, w.dave.User, w.room.ID)
				return err
			}, "not_found"},
			{"a non-member adds", func(t *testing.T, w *world) error {
				_, err := f.svc.AddMember(ctx, w.dave.User, w.room.ID, w.dave.ID)
				return err
			}, "not_found"},
			{"a non-member renames", func(t *testing.T, w *world) error {
				_, err := f.svc.RenameRoom(ctx, w.dave.User, w.room.ID, "x")
				return err
			}, "not_found"},
			{"a non-member types", func(t *testing.T, w *world) error { return f.svc.SetTyping(ctx, w.dave.User, &w.room.ID, nil, true) }, "not_found"},
			{"a member adds", func(t *testing.T, w *world) error {
				_, err := f.svc.AddMember(ctx, w.carol.User, w.room.ID, w.dave.ID)
				return err
			}, "forbidden"},
			{"an admin adds", func(t *testing.T, w *world) error {
				_, err := f.svc.AddMember(ctx, w.bob.User, w.room.ID, w.dave.ID)
				return err
			}, ""},
			{"a member removes another", func(t *testing.T, w *world) error {
				_, err := f.svc.RemoveMember(ctx, w.carol.User, w.room.ID, w.bob.ID)
				return err
			}, "forbidden"},
			{"a member leaves", func(t *testing.T, w *world) error {
				_, err := f.svc.RemoveMember(ctx, w.carol.User, w.room.ID, w.carol.ID)
				return err
			}, ""},
			{"an admin removes a member", func(t *testing.T, w *world) error {
				_, err := f.svc.RemoveMember(ctx, w.bob.User, w.room.ID, w.carol.ID)
				return err
			}, ""},
			{"an admin removes the owner", func(t *testing.T, w *world) error {
				_, err := f.svc.RemoveMember(ctx, w.bob.User, w.room.ID, w.alice.ID)
				return err
			}, "forbidden"},
			{"the owner removes an admin", func(t *testing.T, w *world) error {
				_, err := f.svc.RemoveMember(ctx, w.alice.User, w.room.ID, w.bob.ID)
				return err
			}, ""},
			{"an admin renames", func(t *testing.T, w *world) error {
				_, err := f.svc.RenameRoom(ctx, w.bob.User, w.room.ID, "x")
				return err
			}, "forbidden"},
			{"the owner renames", func(t *testing.T, w *world) error {
				_, err := f.svc.RenameRoom(ctx, w.alice.User, w.room.ID, "x")
				return err
			}, ""},
			{"an admin deletes", func(t *testing.T, w *world) error { return f.svc.DeleteRoom(ctx, w.bob.User, w.room.ID) }, "forbidden"},
			{"a member deletes", func(t *testing.T, w *world) error { return f.svc.DeleteRoom(ctx, w.carol.User, w.room.ID) }, "forbidden"},
			{"the owner deletes", func(t *testing.T, w *world) error { return f.svc.DeleteRoom(ctx, w.alice.User, w.room.ID) }, ""},
			{"an admin sets roles", func(t *testing.T, w *world) error {
				_, err := f.svc.SetRole(ctx, w.bob.User, w.room.ID, w.carol.ID, models.RoomRoleAdmin)
				return err
			}, "forbidden"},
			{"an admin rotates the code", func(t *testing.T, w *world) error { _, err := f.svc.RotateCode(ctx, w.bob.User, w.room.ID); return err }, "forbidden"},
			{"a direct message to oneself", func(t *testing.T, w *world) error {
				_, err := f.svc.SendMessage(ctx, w.alice.User, seal(t, w.alice, nil, &w.alice.ID, w.alice))
				return err
			}, "invalid"},
			{"a direct message to nobody", func(t *testing.T, w *world) error {
				nobody := uuid.NewString()
				_, err := f.svc.SendMessage(ctx, w.alice.User, seal(t, w.alice, nil, &nobody, w.alice))
				return err
			}, "not_found"},
			{"a direct message to a stranger", func(t *testing.T, w *world) error {
				_, err := f.svc.SendMessage(ctx, w.alice.User, seal(t, w.alice, nil, &w.dave.ID, w.alice, w.dave))
				return err
			}, ""},
			{"direct history with nobody", func(t *testing.T, w *world) error {
				_, err := f.svc.DirectMessages(ctx, w.alice.User, uuid.NewString(), nil, nil)
				return err
			}, "not_found"},
			{"typing to oneself", func(t *testing.T, w *world) error { return f.svc.SetTyping(ctx, w.alice.User, nil, &w.alice.ID, true) }, "invalid"},
			{"typing to nobody", func(t *testing.T, w *world) error {
				nobody := uuid.NewString()
				return f.svc.SetTyping(ctx, w.alice.User, nil, &nobody, true)
			}, "not_found"},
			{"a message sealed for a non-member", func(t *testing.T, w *world) error {
				_, err := f.svc.SendMessage(ctx, w.alice.User, seal(t, w.alice, &w.room.ID, nil, w.alice, w.bob, w.carol, w.dave))
				return err
			}, "invalid"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				w := f.world(t)
				if got := kindOf(tt.do(t, w)); got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			})
		}
	})
}

func TestReadsOfOthersMessagesAndDocuments(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		w := f.world(t)
		m, err := f.svc.SendMessage(ctx, w.alice.User, seal(t, w.alice, &w.room.ID, nil, w.alice, w.bob, w.carol))
		if err != nil {
			t.Fatal(err)
		}
		if m.Mine == nil || m.Mine.UserID != w.alice.ID {
			t.Errorf("the sender's copy carries key %+v, want its own", m.Mine)
		}
		if _, err := f.svc.Message(ctx, w.dave.User, m.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("a non-member reads a message: %v", err)
		}
		if _, err := f.svc.Message(ctx, w.carol.User, m.ID); err != nil {
			t.Errorf("a member reads a message: %v", err)
		}
		if err := f.svc.DeleteMessage(ctx, w.carol.User, m.ID); !errors.Is(err, models.ErrForbidden) {
			t.Errorf("a member deletes another's message: %v", err)
		}
		// Receipts only for one's own keys: a reader who holds no key of a
		// message marks nothing and publishes nothing.
		mark := f.bk.mark()
		if n, err := f.svc.MarkRead(ctx, w.dave.User, []string{m.ID}); err != nil || n != 0 {
			t.Errorf("a non-member marks %d read (%v), want 0", n, err)
		}
		if got := f.bk.since(mark, broker.Receipt); len(got) != 0 {
			t.Errorf("a non-member's markRead published %v", got)
		}
		if n, err := f.svc.MarkRead(ctx, w.carol.User, []string{m.ID}); err != nil || n != 1 {
			t.Errorf("a member marks %d read (%v), want 1", n, err)
		}
		want := []string{w.alice.ID, w.bob.ID, w.carol.ID}
		slices.Sort(want)
		if got := f.bk.since(mark, broker.Receipt); len(got) != 1 || !slices.Equal(got[0], want) {
			t.Errorf("the receipt went to %v, want one event to %v", got, want)
		}
	})
}

func TestOnlineOnlyForContacts(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		w := f.world(t)
		mark := f.bk.mark()
		f.svc.Connect(ctx, w.alice.ID)
		tests := []struct {
			name   string
			viewer *models.User
			want   bool
		}{
			{"herself", w.alice.User, true},
			{"a room member", w.carol.User, true},
			{"a stranger", w.dave.User, false},
			{"nobody signed in", nil, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				on, err := f.svc.Online(ctx, tt.viewer, w.alice.ID)
				if err != nil || on != tt.want {
					t.Errorf("online = %v (%v), want %v", on, err, tt.want)
				}
			})
		}
		want := []string{w.bob.ID, w.carol.ID}
		slices.Sort(want)
		if got := f.bk.since(mark, broker.Presence); len(got) != 1 || !slices.Equal(got[0], want) {
			t.Errorf("coming online went to %v, want %v", got, want)
		}
		f.svc.Disconnect(ctx, w.alice.ID)
		if on, _ := f.svc.Online(ctx, w.carol.User, w.alice.ID); on {
			t.Error("online after the last socket closed")
		}
	})
}

func TestPublishingReachesTheRightAudience(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		sorted := func(us ...*user) []string {
			ids := make([]string, len(us))
			for i, u := range us {
				ids[i] = u.ID
			}
			slices.Sort(ids)
			return ids
		}
		tests := []struct {
			name string
			kind broker.Kind
			do   func(t *testing.T, w *world) error
			want func(w *world) [][]string // the audience of each event
		}{
			{"typing in a room reaches the others", broker.Typing,
				func(t *testing.T, w *world) error { return f.svc.SetTyping(ctx, w.alice.User, &w.room.ID, nil, true) },
				func(w *world) [][]string { return [][]string{sorted(w.bob, w.carol)} }},
			{"typing to a stranger reaches nobody", broker.Typing,
				func(t *testing.T, w *world) error { return f.svc.SetTyping(ctx, w.alice.User, nil, &w.dave.ID, true) },
				func(w *world) [][]string { return nil }},
			{"typing to a room mate directly reaches only her", broker.Typing,
				func(t *testing.T, w *world) error { return f.svc.SetTyping(ctx, w.alice.User, nil, &w.carol.ID, true) },
				func(w *world) [][]string { return [][]string{sorted(w.carol)} }},
			{"a room message reaches every member", broker.MessageAdded,
				func(t *testing.T, w *world) error {
					_, err := f.svc.SendMessage(ctx, w.bob.User, seal(t, w.bob, &w.room.ID, nil, w.alice, w.bob, w.carol))
					return err
				},
				func(w *world) [][]string { return [][]string{sorted(w.alice, w.bob, w.carol)} }},
			{"a direct message reaches both", broker.MessageAdded,
				func(t *testing.T, w *world) error {
					_, err := f.svc.SendMessage(ctx, w.alice.User, seal(t, w.alice, nil, &w.dave.ID, w.alice, w.dave))
					return err
				},
				func(w *world) [][]string { return [][]string{sorted(w.alice, w.dave)} }},
			{"a rename reaches every member", broker.RoomChanged,
				func(t *testing.T, w *world) error {
					_, err := f.svc.RenameRoom(ctx, w.alice.User, w.room.ID, "renamed")
					return err
				},
				func(w *world) [][]string { return [][]string{sorted(w.alice, w.bob, w.carol)} }},
			{"a removal reaches the removed too", broker.RoomChanged,
				func(t *testing.T, w *world) error {
					_, err := f.svc.RemoveMember(ctx, w.alice.User, w.room.ID, w.carol.ID)
					return err
				},
				func(w *world) [][]string { return [][]string{sorted(w.alice, w.bob, w.carol)} }},
			{"a new room tells each added member once", broker.RoomChanged,
				func(t *testing.T, w *world) error {
					_, err := f.svc.CreateRoom(ctx, w.dave.User, models.CreateRoomInput{Name: "new", MemberIds: []string{w.alice.ID, w.bob.ID}})
					return err
				},
				func(w *world) [][]string {
					a, b := sorted(w.alice), sorted(w.bob)
					out := [][]string{a, b}
					slices.SortFunc(out, func(x, y []string) int { return compare(x[0], y[0]) })
					return out
				}},
			{"a key rotation reaches room mates and direct partners once each", broker.KeyChanged,
				func(t *testing.T, w *world) error {
					// dave shares a direct conversation with alice; bob
					// shares a second one with her as well as the room.
					for _, to := range []*user{w.dave, w.bob} {
						if _, err := f.svc.SendMessage(ctx, w.alice.User, seal(t, w.alice, nil, &to.ID, w.alice, to)); err != nil {
							return err
						}
					}
					return f.rotate(ctx, w.alice)
				},
				func(w *world) [][]string { return [][]string{sorted(w.bob, w.carol, w.dave)} }},
			{"a key rotation of someone alone reaches nobody", broker.KeyChanged,
				func(t *testing.T, w *world) error {
					return f.rotate(ctx, w.dave)
				},
				func(w *world) [][]string { return nil }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				w := f.world(t)
				mark := f.bk.mark()
				if err := tt.do(t, w); err != nil {
					t.Fatal(err)
				}
				got := f.bk.since(mark, tt.kind)
				slices.SortFunc(got, func(x, y []string) int { return compare(x[0], y[0]) })
				if want := tt.want(w); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("audiences %v, want %v", got, want)
				}
			})
		}
	})
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestSubscriptionFiltersRecheckMembership(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		w := f.world(t)
		m, err := f.svc.SendMessage(ctx, w.alice.User, seal(t, w.alice, &w.room.ID, nil, w.alice, w.bob, w.carol))
		if err != nil {
			t.Fatal(err)
		}
		ev := &broker.Event{Kind: broker.MessageAdded, Message: m}
		if got, ok := f.svc.AddedMessage(ctx, ev, w.carol.ID, nil); !ok || got.Mine == nil || got.Mine.UserID != w.carol.ID {
			t.Fatalf("a member's copy: %v %+v", ok, got)
		}
		other := uuid.NewString()
		if _, ok := f.svc.AddedMessage(ctx, ev, w.carol.ID, &other); ok {
			t.Error("an event of another room passed a room filter")
		}
		// Carol leaves; an event published before reaches her no more.
		if _, err := f.svc.RemoveMember(ctx, w.carol.User, w.room.ID, w.carol.ID); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.svc.AddedMessage(ctx, ev, w.carol.ID, nil); ok {
			t.Error("a former member still receives the room's messages")
		}
		typing := &broker.Event{Kind: broker.Typing, Typing: &models.TypingEvent{UserID: w.alice.ID, RoomID: &w.room.ID, IsTyping: true}}
		if _, ok := f.svc.TypingNotice(ctx, typing, w.carol.ID, nil); ok {
			t.Error("a former member still sees typing")
		}
		if _, ok := f.svc.TypingNotice(ctx, typing, w.bob.ID, nil); !ok {
			t.Error("a member misses typing")
		}
	})
}

func TestRoomCap(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		w := f.world(t)
		pair := false
		room, err := f.svc.CreateRoom(ctx, w.alice.User, models.CreateRoomInput{Name: "pair", IsGroup: &pair, MemberIds: []string{w.bob.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.JoinRoom(ctx, w.carol.User, room.Code); !errors.Is(err, models.ErrConflict) {
			t.Errorf("a third joins a room that is not a group: %v", err)
		}
		if _, err := f.svc.AddMember(ctx, w.alice.User, room.ID, w.carol.ID); !errors.Is(err, models.ErrConflict) {
			t.Errorf("a third is added to a room that is not a group: %v", err)
		}
		if _, err := f.svc.CreateRoom(ctx, w.alice.User, models.CreateRoomInput{Name: "trio", IsGroup: &pair, MemberIds: []string{w.bob.ID, w.carol.ID}}); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("a room that is not a group made for three: %v", err)
		}
	})
}

// A membership change on one instance reaches the caches of another through
// the broker; on its own instance at once.
func TestCacheInvalidation(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		authn := auth.New(store, auth.Config{BcryptCost: 4})
		defer authn.Close()
		other := chat.New(chat.Deps{Store: store, Sessions: authn, Broker: f.bk, Presence: presence.NewMemory()})
		defer other.Close()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); other.RunInvalidations(runCtx) }()
		defer func() { stop(); <-done }()
		waitSubscribers(t, f.bk.Memory, 1)

		w := f.world(t)
		if !f.svc.IsMember(ctx, w.room.ID, w.carol.ID) || !other.IsMember(ctx, w.room.ID, w.carol.ID) {
			t.Fatal("carol is not a member")
		}
		if _, err := f.svc.RemoveMember(ctx, w.alice.User, w.room.ID, w.carol.ID); err != nil {
			t.Fatal(err)
		}
		if f.svc.IsMember(ctx, w.room.ID, w.carol.ID) {
			t.Error("this instance still thinks carol a member")
		}
		// Bounded well below the cache's 5 s TTL, or expiry would pass the
		// test without any invalidation.
		eventually(t, 2*time.Second, "the other instance forgets carol", func() bool { return !other.IsMember(ctx, w.room.ID, w.carol.ID) })

		// A logout anywhere ends the session's sockets everywhere.
		ended := make(chan struct{})
		untrack := other.TrackSocket(w.bob.token, func() { close(ended) })
		defer untrack()
		if err := f.svc.Logout(ctx, w.bob.token); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("the other instance kept the revoked session's socket")
		}
	})
}

// eventually polls cond until it holds or within has passed.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitSubscribers(t *testing.T, m *broker.Memory, n int) {
	t.Helper()
	eventually(t, 10*time.Second, "subscribers", func() bool { return m.Subscribers() >= n })
}

// legacy makes an account as it was before version 2 (no identity key) and
// signs it in.
func (f *fixture) legacy(t *testing.T, name string) *user {
	t.Helper()
	name = fmt.Sprintf("%s%d", name, f.n.Add(1))
	_, kp := qchattest.CreateLegacyUser(t, f.store, name)
	p, err := f.svc.Login(context.Background(), name, "password-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return &user{User: p.User, token: p.Token, key: kp}
}
