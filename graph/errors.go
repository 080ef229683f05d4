package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/internal/reqctx"
	"github.com/qchat/qchat/models"
)

// Error codes of the contract (extensions.code).
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeConflict        = "CONFLICT"
	CodeRateLimited     = "RATE_LIMITED"
	CodeComplexity      = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
	CodeSlowConsumer    = "SLOW_CONSUMER" // a subscription ended because its client fell too far behind
)

var kindCodes = []struct {
	kind error
	code string
}{
	{models.ErrUnauthenticated, CodeUnauthenticated},
	{models.ErrForbidden, CodeForbidden},
	{models.ErrNotFound, CodeNotFound},
	{models.ErrInvalid, CodeBadUserInput},
	{models.ErrConflict, CodeConflict},
}

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
		if errors.Is(err, models.ErrUnauthenticated) {
			// Unauthorized access attempts are security events (failed
			// logins are logged by the login resolver itself).
			if p := gerr.Path.String(); p != "login" {
				log.WarnContext(ctx, "security: unauthenticated", "event", "unauthenticated", "path", p,
					"ip", reqctx.ClientIP(ctx))
			}
		}
		var de *models.Error
		if errors.As(err, &de) {
			for _, kc := range kindCodes {
				if errors.Is(de.Kind, kc.kind) {
					gerr.Message = de.Message
					gerr.Extensions = map[string]any{"code": kc.code}
					for k, v := range de.Extensions {
						gerr.Extensions[k] = v
					}
					return gerr
				}
			}
		}
		for _, kc := range kindCodes {
			if errors.Is(err, kc.kind) {
				gerr.Message = kc.kind.Error()
				gerr.Extensions = map[string]any{"code": kc.code}
				return gerr
			}
		}
		var coded *CodedError
		if errors.As(err, &coded) {
			gerr.Message = coded.msg
			gerr.Extensions = map[string]any{"code": coded.code}
			for k, v := range coded.ext {
				gerr.Extensions[k] = v
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
			gerr.Extensions = map[string]any{"code": CodeBadUserInput}
			return gerr
		}
		if errors.Is(err, context.Canceled) {
			gerr.Message = "request cancelled"
			gerr.Extensions = map[string]any{"code": CodeInternal}
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
			Extensions: map[string]any{"code": CodeInternal, "requestId": rid},
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

// CodedError is an error with a contract code, for layers outside the domain
// (rate limits, cost limits).
type CodedError struct {
	code, msg string
	ext       map[string]any
}

// NewCodedError builds a CodedError.
func NewCodedError(code, msg string, ext map[string]any) *CodedError {
	return &CodedError{code: code, msg: msg, ext: ext}
}

func (e *CodedError) Error() string { return e.msg }

// Code is the contract code.
func (e *CodedError) Code() string { return e.code }

// AsGQL renders the error for a response.
func (e *CodedError) AsGQL() *gqlerror.Error {
	ext := map[string]any{"code": e.code}
	for k, v := range e.ext {
		ext[k] = v
	}
	return &gqlerror.Error{Message: e.msg, Extensions: ext}
}
