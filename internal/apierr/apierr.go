// Package apierr is the API's error contract: the codes a client reads in
// extensions.code and the one error type that carries them. It imports
// nothing of the project, so that every layer (the domain, the GraphQL edge,
// the HTTP middleware, the rate limiter) maps its errors from the same place.
package apierr

import (
	"errors"
	"net/http"
)

// The codes of the contract (extensions.code). The Go SDK repeats them
// (client/client.go), because a public SDK must not import the server; a
// test there proves the two lists equal.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeConflict        = "CONFLICT"
	CodeRateLimited     = "RATE_LIMITED"
	CodeComplexityLimit = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
	// CodeSlowConsumer ends a subscription that fell too far behind.
	CodeSlowConsumer = "SLOW_CONSUMER"
)

// Codes lists every code of the contract.
var Codes = []string{
	CodeUnauthenticated, CodeForbidden, CodeNotFound, CodeBadUserInput, CodeConflict,
	CodeRateLimited, CodeComplexityLimit, CodeInternal, CodeSlowConsumer,
}

// Kind is a sentinel for one code: code compares with errors.Is(err,
// ErrNotFound) whether err is the sentinel itself (wrapped with %w) or an
// *Error of the same code.
type Kind struct{ code, msg string }

func (k *Kind) Error() string { return k.msg }

// Code is the contract code of the kind.
func (k *Kind) Code() string { return k.code }

// The kinds the domain returns; models re-exports them under their usual
// names (models.ErrNotFound...).
var (
	ErrNotFound        = &Kind{CodeNotFound, "not found"}
	ErrForbidden       = &Kind{CodeForbidden, "forbidden"}
	ErrConflict        = &Kind{CodeConflict, "conflict"}
	ErrInvalid         = &Kind{CodeBadUserInput, "invalid input"}
	ErrUnauthenticated = &Kind{CodeUnauthenticated, "authentication required"}
)

// Error is an error the client may see: a code, a message and optional
// extensions (the missing user ids of an envelope, a retryAfter). The domain
// returns it for its own refusals, the edges for theirs (rate and cost
// limits); only the edge decides the transport's status from Code.
type Error struct {
	Code       string
	Message    string
	Extensions map[string]any
	// Header holds headers an HTTP answer carries with the error
	// (Retry-After and the RateLimit fields of a rate limit); nil for most.
	Header http.Header
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) true for an *Error of code NOT_FOUND.
func (e *Error) Is(target error) bool {
	k, ok := target.(*Kind)
	return ok && k.code == e.Code
}

// New builds an *Error.
func New(code, message string, ext map[string]any) *Error {
	return &Error{Code: code, Message: message, Extensions: ext}
}

// From returns the contract code, message and extensions of err if it is (or
// wraps) an *Error or a Kind; ok is false for any other error, which the
// client must see only as INTERNAL_SERVER_ERROR.
func From(err error) (e *Error, ok bool) {
	if errors.As(err, &e) {
		return e, true
	}
	var k *Kind
	if errors.As(err, &k) {
		return &Error{Code: k.code, Message: k.msg}, true
	}
	return nil, false
}

// Body is the GraphQL-shaped body of an error answered outside GraphQL (an
// HTTP rejection, a REST route), so a client reads every error the same way.
func Body(message string, ext map[string]any) map[string]any {
	return map[string]any{"errors": []any{map[string]any{"message": message, "extensions": ext}}}
}
