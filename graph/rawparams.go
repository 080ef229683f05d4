package graph

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
)

// decodeParams is the POST body's fast path: it decodes body into p exactly as
// a json.Decoder with UseNumber would (variables and extensions as
// map[string]any, []any, string, json.Number, bool and nil), without
// reflection and scanning each byte once. Profiles of sendMessage showed
// encoding/json's decode at ~4.5% of the server's CPU, most of it scanning
// and unquoting the base64 of the recipient keys twice.
//
// It reports false for anything it does not decode the same way, and then
// the caller decodes with encoding/json as before, so that every error (and
// every oddity: a null body, keys matched case-insensitively, a field given
// twice, a string with escapes or invalid UTF-8) is encoding/json's own.
// What it accepts, encoding/json accepts with the same result
// (TestDecodeParamsMatchesEncodingJSON and its fuzz target check both).
func decodeParams(body []byte, p *graphql.RawParams) bool {
	d := paramDecoder{b: body}
	d.space()
	if !d.next('{') {
		return false
	}
	var seen [4]bool
	d.space()
	if d.next('}') {
		return true
	}
	for {
		d.space()
		key, ok := d.plainString()
		if !ok {
			return false
		}
		d.space()
		if !d.next(':') {
			return false
		}
		d.space()
		field := -1
		switch key {
		case "query":
			field = 0
		case "operationName":
			field = 1
		case "variables":
			field = 2
		case "extensions":
			field = 3
		default:
			// encoding/json matches keys to fields case-insensitively, with
			// Unicode folding ("ſ" is an s): such keys are left to it.
			if !plainKey(key) {
				return false
			}
		}
		if field >= 0 {
			if seen[field] {
				return false // a second value merges into maps: leave it to encoding/json
			}
			seen[field] = true
		}
		switch field {
		case 0, 1:
			if d.peek() == 'n' {
				if !d.literal("null") { // null leaves a string unchanged
					return false
				}
				break
			}
			s, ok := d.plainString()
			if !ok {
				return false
			}
			if field == 0 {
				p.Query = s
			} else {
				p.OperationName = s
			}
		case 2, 3:
			var m map[string]any
			if d.peek() == 'n' {
				if !d.literal("null") {
					return false
				}
			} else {
				if m, ok = d.object(0); !ok {
					return false
				}
			}
			if field == 2 {
				p.Variables = m
			} else {
				p.Extensions = m
			}
		default:
			if _, ok := d.value(0); !ok {
				return false
			}
		}
		d.space()
		if d.next(',') {
			continue
		}
		// What follows the object is not read, as json.Decoder.Decode
		// does not read it either.
		return d.next('}')
	}
}

// maxParamDepth bounds the nesting this path decodes (encoding/json's
// scanner allows 10,000 levels); deeper documents go to encoding/json.
const maxParamDepth = 1000

type paramDecoder struct {
	b []byte
	i int
}

func (d *paramDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *paramDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *paramDecoder) next(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *paramDecoder) literal(s string) bool {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

// plainString reads a string. One without escapes whose bytes are valid
// UTF-8 is its own value; see unescape for the others.
// Control characters and invalid UTF-8 are left to encoding/json's decode.
func (d *paramDecoder) plainString() (string, bool) {
	if !d.next('"') {
		return "", false
	}
	start := d.i
	ascii, escaped := true, false
	for d.i < len(d.b) {
		// Eight bytes at a time while none of them needs a look: a
		// sendMessage body is ~95% base64 strings (1.4 KB per recipient
		// key), which this skips at a word per step instead of a byte.
		for d.i+8 <= len(d.b) && plainWord(binary.LittleEndian.Uint64(d.b[d.i:])) {
			d.i += 8
		}
		if d.i >= len(d.b) {
			break
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			raw := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			if escaped {
				return unescape(d.b[start-1 : d.i])
			}
			return string(raw), true
		case c == '\\':
			escaped = true
			d.i++ // the escaped byte is never the end of the string
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return "", false
}

// plainWord reports whether none of w's eight bytes is one plainString
// stops at: '"', '\\', a control character (< 0x20) or a byte of a multi-byte
// UTF-8 sequence (>= 0x80). The tests are the exact "has a zero byte" and
// "has a byte less than n" bit tricks: a borrow into a byte's top bit only
// starts at a byte that is zero (or less than n), so no byte is flagged
// falsely once the top bits of w's own bytes are masked out.
func plainWord(w uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	quote := w ^ ('"' * ones)
	slash := w ^ ('\\' * ones)
	special := (quote - ones) &^ quote
	special |= (slash - ones) &^ slash
	special |= (w - 0x20*ones) &^ w
	return (special|w)&highs == 0
}

// unescape unquotes quoted, a string with escapes in valid UTF-8. The
// one-character escapes (genqlient's and Apollo's query texts are full of
// \n) are replaced here; a string with a \u escape is unquoted by
// encoding/json itself, so that surrogates and replacement characters come
// out as they would.
func unescape(quoted []byte) (string, bool) {
	raw := quoted[1 : len(quoted)-1]
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++ // plainString saw a byte after every backslash
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			var s string
			if err := json.Unmarshal(quoted, &s); err != nil {
				return "", false
			}
			return s, true
		default:
			return "", false
		}
	}
	return string(out), true
}

func (d *paramDecoder) value(depth int) (any, bool) {
	switch c := d.peek(); {
	case c == '"':
		return d.plainString()
	case c == '{':
		m, ok := d.object(depth)
		return m, ok
	case c == '[':
		return d.array(depth)
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, false
}

func (d *paramDecoder) object(depth int) (map[string]any, bool) {
	if depth >= maxParamDepth || !d.next('{') {
		return nil, false
	}
	m := map[string]any{}
	d.space()
	if d.next('}') {
		return m, true
	}
	for {
		d.space()
		k, ok := d.plainString()
		if !ok {
			return nil, false
		}
		d.space()
		if !d.next(':') {
			return nil, false
		}
		d.space()
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v // a repeated key: the last one wins, as in encoding/json
		d.space()
		if d.next(',') {
			continue
		}
		return m, d.next('}')
	}
}

func (d *paramDecoder) array(depth int) ([]any, bool) {
	if depth >= maxParamDepth || !d.next('[') {
		return nil, false
	}
	a := []any{}
	d.space()
	if d.next(']') {
		return a, true
	}
	for {
		d.space()
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		d.space()
		if d.next(',') {
			continue
		}
		return a, d.next(']')
	}
}

// number reads a JSON number and keeps its text, as UseNumber does.
func (d *paramDecoder) number() (json.Number, bool) {
	start := d.i
	d.next('-')
	switch c := d.peek(); {
	case c == '0':
		d.i++
	case c >= '1' && c <= '9':
		d.digits()
	default:
		return "", false
	}
	if d.next('.') {
		if !d.digits() {
			return "", false
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		if !d.digits() {
			return "", false
		}
	}
	return json.Number(d.b[start:d.i]), true
}

func (d *paramDecoder) digits() bool {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}

// plainKey reports a key that encoding/json would not match to any field of
// RawParams: ASCII, and not one of their names in another case.
func plainKey(key string) bool {
	for i := range len(key) {
		if key[i] >= utf8.RuneSelf {
			return false
		}
	}
	for _, f := range [...]string{"query", "operationName", "variables", "extensions"} {
		if strings.EqualFold(key, f) {
			return false
		}
	}
	return true
}
