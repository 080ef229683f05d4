package pqcrypto

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
)

// ctrReader is the deterministic randomness of the test vectors, simple
// enough to rebuild in any language: the concatenation of
// SHA-256(UTF-8(label) || uint32be(i)) for i = 0, 1, 2, ...
type ctrReader struct {
	label string
	ctr   uint32
	buf   []byte
}

const ctrConstruction = "concatenation of SHA-256(UTF-8(label) || uint32 big-endian counter) for counter = 0, 1, 2, ..."

func newCtrReader(label string) *ctrReader { return &ctrReader{label: label} }

func (r *ctrReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.buf) == 0 {
			h := sha256.New()
			h.Write([]byte(r.label))
			h.Write(binary.BigEndian.AppendUint32(nil, r.ctr))
			r.ctr++
			r.buf = h.Sum(nil)
		}
		c := copy(p[n:], r.buf)
		r.buf = r.buf[c:]
		n += c
	}
	return n, nil
}

// testUUID gives distinct canonical ids that are easy to tell apart in
// failure messages: testUUID(0xa, 3) = "0000000a-0000-4000-8000-000000000003".
func testUUID(kind, n int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, n)
}

const (
	uuidUser   = 0xa
	uuidKey    = 0xb
	uuidObject = 0xc
	uuidRoom   = 0xd
)

func testHeader() Header {
	return Header{
		Kind:           KindMessage,
		ObjectID:       testUUID(uuidObject, 1),
		SenderID:       testUUID(uuidUser, 0),
		ConversationID: testUUID(uuidRoom, 1),
	}
}

// member is a recipient together with the key pair that opens for them.
type member struct {
	Recipient
	kp *KeyPair
}

func testMember(t testing.TB, n int, alg Algorithm) member {
	t.Helper()
	kp, err := GenerateKeyPair(alg, newCtrReader(fmt.Sprintf("member %d %s", n, alg)))
	if err != nil {
		t.Fatal(err)
	}
	return member{
		Recipient: Recipient{UserID: testUUID(uuidUser, n), KeyID: testUUID(uuidKey, n), Algorithm: alg, PublicKey: kp.PublicKey},
		kp:        kp,
	}
}

func recipientsOf(ms []member) []Recipient {
	rs := make([]Recipient, len(ms))
	for i, m := range ms {
		rs[i] = m.Recipient
	}
	return rs
}
