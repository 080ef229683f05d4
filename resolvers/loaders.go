package resolvers

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vikstrous/dataloadgen"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/presence"
	"github.com/qchat/qchat/models"
)

// Loaders batch the lookups of one response so that a page of 50 messages costs
// one query for senders, one for keys, and so on, never one per row.
type Loaders struct {
	Users        *dataloadgen.Loader[string, *models.User]
	Keys         *dataloadgen.Loader[string, *models.PublicKey]
	Rooms        *dataloadgen.Loader[string, *models.Room]
	Members      *dataloadgen.Loader[string, []*models.RoomMember]
	RecipientKey *dataloadgen.Loader[db.MessageUser, *models.RecipientKey]
	Documents    *dataloadgen.Loader[string, *models.Document]
	DocumentKey  *dataloadgen.Loader[db.MessageUser, *models.DocumentKey]
	// Online batches presence lookups: one round trip for a member list
	// when the tracker is shared.
	Online *dataloadgen.Loader[string, bool]
}

// batchWait is short: gqlgen starts sibling field resolvers together, so a
// batch fills within microseconds and a long wait only adds latency.
const batchWait = 200 * time.Microsecond

func newLoaders(s *db.Store, p presence.Tracker) *Loaders {
	opt := dataloadgen.WithWait(batchWait)
	return &Loaders{
		Users: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*models.User, error) {
			us, err := s.UsersByIDs(ctx, ids)
			return index(us, func(u *models.User) string { return u.ID }), err
		}, opt),
		Keys: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*models.PublicKey, error) {
			ks, err := s.KeysByIDs(ctx, ids)
			return index(ks, func(k *models.PublicKey) string { return k.ID }), err
		}, opt),
		Rooms: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*models.Room, error) {
			rs, err := s.RoomsByIDs(ctx, ids)
			return index(rs, func(r *models.Room) string { return r.ID }), err
		}, opt),
		Members: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string][]*models.RoomMember, error) {
			ms, err := s.MembersOfRooms(ctx, ids)
			out := make(map[string][]*models.RoomMember, len(ids))
			for _, id := range ids {
				out[id] = []*models.RoomMember{}
			}
			for _, m := range ms {
				out[m.RoomID] = append(out[m.RoomID], m)
			}
			return out, err
		}, opt),
		RecipientKey: dataloadgen.NewMappedLoader(func(ctx context.Context, pairs []db.MessageUser) (map[db.MessageUser]*models.RecipientKey, error) {
			ks, err := s.RecipientKeys(ctx, pairs)
			return index(ks, func(k *models.RecipientKey) db.MessageUser {
				return db.MessageUser{MessageID: k.MessageID, UserID: k.UserID}
			}), err
		}, opt),
		Documents: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*models.Document, error) {
			ds, err := s.DocumentsByIDs(ctx, ids)
			return index(ds, func(d *models.Document) string { return d.ID }), err
		}, opt),
		Online: dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([]bool, []error) {
			on, err := p.Online(ctx, ids)
			out := make([]bool, len(ids))
			for i, id := range ids {
				out[i] = on[id]
			}
			if err != nil {
				return out, []error{err}
			}
			return out, nil
		}, opt),
		DocumentKey: dataloadgen.NewMappedLoader(func(ctx context.Context, pairs []db.MessageUser) (map[db.MessageUser]*models.DocumentKey, error) {
			ks, err := s.DocumentKeys(ctx, pairs)
			return index(ks, func(k *models.DocumentKey) db.MessageUser {
				return db.MessageUser{MessageID: k.DocumentID, UserID: k.UserID}
			}), err
		}, opt),
	}
}

func index[K comparable, V any](vs []V, key func(V) K) map[K]V {
	out := make(map[K]V, len(vs))
	for _, v := range vs {
		out[key(v)] = v
	}
	return out
}

type loadersKey struct{}

// loaders returns the loaders of the current response.
func (r *Resolver) loaders(ctx context.Context) *Loaders {
	if l, ok := ctx.Value(loadersKey{}).(*Loaders); ok {
		return l
	}
	return newLoaders(r.store, r.presence)
}

// LoaderExtension gives every GraphQL response fresh loaders. It works per
// response rather than per request so that each event of a long-lived
// subscription sees current data instead of what the socket first cached.
func (r *Resolver) LoaderExtension() graphql.HandlerExtension {
	return loaderExtension{r.store, r.presence}
}

type loaderExtension struct {
	store    *db.Store
	presence presence.Tracker
}

func (loaderExtension) ExtensionName() string                   { return "Loaders" }
func (loaderExtension) Validate(graphql.ExecutableSchema) error { return nil }
func (e loaderExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	return next(context.WithValue(ctx, loadersKey{}, newLoaders(e.store, e.presence)))
}

// lookup converts a loader miss into nil without an error.
func lookup[K comparable, V any](ctx context.Context, l *dataloadgen.Loader[K, *V], key K) (*V, error) {
	v, err := l.Load(ctx, key)
	if err != nil {
		if isMissing(err) {
			return nil, nil
		}
		return nil, err
	}
	return v, nil
}
