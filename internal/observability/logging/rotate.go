package logging

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// backupTimeFormat is the timestamp lumberjack puts in a rotated file's name
// (in UTC, since LocalTime is left false).
const backupTimeFormat = "2006-01-02T15-04-05.000"

// dailyFile is a lumberjack file that also rotates when the calendar day of
// the injected clock changes, and prunes old backups itself.
//
// Rotation is checked on write rather than by a timer goroutine: nothing to
// stop on Close, and a file never mixes two days' lines. A day without a
// single log line produces no empty file, which is fine.
//
// Pruning is done here, synchronously and by the injected clock, instead of
// with lumberjack's MaxAge: lumberjack reads the time from a package variable
// that cannot be injected and prunes in a background goroutine, so neither
// could be tested deterministically. Like lumberjack we decide a backup's age
// from the timestamp in its name (not its mtime, which copying or restoring
// a directory changes).
type dailyFile struct {
	lj     *lumberjack.Logger
	clock  func() time.Time
	maxAge time.Duration
	dir    string
	prefix string // "app-"
	ext    string // ".log"

	mu       sync.Mutex
	y, m, d  int // day of the lines in the current file
	pruneErr error
}

func newDailyFile(path string, maxAgeDays int, cfg Config) (*dailyFile, error) {
	size := cfg.MaxSizeMB
	if size <= 0 {
		size = 100
	}
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	f := &dailyFile{
		lj: &lumberjack.Logger{
			Filename: path,
			MaxSize:  size,
			Compress: cfg.Compress,
		},
		clock:  cfg.Clock,
		maxAge: time.Duration(maxAgeDays) * 24 * time.Hour,
		dir:    filepath.Dir(path),
		prefix: strings.TrimSuffix(base, ext) + "-",
		ext:    ext,
	}
	now := f.clock()
	// A file left by an earlier run belongs to the day it was last written:
	// if that is not today, the first write moves it aside.
	day := now
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		day = fi.ModTime().In(now.Location())
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("log file %q: %w", path, err)
	}
	f.y, f.m, f.d = dayOf(day)
	if err := f.prune(now); err != nil {
		return nil, err
	}
	return f, nil
}

func dayOf(t time.Time) (y, m, d int) {
	yy, mm, dd := t.Date()
	return yy, int(mm), dd
}

// Write implements io.Writer; slog handlers call it once per record.
func (f *dailyFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock()
	if y, m, d := dayOf(now); y != f.y || m != f.m || d != f.d {
		if err := f.lj.Rotate(); err != nil {
			return 0, fmt.Errorf("rotate %s: %w", f.lj.Filename, err)
		}
		f.y, f.m, f.d = y, m, d
		// A pruning failure (a permission problem, say) must not lose the
		// line being written; it is reported by Close.
		if err := f.prune(now); err != nil {
			f.pruneErr = err
		}
	}
	return f.lj.Write(p)
}

// Close closes the current file and reports a pruning failure, if any.
func (f *dailyFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.lj.Close(), f.pruneErr)
}

// prune removes backups older than maxAge at now.
func (f *dailyFile) prune(now time.Time) error {
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return fmt.Errorf("prune logs in %q: %w", f.dir, err)
	}
	cutoff := now.Add(-f.maxAge)
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		ts, ok := f.backupTime(e.Name())
		if !ok || !ts.Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(f.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("prune log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// backupTime parses app-2006-01-02T15-04-05.000.log[.gz]; other names, such
// as error.log's backups beside app.log's, do not parse and are left alone.
func (f *dailyFile) backupTime(name string) (time.Time, bool) {
	name = strings.TrimSuffix(name, ".gz")
	if !strings.HasPrefix(name, f.prefix) || !strings.HasSuffix(name, f.ext) {
		return time.Time{}, false
	}
	stamp := name[len(f.prefix) : len(name)-len(f.ext)]
	t, err := time.ParseInLocation(backupTimeFormat, stamp, time.UTC)
	return t, err == nil
}
