package chat

import (
	"context"
	"log/slog"

	"github.com/qchat/qchat/internal/reqctx"
)

// Security writes one security-event line: what happened, to whom, from where.
// It never carries a password, token or key. The logger's request-context
// handler adds request_id, client_ip and user_id; ip stays for the alert
// rules that read it (docs/SECURITY.md).
func (s *Service) Security(ctx context.Context, level slog.Level, event string, attrs ...any) {
	base := []any{"event", event, "ip", reqctx.ClientIP(ctx)}
	s.log.Log(ctx, level, "security: "+event, append(base, attrs...)...)
}
