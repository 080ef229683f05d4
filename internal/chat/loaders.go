package chat

import (
	"context"
	"sync"
	"time"

	"github.com/vikstrous/dataloadgen"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/models"
)

// Loaders batch the lookups of one response so that a page of 50 messages costs
// one query for senders, one for keys, and so on, never one per row. Each
// loader is made on first use: most responses (me, a send) need one or none.
type Loaders struct {
	store    Store
	presence Presence

	mu          sync.Mutex
	users       *dataloadgen.Loader[string, *models.User]
	keys        *dataloadgen.Loader[string, *models.PublicKey]
	rooms       *dataloadgen.Loader[string, *models.Room]
	members     *dataloadgen.Loader[string, []*models.RoomMember]
	documents   *dataloadgen.Loader[string, *models.Document]
	documentKey *dataloadgen.Loader[db.MessageUser, *models.DocumentKey]
	online      *dataloadgen.Loader[string, bool]
	sharing     *dataloadgen.Loader[userPair, bool]
	identities  *dataloadgen.Loader[string, *models.IdentityKey]
}

// userPair is a viewer and another user.
type userPair struct{ viewer, other string }

// batchWait is short: gqlgen starts sibling field resolvers together, so a
// batch fills within microseconds and a long wait only adds latency.
const batchWait = 200 * time.Microsecond

var loaderWait = dataloadgen.WithWait(batchWait)

func newLoaders(s Store, p Presence) *Loaders { return &Loaders{store: s, presence: p} }

// lazy returns *slot, making it with mk under the loaders' lock first.
func lazy[T any](l *Loaders, slot **T, mk func() *T) *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if *slot == nil {
		*slot = mk()
	}
	return *slot
}

// Users loads users by id.
func (l *Loaders) Users() *dataloadgen.Loader[string, *models.User] {
	return lazy(l, &l.users, func() *dataloadgen.Loader[string, *models.User] {
		return dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*models.User, error) {
			us, err := l.store.UsersByIDs(ctx, ids)
			return index(us, func(u *models.User) string { return u.ID }), err
		}, loaderWait)
	})
}

// Keys loads public keys by id.
func (l *Loaders) Keys() *dataloadgen.Loader[string, *models.PublicKey] {
	return lazy(l, &l.keys, func() *dataloadgen.Loader[string, *models.PublicKey] {
		return dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*models.PublicKey, error) {
			ks, err := l.store.KeysByIDs(ctx, ids)
			return index(ks, func(k *models.PublicKey) string { return k.ID }), err
		}, loaderWait)
	})
}

// IdentityKeys loads users' current identity keys by user id (missing for
// an account without one).
func (l *Loaders) IdentityKeys() *dataloadgen.Loader[string, *models.IdentityKey] {
	return lazy(l, &l.identities, func() *dataloadgen.Loader[string, *models.IdentityKey] {
		return dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*models.IdentityKey, error) {
			iks, err := l.store.CurrentIdentityKeys(ctx, ids)
			return index(iks, func(k *models.IdentityKey) string { return k.UserID }), err
		}, loaderWait)
	})
}

// Rooms loads rooms by id.
func (l *Loaders) Rooms() *dataloadgen.Loader[string, *models.Room] {
	return lazy(l, &l.rooms, func() *dataloadgen.Loader[string, *models.Room] {
		return dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*models.Room, error) {
			rs, err := l.store.RoomsByIDs(ctx, ids)
			return index(rs, func(r *models.Room) string { return r.ID }), err
		}, loaderWait)
	})
}

// Members loads the members of rooms by room id.
func (l *Loaders) Members() *dataloadgen.Loader[string, []*models.RoomMember] {
	return lazy(l, &l.members, func() *dataloadgen.Loader[string, []*models.RoomMember] {
		return dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string][]*models.RoomMember, error) {
			ms, err := l.store.MembersOfRooms(ctx, ids)
			out := make(map[string][]*models.RoomMember, len(ids))
			for _, id := range ids {
				out[id] = []*models.RoomMember{}
			}
			for _, m := range ms {
				out[m.RoomID] = append(out[m.RoomID], m)
			}
			return out, err
		}, loaderWait)
	})
}

// Documents loads documents by id.
func (l *Loaders) Documents() *dataloadgen.Loader[string, *models.Document] {
	return lazy(l, &l.documents, func() *dataloadgen.Loader[string, *models.Document] {
		return dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*models.Document, error) {
			ds, err := l.store.DocumentsByIDs(ctx, ids)
			return index(ds, func(d *models.Document) string { return d.ID }), err
		}, loaderWait)
	})
}

// DocumentKey loads the caller's recipient key of documents.
func (l *Loaders) DocumentKey() *dataloadgen.Loader[db.MessageUser, *models.DocumentKey] {
	return lazy(l, &l.documentKey, func() *dataloadgen.Loader[db.MessageUser, *models.DocumentKey] {
		return dataloadgen.NewMappedLoader(func(ctx context.Context, pairs []db.MessageUser) (map[db.MessageUser]*models.DocumentKey, error) {
			ks, err := l.store.DocumentKeys(ctx, pairs)
			return index(ks, func(k *models.DocumentKey) db.MessageUser {
				return db.MessageUser{MessageID: k.DocumentID, UserID: k.UserID}
			}), err
		}, loaderWait)
	})
}

// Online loads presence by user id.
func (l *Loaders) Online() *dataloadgen.Loader[string, bool] {
	return lazy(l, &l.online, func() *dataloadgen.Loader[string, bool] {
		return dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([]bool, []error) {
			on, err := l.presence.Online(ctx, ids)
			out := make([]bool, len(ids))
			for i, id := range ids {
				out[i] = on[id]
			}
			if err != nil {
				return out, []error{err}
			}
			return out, nil
		}, loaderWait)
	})
}

// Sharing loads whether a viewer shares a room or a direct conversation with
// other users: what decides whether User.online may tell the truth. A member
// list of 1,000 asks in one query.
func (l *Loaders) Sharing() *dataloadgen.Loader[userPair, bool] {
	return lazy(l, &l.sharing, func() *dataloadgen.Loader[userPair, bool] {
		return dataloadgen.NewLoader(func(ctx context.Context, pairs []userPair) ([]bool, []error) {
			// One viewer per response in practice; grouped all the same.
			byViewer := map[string][]string{}
			for _, p := range pairs {
				byViewer[p.viewer] = append(byViewer[p.viewer], p.other)
			}
			shared := make(map[string]map[string]bool, len(byViewer))
			for viewer, others := range byViewer {
				got, err := l.store.SharingConversation(ctx, viewer, others)
				if err != nil {
					return make([]bool, len(pairs)), []error{err}
				}
				shared[viewer] = got
			}
			out := make([]bool, len(pairs))
			for i, p := range pairs {
				out[i] = shared[p.viewer][p.other]
			}
			return out, nil
		}, loaderWait)
	})
}

func index[K comparable, V any](vs []V, key func(V) K) map[K]V {
	out := make(map[K]V, len(vs))
	for _, v := range vs {
		out[key(v)] = v
	}
	return out
}

type loadersKey struct{}

// Loaders returns the loaders of the current response, or fresh ones outside
// a response that has its own.
func (s *Service) Loaders(ctx context.Context) *Loaders {
	if l, ok := ctx.Value(loadersKey{}).(*Loaders); ok {
		return l
	}
	return newLoaders(s.store, s.presence)
}

// WithLoaders gives ctx fresh loaders: the GraphQL edge calls it per response
// rather than per request so that each event of a long-lived subscription
// sees current data instead of what the socket first cached.
func (s *Service) WithLoaders(ctx context.Context) context.Context {
	return context.WithValue(ctx, loadersKey{}, newLoaders(s.store, s.presence))
}

// Lookup converts a loader miss into nil without an error.
func Lookup[K comparable, V any](ctx context.Context, l *dataloadgen.Loader[K, *V], key K) (*V, error) {
	v, err := l.Load(ctx, key)
	if err != nil {
		if IsMissing(err) {
			return nil, nil
		}
		return nil, err
	}
	return v, nil
}
