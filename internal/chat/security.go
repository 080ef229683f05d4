package chat

import (
	"context"
	"log/slog"

	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/clientip"
	"github.com/qchat/qchat/internal/middleware"
)

// Security writes one security-event line: what happened, to whom, from where.
// It never carries a password, token or key.
func (s *Service) Security(ctx context.Context, level slog.Level, event string, attrs ...any) {
	base := []any{"event", event, "ip", clientip.From(ctx), "request_id", middleware.RequestIDFrom(ctx)}
	if u := userID(ctx); u != "" {
		base = append(base, "user_id", u)
	}
	s.log.Log(ctx, level, "security: "+event, append(base, attrs...)...)
}

func userID(ctx context.Context) string {
	if u := auth.UserFrom(ctx); u != nil {
		return u.ID
	}
	return ""
}
