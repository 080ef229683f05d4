package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/broker"
)

// slowConsumers makes a websocket subscription that the broker drops for
// falling behind end with an `error` message whose extensions.code is
// SLOW_CONSUMER, instead of a `complete` the client cannot tell from a
// normal end. Only that subscription ends; the socket and its other
// subscriptions stay. graphql-ws and Apollo Client hand the error to the
// subscription's error callback, and the Go SDK reports it as an *Error with
// apierr.CodeSlowConsumer, so a client knows to resubscribe and catch up through
// history.
type slowConsumers struct{}

var (
	_ graphql.HandlerExtension     = slowConsumers{}
	_ graphql.OperationInterceptor = slowConsumers{}
)

func (slowConsumers) ExtensionName() string                   { return "SlowConsumers" }
func (slowConsumers) Validate(graphql.ExecutableSchema) error { return nil }

func (slowConsumers) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	// The websocket transport is the one that keeps a subscription's errors
	// (AddSubscriptionError needs its context); SocketState marks its
	// requests.
	oc := graphql.GetOperationContext(ctx)
	if SocketStateFrom(ctx) == nil || oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	errCtx := ctx
	ctx = broker.OnDrop(ctx, func() {
		// Read by the transport only after the subscription's channel has
		// closed, which happens after this call.
		addSubscriptionError(errCtx, &gqlerror.Error{
			Message:    "subscription ended: the client fell too far behind; resubscribe and catch up through history",
			Extensions: map[string]any{"code": apierr.CodeSlowConsumer},
		})
	})
	return next(ctx)
}
