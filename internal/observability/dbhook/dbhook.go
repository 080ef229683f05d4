// Package dbhook logs slow and failed database queries through a bun query
// hook, without ever logging the values a query carries: they are users'
// data (message envelopes, password hashes, tokens).
package dbhook

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
)

// maxQueryLen bounds the logged query text; the shape of a query is clear
// well before that.
const maxQueryLen = 2000

// Hook is a bun.QueryHook.
type Hook struct {
	log  *slog.Logger
	slow time.Duration
	now  func() time.Time
}

var _ bun.QueryHook = (*Hook)(nil)

// New returns a hook that logs queries taking longer than slow at warn (slow
// <= 0 logs none) and failed queries at error; sql.ErrNoRows is not a
// failure. Add it with db.AddQueryHook.
func New(log *slog.Logger, slow time.Duration) *Hook {
	return &Hook{log: log, slow: slow, now: time.Now}
}

type startKey struct{}

// BeforeQuery implements bun.QueryHook. It notes the start on the hook's own
// clock (bun's StartTime uses time.Now, which tests cannot move).
func (h *Hook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return context.WithValue(ctx, startKey{}, h.now())
}

// AfterQuery implements bun.QueryHook.
func (h *Hook) AfterQuery(ctx context.Context, ev *bun.QueryEvent) {
	start, ok := ctx.Value(startKey{}).(time.Time)
	if !ok {
		start = ev.StartTime
	}
	d := h.now().Sub(start)
	failed := ev.Err != nil && !errors.Is(ev.Err, sql.ErrNoRows)
	slow := h.slow > 0 && d >= h.slow
	if !failed && !slow {
		return
	}
	attrs := []slog.Attr{
		slog.String("operation", ev.Operation()),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	}
	if t := table(ev); t != "" {
		attrs = append(attrs, slog.String("table", t))
	}
	// Query and QueryTemplate both have the values inlined for queries built
	// with bun's query builder (only raw queries keep their placeholders in
	// the template), so the text is always normalised.
	attrs = append(attrs, slog.String("query", Normalize(ev.QueryTemplate)))
	if failed {
		level := slog.LevelError
		if errors.Is(ev.Err, context.Canceled) {
			// The client went away; the query did not fail on its own.
			level = slog.LevelDebug
		}
		h.log.LogAttrs(ctx, level, "database query failed", append(attrs, errAttrs(ev.Err)...)...)
		return
	}
	h.log.LogAttrs(ctx, slog.LevelWarn, "slow database query", attrs...)
}

func table(ev *bun.QueryEvent) string {
	if q, ok := ev.IQuery.(interface{ GetTableName() string }); ok {
		return strings.Trim(q.GetTableName(), `"`+"`")
	}
	return ""
}

// Normalize replaces the literals of an SQL statement (strings, numbers,
// hex/blob and dollar-quoted strings) with "?", keeps identifiers and
// keywords, collapses whitespace and truncates the result.
func Normalize(q string) string {
	var b strings.Builder
	b.Grow(min(len(q), maxQueryLen))
	rs := []rune(q)
	space := false
	for i := 0; i < len(rs) && b.Len() < maxQueryLen; {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			space = true
			i++
			continue
		case r == '\'' || ((r == 'E' || r == 'e' || r == 'X' || r == 'x' || r == 'B' || r == 'b') &&
			i+1 < len(rs) && rs[i+1] == '\'' && !identChar(prev(rs, i))):
			// 'text', E'escaped', X'hex', B'bits': skip to the closing quote;
			// '' inside is an escaped quote, and in E'' strings so is \'.
			escapes := r != '\''
			if r != '\'' {
				i++
			}
			i = skipQuoted(rs, i+1, escapes)
			writeTok(&b, &space, "?")
		case r == '$' && dollarTag(rs, i) > 0:
			n := dollarTag(rs, i)
			i = skipDollarQuoted(rs, i+n, rs[i:i+n])
			writeTok(&b, &space, "?")
		case r == '$' && i+1 < len(rs) && unicode.IsDigit(rs[i+1]):
			// A $1 placeholder: no value in it.
			j := i + 1
			for j < len(rs) && unicode.IsDigit(rs[j]) {
				j++
			}
			writeTok(&b, &space, string(rs[i:j]))
			i = j
		case unicode.IsDigit(r) && !identChar(prev(rs, i)):
			for i < len(rs) && (identChar(rs[i]) || rs[i] == '.') {
				i++
			}
			writeTok(&b, &space, "?")
		case r == '"' || r == '`':
			// A quoted identifier is not data: keep it.
			j := i + 1
			for j < len(rs) && rs[j] != r {
				j++
			}
			j = min(j+1, len(rs))
			writeTok(&b, &space, string(rs[i:j]))
			i = j
		default:
			writeTok(&b, &space, string(r))
			i++
		}
	}
	out := b.String()
	if len(out) >= maxQueryLen {
		out = out[:maxQueryLen] + "…"
	}
	return out
}

func writeTok(b *strings.Builder, space *bool, s string) {
	if *space && b.Len() > 0 {
		b.WriteByte(' ')
	}
	*space = false
	b.WriteString(s)
}

func prev(rs []rune, i int) rune {
	if i == 0 {
		return ' '
	}
	return rs[i-1]
}

func identChar(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// skipQuoted returns the index after the quote closing a string that starts
// at i (just after its opening quote).
func skipQuoted(rs []rune, i int, backslashEscapes bool) int {
	for i < len(rs) {
		switch {
		case backslashEscapes && rs[i] == '\\' && i+1 < len(rs):
			i += 2
		case rs[i] == '\'' && i+1 < len(rs) && rs[i+1] == '\'':
			i += 2
		case rs[i] == '\'':
			return i + 1
		default:
			i++
		}
	}
	return i
}

// dollarTag returns the length of the PostgreSQL dollar-quote opener at i
// ($$ or $tag$), or 0 when $ starts something else (a $1 placeholder).
func dollarTag(rs []rune, i int) int {
	j := i + 1
	for j < len(rs) && (rs[j] == '_' || unicode.IsLetter(rs[j]) || (j > i+1 && unicode.IsDigit(rs[j]))) {
		j++
	}
	if j < len(rs) && rs[j] == '$' {
		return j + 1 - i
	}
	return 0
}

// skipDollarQuoted returns the index after the closing tag of a dollar-quoted
// string whose body starts at i.
func skipDollarQuoted(rs []rune, i int, tag []rune) int {
	for ; i+len(tag) <= len(rs); i++ {
		if slices.Equal(rs[i:i+len(tag)], tag) {
			return i + len(tag)
		}
	}
	return len(rs)
}

// errAttrs describes a driver error without the values it may quote: a
// PostgreSQL error's detail ("Key (username)=(bob) already exists") and the
// quoted parts of any message ("invalid input syntax for type uuid: \"x\"")
// can be user data.
func errAttrs(err error) []slog.Attr {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		attrs := []slog.Attr{slog.String("sqlstate", pg.Code), slog.String("err", scrubQuoted(pg.Message))}
		if pg.ConstraintName != "" {
			attrs = append(attrs, slog.String("constraint", pg.ConstraintName))
		}
		return attrs
	}
	return []slog.Attr{slog.String("err", scrubQuoted(err.Error()))}
}

// scrubQuoted replaces every '...' and "..." in an error message with ?.
func scrubQuoted(s string) string {
	var b strings.Builder
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
			b.WriteRune('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
