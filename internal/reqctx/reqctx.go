// Package reqctx carries the values that identify a request (its id, the
// client's IP and scheme, the signed-in user's id) in its context. It imports
// nothing of QChat, so every layer can read them and the logger can add them
// to each record made with the request's context.
package reqctx

import "context"

type key int

const (
	requestIDKey key = iota
	clientKey
	userIDKey
)

type client struct{ ip, scheme string }

// WithRequestID stores the request id in ctx.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithClient stores the client's IP and scheme ("http" or "https") in ctx.
func WithClient(ctx context.Context, ip, scheme string) context.Context {
	return context.WithValue(ctx, clientKey, client{ip: ip, scheme: scheme})
}

// ClientIP returns the client's IP, or "" when it was not resolved.
func ClientIP(ctx context.Context) string {
	c, _ := ctx.Value(clientKey).(client)
	return c.ip
}

// Scheme returns "http" or "https", or "" when it was not resolved.
func Scheme(ctx context.Context) string {
	c, _ := ctx.Value(clientKey).(client)
	return c.scheme
}

// WithUserID stores the id of the signed-in user in ctx.
func WithUserID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, userIDKey, id)
}

// UserID returns the signed-in user's id, or "" for an anonymous request.
func UserID(ctx context.Context) string {
	id, _ := ctx.Value(userIDKey).(string)
	return id
}
