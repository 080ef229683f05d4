// Package logging builds QChat's slog.Logger: a console handler (colour text in
// development, JSON lines in production), optional daily-rotated application
// and error log files, a redaction safety net, and the per-request log line.
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"

	"github.com/qchat/qchat/internal/reqctx"
)

// Retention of the log files, in days (issue 5).
const (
	AppLogMaxAgeDays   = 14
	ErrorLogMaxAgeDays = 30
)

// File names inside Config.Dir. Backups are named by lumberjack:
// app-2006-01-02T15-04-05.000.log.
const (
	AppLogName   = "app.log"
	ErrorLogName = "error.log"
)

// Config says where and how much to log.
type Config struct {
	// Production selects JSON lines on the console; otherwise colourised text.
	Production bool
	// Level is error, warn, info or debug; empty means info.
	Level string
	// Dir (LOG_DIR) receives app.log and error.log; empty writes no files.
	Dir string
	// Stdout is the console; nil means os.Stdout.
	Stdout io.Writer
	// Clock decides when the files rotate; nil means time.Now.
	Clock func() time.Time
	// ForceColor colours development output even when Stdout is not a
	// terminal (e.g. under a process manager that renders ANSI);
	// NoColor turns colour off even on a terminal (NO_COLOR).
	ForceColor bool
	NoColor    bool
	// MaxSizeMB rotates a file early when it grows past this size within a
	// day; 0 means 100.
	MaxSizeMB int
	// Compress gzips rotated files.
	Compress bool
}

// ParseLevel maps error|warn|info|debug (any case) to a slog.Level; empty is
// info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "error":
		return slog.LevelError, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("log level %q: want error, warn, info or debug", s)
}

// New returns the logger and a Closer that flushes and closes the log files
// (a no-op when Dir is empty). Close it last, after the server has stopped.
func New(cfg Config) (*slog.Logger, io.Closer, error) {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}

	var console slog.Handler
	if cfg.Production {
		console = slog.NewJSONHandler(cfg.Stdout, &slog.HandlerOptions{Level: level, ReplaceAttr: Redact})
	} else {
		console = tint.NewTextHandler(cfg.Stdout, &tint.Options{
			Level:       level,
			ReplaceAttr: Redact,
			TimeFormat:  "15:04:05.000",
			NoColor:     cfg.NoColor || (!cfg.ForceColor && !isTerminal(cfg.Stdout)),
		})
	}
	if cfg.Dir == "" {
		return slog.New(RequestContext(console)), nopCloser{}, nil
	}

	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("create LOG_DIR %q: %w", cfg.Dir, err)
	}
	app, err := newDailyFile(filepath.Join(cfg.Dir, AppLogName), AppLogMaxAgeDays, cfg)
	if err != nil {
		return nil, nil, err
	}
	errLog, err := newDailyFile(filepath.Join(cfg.Dir, ErrorLogName), ErrorLogMaxAgeDays, cfg)
	if err != nil {
		_ = app.Close()
		return nil, nil, err
	}
	// Files are always JSON: they are read by tools more than by people.
	h := Fanout(
		console,
		slog.NewJSONHandler(app, &slog.HandlerOptions{Level: level, ReplaceAttr: Redact}),
		slog.NewJSONHandler(errLog, &slog.HandlerOptions{Level: slog.LevelError, ReplaceAttr: Redact}),
	)
	return slog.New(RequestContext(h)), closers{app, errLog}, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// redacted are attribute keys, compared after lower-casing and dropping '_',
// '-' and '.', whose values never reach a log. A key that ends with one of
// them (accessToken, new_password, set-cookie) is redacted too: this is a
// safety net for a careless log call, so it errs on the side of hiding.
var redacted = []string{"password", "token", "authorization", "secret", "secretkey", "seed", "plaintext", "cookie"}

// Redact is a slog ReplaceAttr function that replaces the value of a
// sensitive attribute with "[REDACTED]".
func Redact(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup || !sensitive(a.Key) {
		return a
	}
	return slog.String(a.Key, "[REDACTED]")
}

func sensitive(key string) bool {
	k := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(key))
	for _, s := range redacted {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// Fanout returns a handler that passes each record to every handler enabled
// for its level (console and files have different minimum levels).
func Fanout(hs ...slog.Handler) slog.Handler { return fanout(hs) }

type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			// Clone: a handler may keep or extend the record's attributes.
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

// RequestContext wraps h so that every record logged with a *Context method
// carries the request id, client IP and user id of ctx (from reqctx): every
// line of one request shares them without each call site having to pass
// them. A record already holding one of the keys keeps its own value, and a
// record without a request context gets none.
func RequestContext(h slog.Handler) slog.Handler { return requestContextHandler{Handler: h} }

type requestContextHandler struct {
	slog.Handler
	grouped bool // after WithGroup the keys would land inside the group
}

func (h requestContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.grouped {
		return h.Handler.Handle(ctx, r)
	}
	cloned := false
	for _, a := range [...]slog.Attr{
		slog.String("request_id", reqctx.RequestID(ctx)),
		slog.String("client_ip", reqctx.ClientIP(ctx)),
		slog.String("user_id", reqctx.UserID(ctx)),
	} {
		if a.Value.String() == "" || hasAttr(r, a.Key) {
			continue
		}
		if !cloned {
			// The caller may still hold r: add to a copy.
			r, cloned = r.Clone(), true
		}
		r.AddAttrs(a)
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestContextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestContextHandler{Handler: h.Handler.WithAttrs(as), grouped: h.grouped}
}

func (h requestContextHandler) WithGroup(name string) slog.Handler {
	return requestContextHandler{Handler: h.Handler.WithGroup(name), grouped: true}
}

func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
