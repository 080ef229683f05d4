package graph

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
)

// decodeStd is the POST transport's decode before the fast path, and its
// fallback.
func decodeStd(body []byte) (*graphql.RawParams, error) {
	p := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return p, dec.Decode(p)
}

// checkSameDecode fails when decodeParams accepts body and decodes it to
// anything but what encoding/json gives; it returns whether it accepted.
func checkSameDecode(t *testing.T, body []byte) bool {
	t.Helper()
	var fast graphql.RawParams
	if !decodeParams(body, &fast) {
		return false
	}
	std, err := decodeStd(body)
	if err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", body, err)
	}
	if !reflect.DeepEqual(&fast, std) {
		t.Fatalf("decoded %q differently:\nfast %#v\nstd  %#v", body, fast, *std)
	}
	return true
}

var paramBodies = []struct {
	body string
	fast bool // whether the fast path decodes it (else encoding/json does)
}{
	{`{"query":"{ me { id } }"}`, true},
	{` {"query":"mutation($in: SendMessageInput!) { sendMessage(input: $in) { id } }","variables":{"in":{"id":"a","keys":[{"userId":"u","kemCiphertext":"QUJD+/=="}],"n":-1.5e+3,"ok":true,"no":false,"z":null,"e":{},"a":[]}}}`, true},
	{`{"query":"q","operationName":"Op","variables":null,"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}`, true},
	{`{"query":null,"operationName":null,"extensions":null}`, true},
	{`{}`, true},
	{"\t\r\n{ \"query\" : \"q\" , \"variables\" : { \"a\" : [ 1 , 2 ] } }", true},
	{`{"query":"q"} trailing bytes are not read`, true},
	{`{"query":"q"}{"query":"r"}`, true},
	{`{"unknown":{"deep":[1,"x",null]},"query":"q"}`, true},
	{`{"variables":{"a":1,"a":2}}`, true},
	{`{"query":"héllo ✓"}`, true},
	{`{"variables":{"n":0,"m":-0,"big":123456789012345678901234567890,"f":0.5,"e":1E5}}`, true},
	// Left to encoding/json: errors, and what it decodes its own way.
	{``, false},
	{`null`, false},
	{`[]`, false},
	{`"q"`, false},
	{`{"query":"q"`, false},
	{`{"query":"q",}`, false},
	{`{"query":1}`, false},
	{`{"query":"mutation {\n  a\t\"b\" \\ \/ \b\f\r \u00e9 \ud83d\ude00 \u003c\n}"}`, true},
	{`{"query":"\ud800 lone surrogate, \udc00 another"}`, true},
	{`{"variables":{"k\u0041":"v\"w"}}`, true},
	{`{"query":"a\x"}`, false},
	{`{"query":"a\u00"}`, false},
	{`{"query":"a\`, false},
	{"{\"query\":\"a\x01\"}", false},
	{"{\"query\":\"\xff\"}", false},
	{`{"Query":"q"}`, false},
	{`{"VARIABLES":{}}`, false},
	{`{"variableſ":{}}`, false},
	{`{"query":"a","query":"b"}`, false},
	{`{"variables":{"a":1},"variables":{"b":2}}`, false},
	{`{"variables":[]}`, false},
	{`{"variables":{"n":01}}`, false},
	{`{"variables":{"n":1.}}`, false},
	{`{"variables":{"n":.5}}`, false},
	{`{"variables":{"n":1e}}`, false},
	{`{"variables":{"n":-}}`, false},
	{`{"variables":{"n":+1}}`, false},
	{`{"variables":{"t":tru}}`, false},
	{`{"variables":{"t":nul}}`, false},
	{`{"variables":{"a":[1,]}}`, false},
	{`{"variables":{"a" 1}}`, false},
	{"\ufeff{}", false},
	// Long strings, read eight bytes at a time, with what ends a plain run
	// at every offset within a word.
	{`{"query":"` + strings.Repeat("QUJD+/==", 40) + `","variables":{"k":"` + strings.Repeat("x", 17) + `\n` + strings.Repeat("y", 9) + `"}}`, true},
	{`{"query":"` + strings.Repeat("a", 13) + `é` + strings.Repeat("b", 21) + `"}`, true},
	{`{"query":"` + strings.Repeat("a", 11) + "\x01" + strings.Repeat("b", 21) + `"}`, false},
	{`{"query":"` + strings.Repeat("a", 15) + "\xff" + strings.Repeat("b", 21) + `"}`, false},
	{`{"query":"` + strings.Repeat("a", 23), false},
	{`{"variables":` + strings.Repeat(`[`, 2000) + strings.Repeat(`]`, 2000) + `}`, false},
}

func TestDecodeParamsMatchesEncodingJSON(t *testing.T) {
	for _, tc := range paramBodies {
		t.Run(tc.body[:min(len(tc.body), 40)], func(t *testing.T) {
			if got := checkSameDecode(t, []byte(tc.body)); got != tc.fast {
				t.Fatalf("fast path took it: %v, want %v", got, tc.fast)
			}
		})
	}
}

// TestPlainWord compares plainWord with the byte-by-byte rule on words that
// put each byte value at each position among plain and special neighbours,
// and on random words.
func TestPlainWord(t *testing.T) {
	plainByte := func(c byte) bool { return c != '"' && c != '\\' && c >= 0x20 && c < utf8.RuneSelf }
	check := func(b [8]byte) {
		want := true
		for _, c := range b {
			want = want && plainByte(c)
		}
		if got := plainWord(binary.LittleEndian.Uint64(b[:])); got != want {
			t.Fatalf("plainWord(%q) = %v, want %v", b[:], got, want)
		}
	}
	for _, fill := range []byte{'A', 0, '"', 0x1f, 0x20, 0x21, '\\', 0x7f, 0x80, 0xff, '/', '+', '='} {
		for pos := range 8 {
			for c := range 256 {
				var b [8]byte
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				check(b)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		check(b)
		for i := range b { // mostly plain, a few special
			if r.IntN(8) != 0 {
				b[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		check(b)
	}
}

func FuzzDecodeParams(f *testing.F) {
	for _, tc := range paramBodies {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSameDecode(t, body)
	})
}

func BenchmarkDecodeParams(b *testing.B) {
	key := strings.Repeat("QUJD", 363)
	body := []byte(`{"query":"mutation sendMessage($in: SendMessageInput!) {\n  sendMessage(input: $in) {\n    id\n  }\n}\n","variables":{"in":{"id":"0192f0c4-6f52-7c1a-9d7e-1a2b3c4d5e6f","recipientId":"0192f0c4-6f52-7c1a-9d7e-1a2b3c4d5e60","ciphertext":"` + key[:200] + `","nonce":"AAAAAAAAAAAAAAAA","keys":[{"userId":"u1","keyId":"k1","kemCiphertext":"` + key + `","wrappedKey":"` + key[:56] + `"},{"userId":"u2","keyId":"k2","kemCiphertext":"` + key + `","wrappedKey":"` + key[:56] + `"}]}}}`)
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeStd(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p graphql.RawParams
			if !decodeParams(body, &p) {
				b.Fatal("not decoded")
			}
		}
	})
}
