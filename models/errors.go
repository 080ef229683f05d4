package models

import (
	"errors"
	"fmt"
)

// Domain errors. The store turns driver errors into these, resolvers return them,
// and the GraphQL error presenter alone maps them to the contract's codes.
var (
	ErrNotFound        = errors.New("not found")
	ErrForbidden       = errors.New("forbidden")
	ErrConflict        = errors.New("conflict")
	ErrInvalid         = errors.New("invalid input")
	ErrUnauthenticated = errors.New("authentication required")
)

// Error is a domain error with a client-facing message and optional extensions
// (for example the missing user ids of an envelope). Kind is one of the sentinels
// above so that errors.Is works across layers.
type Error struct {
	Kind       error
	Message    string
	Extensions map[string]any
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

// Invalid reports bad input with a message that names what is wrong.
func Invalid(format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

// NotFound reports a missing (or hidden) object.
func NotFound(what string) error {
	return &Error{Kind: ErrNotFound, Message: what + " not found"}
}

// Forbidden reports an action the caller may not take.
func Forbidden(format string, args ...any) error {
	return &Error{Kind: ErrForbidden, Message: fmt.Sprintf(format, args...)}
}

// Conflict reports a clash with existing state.
func Conflict(format string, args ...any) error {
	return &Error{Kind: ErrConflict, Message: fmt.Sprintf(format, args...)}
}

// Reason is a short, log-safe name for an error's kind.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrUnauthenticated):
		return "unauthenticated"
	}
	return "error"
}
