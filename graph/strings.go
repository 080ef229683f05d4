package graph

import (
	"io"

	"github.com/99designs/gqlgen/graphql"
)

// The String scalar (bound in gqlgen.yml) is gqlgen's with a faster writer.
// Most of the bytes QChat writes are strings of base64 (ciphertexts, keys,
// signatures: a signed message is ~6 KB of them), and gqlgen's writer decodes
// every rune of every string to look for the few bytes JSON escapes: 3% of
// the server's CPU under qchat-load's dm scenario. writeString looks at
// bytes, which gives the same answer (a multi-byte UTF-8 sequence holds no
// byte below 0x80, and an invalid one is copied as it is either way), and
// writes a string with nothing to escape in one piece.

// MarshalString writes s as gqlgen's graphql.MarshalString does.
func MarshalString(s string) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { writeString(w, s) })
}

// UnmarshalString is gqlgen's graphql.UnmarshalString.
func UnmarshalString(v any) (string, error) { return graphql.UnmarshalString(v) }

// escaped marks the bytes JSON needs escaped in a string: control
// characters, the quote and the backslash.
var escaped = func() (t [256]bool) {
	for i := range 0x20 {
		t[i] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

const hexDigits = "0123456789ABCDEF"

// writeString writes s as a JSON string, byte for byte as gqlgen's
// writeQuotedString: \t, \r, \n, \\ and \" for those, \u00XX (upper-case
// hex) for the other control characters, every other byte as it is.
func writeString(w io.Writer, s string) {
	_, _ = io.WriteString(w, `"`)
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !escaped[c] {
			continue
		}
		_, _ = io.WriteString(w, s[start:i])
		switch c {
		case '\t':
			_, _ = io.WriteString(w, `\t`)
		case '\r':
			_, _ = io.WriteString(w, `\r`)
		case '\n':
			_, _ = io.WriteString(w, `\n`)
		case '\\':
			_, _ = io.WriteString(w, `\\`)
		case '"':
			_, _ = io.WriteString(w, `\"`)
		default:
			_, _ = w.Write([]byte{'\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]})
		}
		start = i + 1
	}
	_, _ = io.WriteString(w, s[start:])
	_, _ = io.WriteString(w, `"`)
}
