package models

import (
	"errors"
	"fmt"

	"github.com/qchat/qchat/internal/apierr"
)

// Domain errors. The store turns driver errors into these, the domain returns
// them, and the edges alone map them to transports (the GraphQL error
// presenter to extensions.code). They are the contract's kinds
// (internal/apierr), so that one error type serves every layer.
var (
	ErrNotFound        = apierr.ErrNotFound
	ErrForbidden       = apierr.ErrForbidden
	ErrConflict        = apierr.ErrConflict
	ErrInvalid         = apierr.ErrInvalid
	ErrUnauthenticated = apierr.ErrUnauthenticated
)

// Error is a domain error with a client-facing message and optional extensions
// (for example the missing user ids of an envelope); errors.Is(err,
// ErrInvalid) holds for an Error of code BAD_USER_INPUT.
type Error = apierr.Error

// Invalid reports bad input with a message that names what is wrong.
func Invalid(format string, args ...any) error {
	return &Error{Code: apierr.CodeBadUserInput, Message: fmt.Sprintf(format, args...)}
}

// InvalidField reports bad input in one field, naming it in extensions.field.
func InvalidField(field, message string) error {
	return &Error{Code: apierr.CodeBadUserInput, Message: message, Extensions: map[string]any{"field": field}}
}

// NotFound reports a missing (or hidden) object.
func NotFound(what string) error {
	return &Error{Code: apierr.CodeNotFound, Message: what + " not found"}
}

// Forbidden reports an action the caller may not take.
func Forbidden(format string, args ...any) error {
	return &Error{Code: apierr.CodeForbidden, Message: fmt.Sprintf(format, args...)}
}

// Conflict reports a clash with existing state.
func Conflict(format string, args ...any) error {
	return &Error{Code: apierr.CodeConflict, Message: fmt.Sprintf(format, args...)}
}

// Unauthenticated reports a missing or refused identity.
func Unauthenticated(message string) error {
	return &Error{Code: apierr.CodeUnauthenticated, Message: message}
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
