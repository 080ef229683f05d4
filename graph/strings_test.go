package graph

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/99designs/gqlgen/graphql"
)

func marshalBoth(s string) (ours, gqlgens []byte) {
	var a, b bytes.Buffer
	MarshalString(s).MarshalGQL(&a)
	graphql.MarshalString(s).MarshalGQL(&b)
	return a.Bytes(), b.Bytes()
}

// MarshalString writes exactly what gqlgen's does, for every byte in every
// position, valid UTF-8 or not.
func TestMarshalStringAsGqlgen(t *testing.T) {
	cases := []string{"", "plain", `"quoted"`, `back\slash`, "tab\tcr\rnl\n", "\x00\x01\x1f\x7f", "é€😀", "\xff\xfe invalid \xc3", "a\"b\\c\u2028d"}
	for c := range 256 {
		for _, tmpl := range []string{"x", "ab_cd", "é_"} {
			b := []byte(tmpl)
			b[len(b)-1] = byte(c)
			cases = append(cases, string(b), string(b)+"tail")
		}
	}
	for _, s := range cases {
		if ours, theirs := marshalBoth(s); !bytes.Equal(ours, theirs) {
			t.Errorf("%q: wrote %q, gqlgen %q", s, ours, theirs)
		}
	}
}

func FuzzMarshalString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\"\\\xff€")
	f.Fuzz(func(t *testing.T, s string) {
		if ours, theirs := marshalBoth(s); !bytes.Equal(ours, theirs) {
			t.Errorf("%q: wrote %q, gqlgen %q", s, ours, theirs)
		}
	})
}

// BenchmarkMarshalString writes an ML-DSA-65 signature's base64, the
// longest string of a signed message.
func BenchmarkMarshalString(b *testing.B) {
	p := make([]byte, 3309)
	_, _ = rand.Read(p)
	s := base64.StdEncoding.EncodeToString(p)
	var buf bytes.Buffer
	for _, m := range []struct {
		name string
		f    func(string) graphql.Marshaler
	}{{"gqlgen", graphql.MarshalString}, {"ours", MarshalString}} {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				buf.Reset()
				m.f(s).MarshalGQL(&buf)
			}
		})
	}
}
