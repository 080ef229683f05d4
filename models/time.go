package models

import (
	"database/sql/driver"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Time is a timestamp stored as integer microseconds since the Unix epoch. Both
// dialects then sort and compare it identically, with sub-millisecond precision
// (bun writes SQLite times as text with a variable number of fraction digits,
// which does not sort).
type Time struct{ time.Time }

// Now is the current time truncated to what the database keeps.
func Now() Time { return Time{time.Now().UTC().Truncate(time.Microsecond)} }

// TimeFromMicros converts a stored value back to a Time.
func TimeFromMicros(us int64) Time { return Time{time.UnixMicro(us).UTC()} }

// Micros is the stored form.
func (t Time) Micros() int64 { return t.UnixMicro() }

// Value implements driver.Valuer.
func (t Time) Value() (driver.Value, error) {
	if t.IsZero() {
		return nil, nil
	}
	return t.UnixMicro(), nil
}

// Scan implements sql.Scanner.
func (t *Time) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = Time{}
	case int64:
		*t = TimeFromMicros(v)
	case []byte:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("scan time: %w", err)
		}
		*t = TimeFromMicros(n)
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("scan time: %w", err)
		}
		*t = TimeFromMicros(n)
	default:
		return fmt.Errorf("scan time: unsupported type %T", src)
	}
	return nil
}

// MarshalGQL writes RFC 3339 with microseconds.
func (t Time) MarshalGQL(w io.Writer) {
	b := make([]byte, 0, 40)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	_, _ = w.Write(b)
}

// UnmarshalGQL accepts an RFC 3339 string.
func (t *Time) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("time must be an RFC 3339 string")
	}
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time must be RFC 3339: %w", err)
	}
	*t = Time{p.UTC().Truncate(time.Microsecond)}
	return nil
}
