package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vikstrous/dataloadgen"

	"github.com/qchat/qchat/internal/chat"
)

// loaders returns the domain's loaders of the current response.
func (r *Resolver) loaders(ctx context.Context) *chat.Loaders { return r.chat.Loaders(ctx) }

// lookup converts a loader miss into nil without an error.
func lookup[K comparable, V any](ctx context.Context, l *dataloadgen.Loader[K, *V], key K) (*V, error) {
	return chat.Lookup(ctx, l, key)
}

// LoaderExtension gives every GraphQL response fresh loaders. It works per
// response rather than per request so that each event of a long-lived
// subscription sees current data instead of what the socket first cached.
func (r *Resolver) LoaderExtension() graphql.HandlerExtension { return loaderExtension{r.chat} }

type loaderExtension struct{ chat *chat.Service }

func (loaderExtension) ExtensionName() string                   { return "Loaders" }
func (loaderExtension) Validate(graphql.ExecutableSchema) error { return nil }
func (e loaderExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	return next(e.chat.WithLoaders(ctx))
}
