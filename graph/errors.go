package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/middleware"
	"github.com/qchat/qchat/internal/reqctx"
)

// errPanic marks a recovered panic for the presenter.
var errPanic = errors.New("panic")

// ErrorPresenter is the one place where errors become what the client sees:
// domain errors get their contract code and message; anything unknown is logged
// in full under the request id and reaches the client only as
// INTERNAL_SERVER_ERROR with that id.
func ErrorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, err error) *gqlerror.Error {
		gerr := graphql.DefaultErrorPresenter(ctx, err)
		if errors.Is(err, apierr.ErrUnauthenticated) {
			// Unauthorized access attempts are security events (failed
			// logins are logged by the login resolver itself).
			if p := gerr.Path.String(); p != "login" {
				log.WarnContext(ctx, "security: unauthenticated", "event", "unauthenticated", "path", p,
					"ip", reqctx.ClientIP(ctx))
			}
		}
		if ae, ok := apierr.From(err); ok {
			gerr.Message = ae.Message
			gerr.Extensions = map[string]any{"code": ae.Code}
			for k, v := range ae.Extensions {
				gerr.Extensions[k] = v
			}
			// The HTTP status is the edge's choice: GraphQL answers 200
			// whatever its errors, except a rate limit, which answers
			// like every other limit: 429 with its headers. (Websockets
			// have no status; SetStatus does nothing there.)
			if ae.Code == apierr.CodeRateLimited {
				middleware.SetStatus(ctx, http.StatusTooManyRequests, ae.Header)
			}
			return gerr
		}
		// gqlgen's own errors (parse, validation, argument coercion) already carry
		// a code and a message that is safe to show.
		if _, ok := gerr.Extensions["code"]; ok && !errors.Is(err, errPanic) {
			return gerr
		}
		// gqlgen's own protocol errors (an undecodable body, a bad multipart
		// map) are gqlerrors that wrap nothing: the client's fault.
		var ge *gqlerror.Error
		if errors.As(err, &ge) && ge.Err == nil && !errors.Is(err, errPanic) {
			gerr.Extensions = map[string]any{"code": apierr.CodeBadUserInput}
			return gerr
		}
		if errors.Is(err, context.Canceled) {
			gerr.Message = "request cancelled"
			gerr.Extensions = map[string]any{"code": apierr.CodeInternal}
			return gerr
		}
		rid := reqctx.RequestID(ctx)
		if !errors.Is(err, errPanic) { // panics were logged with their stack already
			log.ErrorContext(ctx, "internal error", "path", gerr.Path.String(), "err", err)
		}
		return &gqlerror.Error{
			Message:    "internal server error",
			Path:       gerr.Path,
			Locations:  gerr.Locations,
			Extensions: map[string]any{"code": apierr.CodeInternal, "requestId": rid},
		}
	}
}

// Recover turns a resolver panic into an INTERNAL_SERVER_ERROR and logs it with
// its stack and the request id.
func Recover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver",
			"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return fmt.Errorf("%w: %v", errPanic, p)
	}
}

// AsGQL renders an error of the contract for a response written outside the
// presenter (cost limits, refusals on a websocket).
func AsGQL(e *apierr.Error) *gqlerror.Error {
	ext := map[string]any{"code": e.Code}
	for k, v := range e.Extensions {
		ext[k] = v
	}
	return &gqlerror.Error{Message: e.Message, Extensions: ext}
}
