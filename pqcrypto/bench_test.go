package pqcrypto

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/google/uuid"
)

func benchRecipients(b *testing.B, alg Algorithm, n int) ([]Recipient, []*KeyPair) {
	b.Helper()
	rs := make([]Recipient, n)
	kps := make([]*KeyPair, n)
	for i := range rs {
		kp, err := GenerateKeyPair(alg, nil)
		if err != nil {
			b.Fatal(err)
		}
		kps[i] = kp
		rs[i] = Recipient{UserID: uuid.NewString(), KeyID: uuid.NewString(), Algorithm: alg, PublicKey: kp.PublicKey}
	}
	return rs, kps
}

// BenchmarkSeal seals a 1 KiB message for 1, 10 and 100 recipients: the cost a
// sender pays, dominated by one KEM encapsulation per recipient.
func BenchmarkSeal(b *testing.B) {
	for _, alg := range []Algorithm{MLKEM768, XWing} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/recipients=%d", alg, n), func(b *testing.B) {
				rs, _ := benchRecipients(b, alg, n)
				h := Header{Kind: KindMessage, ObjectID: uuid.NewString(), SenderID: rs[0].UserID, ConversationID: uuid.NewString()}
				pt := make([]byte, 1024)
				_, _ = rand.Read(pt)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Seal(nil, h, pt, rs); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOpen opens one recipient's copy: what each reader pays, whatever
// the number of recipients.
func BenchmarkOpen(b *testing.B) {
	for _, alg := range []Algorithm{MLKEM768, XWing} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/recipients=%d", alg, n), func(b *testing.B) {
				rs, kps := benchRecipients(b, alg, n)
				h := Header{Kind: KindMessage, ObjectID: uuid.NewString(), SenderID: rs[0].UserID, ConversationID: uuid.NewString()}
				env, err := Seal(nil, h, make([]byte, 1024), rs)
				if err != nil {
					b.Fatal(err)
				}
				last := n - 1
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Open(h, env, rs[last].UserID, kps[last], rs[last].KeyID); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkValidateWire is the server's whole per-message crypto cost: decoding
// and checking an envelope it cannot open.
func BenchmarkValidateWire(b *testing.B) {
	for _, n := range []int{2, 10, 50} {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			rs, _ := benchRecipients(b, MLKEM768, n)
			h := Header{Kind: KindMessage, ObjectID: uuid.NewString(), SenderID: rs[0].UserID, ConversationID: uuid.NewString()}
			env, err := Seal(nil, h, make([]byte, 256), rs)
			if err != nil {
				b.Fatal(err)
			}
			w := env.Wire()
			algOf := func(string) (Algorithm, bool) { return MLKEM768, true }
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ValidateWire(w, algOf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
