package pqcrypto_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/qchat/qchat/pqcrypto"
)

const (
	aliceUID = "11111111-1111-4111-8111-111111111111"
	bobUID   = "22222222-2222-4222-8222-222222222222"
	carolUID = "33333333-3333-4333-8333-333333333333"
	otherID  = "eeeeeeee-0000-4000-8000-000000000009"
)

// signedFixture is an envelope from alice to bob and carol, sealed through
// the API with the vectors' keys, and bob's view of it.
type signedFixture struct {
	h      pqcrypto.SignedHeader
	env    *pqcrypto.SignedEnvelope
	keys   *v2Keys
	bobKey string // bob's KEM key id
}

func newSignedFixture(t testing.TB, h pqcrypto.SignedHeader, xwing bool) *signedFixture {
	t.Helper()
	v := loadV2Vectors(t)
	keys := loadV2Keys(t, v)
	suffix := "-ml_kem_768-key"
	if xwing {
		suffix = "-x_wing-key"
	}
	var rs []pqcrypto.Recipient
	for _, r := range []struct{ uid, name string }{{carolUID, "carol"}, {bobUID, "bob"}} {
		kp := keys.kem[r.name+suffix]
		rs = append(rs, pqcrypto.Recipient{UserID: r.uid, KeyID: r.name + suffix, Algorithm: kp.Algorithm, PublicKey: kp.PublicKey})
	}
	env, err := pqcrypto.SealSigned(nil, keys.identity["alice"], h, []byte("genuine text"), rs)
	if err != nil {
		t.Fatal(err)
	}
	return &signedFixture{h: h, env: env, keys: keys, bobKey: "bob" + suffix}
}

var (
	msgHeader = pqcrypto.SignedHeader{
		Kind: pqcrypto.KindMessage, ObjectID: "aaaaaaaa-0000-4000-8000-000000000001", SenderID: aliceUID,
		ConversationID: "cccccccc-0000-4000-8000-000000000001", AttachmentID: "dddddddd-0000-4000-8000-000000000001",
	}
	bareMsgHeader = pqcrypto.SignedHeader{
		Kind: pqcrypto.KindMessage, ObjectID: "aaaaaaaa-0000-4000-8000-000000000003", SenderID: aliceUID,
		ConversationID: "cccccccc-0000-4000-8000-000000000001",
	}
	docHeader = pqcrypto.SignedHeader{
		Kind: pqcrypto.KindDocument, ObjectID: "aaaaaaaa-0000-4000-8000-000000000002", SenderID: aliceUID,
		ConversationID: "cccccccc-0000-4000-8000-000000000002", Name: "Résumé (final).pdf", MimeType: "application/pdf",
	}
)

func cloneReceived(r *pqcrypto.ReceivedEnvelope) *pqcrypto.ReceivedEnvelope {
	c := *r
	c.Ciphertext, c.Nonce, c.Signature = bytes.Clone(r.Ciphertext), bytes.Clone(r.Nonce), bytes.Clone(r.Signature)
	c.MyKey.KEMCiphertext, c.MyKey.WrappedKey = bytes.Clone(r.MyKey.KEMCiphertext), bytes.Clone(r.MyKey.WrappedKey)
	c.KeyDigests = make([][]byte, len(r.KeyDigests))
	for i, d := range r.KeyDigests {
		c.KeyDigests[i] = bytes.Clone(d)
	}
	return &c
}

func cloneSigned(e *pqcrypto.SignedEnvelope) *pqcrypto.SignedEnvelope {
	c := *e
	c.Ciphertext, c.Nonce, c.Signature = bytes.Clone(e.Ciphertext), bytes.Clone(e.Nonce), bytes.Clone(e.Signature)
	c.Keys = slices.Clone(e.Keys)
	for i := range c.Keys {
		c.Keys[i].KEMCiphertext, c.Keys[i].WrappedKey = bytes.Clone(e.Keys[i].KEMCiphertext), bytes.Clone(e.Keys[i].WrappedKey)
	}
	return &c
}

func TestSealSignedRoundTrip(t *testing.T) {
	alice, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := pqcrypto.ParseIdentityKey(alice.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []pqcrypto.SignedHeader{msgHeader, bareMsgHeader, docHeader} {
		for _, alg := range []pqcrypto.Algorithm{pqcrypto.MLKEM768, pqcrypto.XWing} {
			t.Run(string(h.Kind)+"/"+h.ObjectID[35:]+"/"+string(alg), func(t *testing.T) {
				users := []string{carolUID, aliceUID, bobUID}
				var rs []pqcrypto.Recipient
				kps := map[string]*pqcrypto.KeyPair{}
				for _, uid := range users {
					kp, err := pqcrypto.GenerateKeyPair(alg, nil)
					if err != nil {
						t.Fatal(err)
					}
					kps[uid] = kp
					rs = append(rs, pqcrypto.Recipient{UserID: uid, KeyID: "key-of-" + uid[:8], Algorithm: alg, PublicKey: kp.PublicKey})
				}
				plaintext := []byte("hello 🔐 v2")
				env, err := pqcrypto.SealSigned(nil, alice, h, plaintext, rs)
				if err != nil {
					t.Fatal(err)
				}
				if len(env.Signature) != pqcrypto.SignatureSize {
					t.Fatalf("signature is %d bytes", len(env.Signature))
				}
				if err := pqcrypto.VerifyEnvelope(pinned, h, env); err != nil {
					t.Fatalf("VerifyEnvelope: %v", err)
				}
				// The wire form survives the server's checks and decoding.
				w := env.Wire()
				if _, err := pqcrypto.DecodeSignature(w.Signature); err != nil {
					t.Fatal(err)
				}
				for _, uid := range users { // the sender reads her own copy too
					r, ok := env.Received(uid)
					if !ok {
						t.Fatalf("%s is not a recipient", uid)
					}
					got, err := pqcrypto.OpenSigned(h, r, pinned, kps[uid])
					if err != nil || !bytes.Equal(got, plaintext) {
						t.Errorf("%s opens %q, %v", uid, got, err)
					}
				}
				if _, ok := env.Received(otherID); ok {
					t.Error("Received for a user who is no recipient")
				}
				// A version 2 envelope is not a version 1 envelope.
				if _, err := pqcrypto.Open(pqcrypto.Header{Kind: h.Kind, ObjectID: h.ObjectID, SenderID: h.SenderID, ConversationID: h.ConversationID},
					&env.Envelope, bobUID, kps[bobUID], "key-of-22222222"); !errors.Is(err, pqcrypto.ErrCannotOpen) {
					t.Errorf("v1 Open of a v2 envelope: %v", err)
				}
			})
		}
	}
}

// openView is everything a reader's OpenSigned depends on; a tampering case
// changes one part of it.
type openView struct {
	h      pqcrypto.SignedHeader
	r      *pqcrypto.ReceivedEnvelope
	sender *pqcrypto.IdentityPublicKey
}

// TestOpenSignedTamper changes, one at a time, every value the transcript
// covers as a reader receives it, and what the reader brings (the pinned
// key): each must make OpenSigned fail as a whole.
func TestOpenSignedTamper(t *testing.T) {
	fixtures := map[string]*signedFixture{
		"msg":      newSignedFixture(t, msgHeader, false),
		"bare msg": newSignedFixture(t, bareMsgHeader, false),
		"doc":      newSignedFixture(t, docHeader, true),
	}
	flip := func(b []byte, i int) { b[i%len(b)] ^= 0x01 }
	mine := func(v *openView) int { // index of bob's leaf in keyDigests
		return slices.IndexFunc(v.r.KeyDigests, func(d []byte) bool { return bytes.Equal(d, pqcrypto.KeyDigest(v.r.MyKey)) })
	}
	cases := []struct {
		name, fixture string
		mutate        func(v *openView)
	}{
		{"kind msg to doc", "bare msg", func(v *openView) { v.h.Kind = pqcrypto.KindDocument }},
		{"kind doc to msg", "doc", func(v *openView) { v.h.Kind, v.h.Name, v.h.MimeType = pqcrypto.KindMessage, "", "" }},
		{"oid", "msg", func(v *openView) { v.h.ObjectID = otherID }},
		{"sid", "msg", func(v *openView) { v.h.SenderID = carolUID }},
		{"cid", "msg", func(v *openView) { v.h.ConversationID = otherID }},
		{"attachmentId changed", "msg", func(v *openView) { v.h.AttachmentID = otherID }},
		{"attachmentId removed", "msg", func(v *openView) { v.h.AttachmentID = "" }},
		{"attachmentId added", "bare msg", func(v *openView) { v.h.AttachmentID = otherID }},
		{"name", "doc", func(v *openView) { v.h.Name = "Resume (final).pdf" }},
		{"name emptied", "doc", func(v *openView) { v.h.Name = "" }},
		{"mimeType", "doc", func(v *openView) { v.h.MimeType = "text/html" }},
		{"nonce", "msg", func(v *openView) { flip(v.r.Nonce, 3) }},
		{"ciphertext", "msg", func(v *openView) { flip(v.r.Ciphertext, 0) }},
		{"ciphertext tag", "doc", func(v *openView) { flip(v.r.Ciphertext, len(v.r.Ciphertext)-1) }},
		{"ciphertext truncated", "doc", func(v *openView) { v.r.Ciphertext = v.r.Ciphertext[:len(v.r.Ciphertext)-1] }},
		{"myKey userId", "msg", func(v *openView) { v.r.MyKey.UserID = carolUID }},
		{"myKey keyId", "msg", func(v *openView) { v.r.MyKey.KeyID = "carol-ml_kem_768-key" }},
		{"myKey kemCiphertext", "msg", func(v *openView) { flip(v.r.MyKey.KEMCiphertext, 17) }},
		{"myKey wrappedKey", "doc", func(v *openView) { flip(v.r.MyKey.WrappedKey, 5) }},
		{"keyDigests reordered", "msg", func(v *openView) { slices.Reverse(v.r.KeyDigests) }},
		{"keyDigests other leaf dropped", "msg", func(v *openView) {
			v.r.KeyDigests = slices.Delete(v.r.KeyDigests, 1-mine(v), 2-mine(v))
		}},
		{"keyDigests own leaf dropped", "doc", func(v *openView) { v.r.KeyDigests = slices.Delete(v.r.KeyDigests, mine(v), mine(v)+1) }},
		{"keyDigests leaf added", "msg", func(v *openView) { v.r.KeyDigests = append(v.r.KeyDigests, make([]byte, 32)) }},
		{"keyDigests own leaf twice", "msg", func(v *openView) { v.r.KeyDigests = append(v.r.KeyDigests, v.r.KeyDigests[mine(v)]) }},
		{"keyDigests other leaf changed", "doc", func(v *openView) { flip(v.r.KeyDigests[1-mine(v)], 31) }},
		{"keyDigests entry of 31 bytes", "msg", func(v *openView) { v.r.KeyDigests[1-mine(v)] = v.r.KeyDigests[1-mine(v)][:31] }},
		{"keyDigests entry of 33 bytes", "msg", func(v *openView) { v.r.KeyDigests[1-mine(v)] = append(v.r.KeyDigests[1-mine(v)], 0) }},
		{"keyDigests missing", "msg", func(v *openView) { v.r.KeyDigests = nil }},
		{"signature", "msg", func(v *openView) { flip(v.r.Signature, 100) }},
		{"signature truncated", "doc", func(v *openView) { v.r.Signature = v.r.Signature[:pqcrypto.SignatureSize-1] }},
		{"signature missing", "msg", func(v *openView) { v.r.Signature = nil }},
		{"signature from another envelope", "msg", func(v *openView) { v.r.Signature = fixtures["bare msg"].env.Signature }},
		{"pinned key of another user", "msg", func(v *openView) { v.sender = fixtures["msg"].keys.pinned[carolUID] }},
		{"no pinned key", "doc", func(v *openView) { v.sender = nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fixtures[tc.fixture]
			genuine, ok := f.env.Received(bobUID)
			if !ok {
				t.Fatal("bob is not a recipient")
			}
			v := &openView{h: f.h, r: cloneReceived(genuine), sender: f.keys.pinned[aliceUID]}
			if pt, err := pqcrypto.OpenSigned(v.h, v.r, v.sender, f.keys.kem[f.bobKey]); err != nil || string(pt) != "genuine text" {
				t.Fatalf("the untouched envelope does not open: %q, %v", pt, err)
			}
			tc.mutate(v)
			pt, err := pqcrypto.OpenSigned(v.h, v.r, v.sender, f.keys.kem[f.bobKey])
			if !errors.Is(err, pqcrypto.ErrCannotOpen) || err.Error() != "cannot open envelope" || pt != nil {
				t.Fatalf("OpenSigned = %q, %v; want only ErrCannotOpen", pt, err)
			}
		})
	}
}

// TestOpenSignedDuplicateLeaf: a dishonest sender's own client could sign
// a transcript listing a reader's leaf twice (the API refuses to make one),
// which would let the server show that reader either of two positions.
// OpenSigned requires its leaf exactly once even under a valid signature.
func TestOpenSignedDuplicateLeaf(t *testing.T) {
	f := newSignedFixture(t, msgHeader, false)
	r, _ := f.env.Received(bobUID)
	r = cloneReceived(r)
	r.KeyDigests = append(r.KeyDigests, pqcrypto.KeyDigest(r.MyKey))
	_, sk := mldsa65.NewKeyFromSeed((*[32]byte)(f.keys.identity["alice"].Seed()))
	m := sha256.Sum256(pqcrypto.Transcript(f.h, r.Ciphertext, r.Nonce, r.KeyDigests))
	r.Signature = make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(sk, m[:], []byte("qchat/v2"), false, r.Signature); err != nil {
		t.Fatal(err)
	}
	if pt, err := pqcrypto.OpenSigned(f.h, r, f.keys.pinned[aliceUID], f.keys.kem[f.bobKey]); !errors.Is(err, pqcrypto.ErrCannotOpen) || pt != nil {
		t.Fatalf("OpenSigned = %q, %v; want ErrCannotOpen", pt, err)
	}
	// The same forgery with the leaf once opens: the signature is genuine.
	r.KeyDigests = r.KeyDigests[:len(r.KeyDigests)-1]
	m = sha256.Sum256(pqcrypto.Transcript(f.h, r.Ciphertext, r.Nonce, r.KeyDigests))
	if err := mldsa65.SignTo(sk, m[:], []byte("qchat/v2"), false, r.Signature); err != nil {
		t.Fatal(err)
	}
	if pt, err := pqcrypto.OpenSigned(f.h, r, f.keys.pinned[aliceUID], f.keys.kem[f.bobKey]); err != nil || string(pt) != "genuine text" {
		t.Fatalf("OpenSigned of a genuine re-signature = %q, %v", pt, err)
	}
}

// TestVerifyEnvelopeTamper is the server's side: every value of the whole
// envelope that the transcript covers, changed alone, must make the
// signature fail (ErrBadSignature, not some other error), which shows it is
// the signature that covers it.
func TestVerifyEnvelopeTamper(t *testing.T) {
	fixtures := map[string]*signedFixture{
		"msg":      newSignedFixture(t, msgHeader, false),
		"bare msg": newSignedFixture(t, bareMsgHeader, true),
		"doc":      newSignedFixture(t, docHeader, true),
	}
	flip := func(b []byte) { b[len(b)/2] ^= 0x80 }
	cases := []struct {
		name, fixture string
		mutate        func(h *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope)
	}{
		{"kind", "bare msg", func(h *pqcrypto.SignedHeader, _ *pqcrypto.SignedEnvelope) { h.Kind = pqcrypto.KindDocument }},
		{"oid", "msg", func(h *pqcrypto.SignedHeader, _ *pqcrypto.SignedEnvelope) { h.ObjectID = otherID }},
		{"sid", "msg", func(h *pqcrypto.SignedHeader, _ *pqcrypto.SignedEnvelope) { h.SenderID = bobUID }},
		{"cid", "doc", func(h *pqcrypto.SignedHeader, _ *pqcrypto.SignedEnvelope) { h.ConversationID = otherID }},
		{"attachmentId", "msg", func(h *pqcrypto.SignedHeader, _ *pqcrypto.SignedEnvelope) { h.AttachmentID = otherID }},
		{"attachmentId removed", "msg", func(h *pqcrypto.SignedHeader, _ *pqcrypto.SignedEnvelope) { h.AttachmentID = "" }},
		{"name", "doc", func(h *pqcrypto.SignedHeader, _ *pqcrypto.SignedEnvelope) { h.Name = "Résumé (final).PDF" }},
		{"name NFD", "doc", func(h *pqcrypto.SignedHeader, _ *pqcrypto.SignedEnvelope) {
			h.Name = strings.ReplaceAll(h.Name, "é", "e\u0301")
		}},
		{"mimeType", "doc", func(h *pqcrypto.SignedHeader, _ *pqcrypto.SignedEnvelope) { h.MimeType = "application/octet-stream" }},
		{"nonce", "msg", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) { flip(e.Nonce) }},
		{"ciphertext", "doc", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) { flip(e.Ciphertext) }},
		{"keys[0].userId", "msg", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) { e.Keys[0].UserID = otherID }},
		{"keys[1].keyId", "msg", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) { e.Keys[1].KeyID = "carol-x_wing-key" }},
		{"keys[0].kemCiphertext", "doc", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) { flip(e.Keys[0].KEMCiphertext) }},
		{"keys[1].wrappedKey", "msg", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) { flip(e.Keys[1].WrappedKey) }},
		{"key dropped", "msg", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) { e.Keys = e.Keys[:1] }},
		{"key added", "doc", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) {
			k := e.Keys[0]
			k.UserID = aliceUID
			e.Keys = append(e.Keys, k)
		}},
		{"signature", "msg", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) { flip(e.Signature) }},
		{"signature truncated", "msg", func(_ *pqcrypto.SignedHeader, e *pqcrypto.SignedEnvelope) { e.Signature = e.Signature[1:] }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fixtures[tc.fixture]
			h, e := f.h, cloneSigned(f.env)
			sender := f.keys.pinned[aliceUID]
			if err := pqcrypto.VerifyEnvelope(sender, h, e); err != nil {
				t.Fatalf("the untouched envelope does not verify: %v", err)
			}
			tc.mutate(&h, e)
			if err := pqcrypto.VerifyEnvelope(sender, h, e); !errors.Is(err, pqcrypto.ErrBadSignature) {
				t.Fatalf("VerifyEnvelope = %v, want ErrBadSignature", err)
			}
		})
	}
	t.Run("keys listed in another order", func(t *testing.T) {
		// The transcript sorts the keys, so the order the server keeps
		// them in does not matter.
		f := fixtures["msg"]
		e := cloneSigned(f.env)
		slices.Reverse(e.Keys)
		if err := pqcrypto.VerifyEnvelope(f.keys.pinned[aliceUID], f.h, e); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("another user's identity key", func(t *testing.T) {
		f := fixtures["msg"]
		if err := pqcrypto.VerifyEnvelope(f.keys.pinned[bobUID], f.h, f.env); !errors.Is(err, pqcrypto.ErrBadSignature) {
			t.Fatalf("VerifyEnvelope = %v, want ErrBadSignature", err)
		}
	})
}

func TestSealSignedRejects(t *testing.T) {
	f := newSignedFixture(t, msgHeader, false)
	alice := f.keys.identity["alice"]
	kp := f.keys.kem["bob-ml_kem_768-key"]
	rs := []pqcrypto.Recipient{{UserID: bobUID, KeyID: "bob-ml_kem_768-key", Algorithm: kp.Algorithm, PublicKey: kp.PublicKey}}
	cases := []struct {
		name   string
		ik     *pqcrypto.IdentityKey
		mutate func(h *pqcrypto.SignedHeader, rs []pqcrypto.Recipient) []pqcrypto.Recipient
		want   string
	}{
		{"bad kind", alice, func(h *pqcrypto.SignedHeader, rs []pqcrypto.Recipient) []pqcrypto.Recipient {
			h.Kind = "img"
			return rs
		}, "kind"},
		{"upper-case oid", alice, func(h *pqcrypto.SignedHeader, rs []pqcrypto.Recipient) []pqcrypto.Recipient {
			h.ObjectID = strings.ToUpper(h.ObjectID)
			return rs
		}, "object id"},
		{"attachment id not a UUID", alice, func(h *pqcrypto.SignedHeader, rs []pqcrypto.Recipient) []pqcrypto.Recipient {
			h.AttachmentID = "doc-1"
			return rs
		}, "attachment id"},
		{"message with a name", alice, func(h *pqcrypto.SignedHeader, rs []pqcrypto.Recipient) []pqcrypto.Recipient {
			h.Name = "x.txt"
			return rs
		}, "no name"},
		{"document with an attachment", alice, func(h *pqcrypto.SignedHeader, rs []pqcrypto.Recipient) []pqcrypto.Recipient {
			h.Kind = pqcrypto.KindDocument
			return rs
		}, "no attachment"},
		{"document name not UTF-8", alice, func(h *pqcrypto.SignedHeader, rs []pqcrypto.Recipient) []pqcrypto.Recipient {
			h.Kind, h.AttachmentID, h.Name = pqcrypto.KindDocument, "", "\xff.pdf"
			return rs
		}, "UTF-8"},
		{"empty key id", alice, func(_ *pqcrypto.SignedHeader, rs []pqcrypto.Recipient) []pqcrypto.Recipient {
			rs[0].KeyID = ""
			return rs
		}, "key id"},
		{"no recipients", alice, func(*pqcrypto.SignedHeader, []pqcrypto.Recipient) []pqcrypto.Recipient { return nil }, "no recipients"},
		{"no identity key", nil, func(_ *pqcrypto.SignedHeader, rs []pqcrypto.Recipient) []pqcrypto.Recipient { return rs }, "identity key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := msgHeader
			env, err := pqcrypto.SealSigned(nil, tc.ik, h, []byte("x"), tc.mutate(&h, slices.Clone(rs)))
			if err == nil || env != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SealSigned = %v, %v; want an error about %q", env, err, tc.want)
			}
		})
	}
}

func TestKEMKeyCertificates(t *testing.T) {
	v := loadV2Vectors(t)
	keys := loadV2Keys(t, v)
	bob, carol := keys.pinned[bobUID], keys.pinned[carolUID]
	mlPub := keys.kem["bob-ml_kem_768-key"].PublicKey
	xwPub := keys.kem["bob-x_wing-key"].PublicKey
	hedged, err := pqcrypto.IdentityKeyFromSeed(keys.identity["bob"].Seed())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pqcrypto.CertifyKEMKey(hedged, pqcrypto.MLKEM768, 7, mlPub)
	if err != nil {
		t.Fatal(err)
	}
	again, err := pqcrypto.CertifyKEMKey(hedged, pqcrypto.MLKEM768, 7, mlPub)
	if err != nil || bytes.Equal(cert, again) {
		t.Fatalf("hedged certificates are equal (%v): signing is not randomised", err)
	}
	maxCert, err := pqcrypto.CertifyKEMKey(hedged, pqcrypto.XWing, pqcrypto.MaxSeq, xwPub)
	if err != nil {
		t.Fatal(err)
	}
	flipped := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }

	cases := []struct {
		name      string
		owner     *pqcrypto.IdentityPublicKey
		alg       pqcrypto.Algorithm
		seq       int
		pub, cert []byte
		want      error // nil: verifies; ErrBadSignature; errOther: a malformed input
	}{
		{"genuine", bob, pqcrypto.MLKEM768, 7, mlPub, cert, nil},
		{"second hedged certificate", bob, pqcrypto.MLKEM768, 7, mlPub, again, nil},
		{"highest seq", bob, pqcrypto.XWing, pqcrypto.MaxSeq, xwPub, maxCert, nil},
		{"another owner", carol, pqcrypto.MLKEM768, 7, mlPub, cert, pqcrypto.ErrBadSignature},
		{"older seq", bob, pqcrypto.MLKEM768, 6, mlPub, cert, pqcrypto.ErrBadSignature},
		{"newer seq", bob, pqcrypto.MLKEM768, 8, mlPub, cert, pqcrypto.ErrBadSignature},
		{"seq 70 (a prefix of 7 would be 70 without the separator)", bob, pqcrypto.MLKEM768, 70, mlPub, cert, pqcrypto.ErrBadSignature},
		{"another key", bob, pqcrypto.MLKEM768, 7, flipped(mlPub, 1000), cert, pqcrypto.ErrBadSignature},
		{"certificate changed", bob, pqcrypto.MLKEM768, 7, mlPub, flipped(cert, 3000), pqcrypto.ErrBadSignature},
		{"certificate truncated", bob, pqcrypto.MLKEM768, 7, mlPub, cert[:100], pqcrypto.ErrBadSignature},
		{"no owner", nil, pqcrypto.MLKEM768, 7, mlPub, cert, pqcrypto.ErrBadSignature},
		{"X_WING key certified as ML_KEM_768", bob, pqcrypto.MLKEM768, pqcrypto.MaxSeq, xwPub, maxCert, errOther},
		{"seq 0", bob, pqcrypto.MLKEM768, 0, mlPub, cert, errOther},
		{"seq negative", bob, pqcrypto.MLKEM768, -7, mlPub, cert, errOther},
		{"seq above 2^31-1", bob, pqcrypto.XWing, pqcrypto.MaxSeq + 1, xwPub, maxCert, errOther},
		{"unknown algorithm", bob, "ML_KEM_1024", 7, mlPub, cert, errOther},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := pqcrypto.VerifyKEMKeyCertificate(tc.owner, tc.alg, tc.seq, tc.pub, tc.cert)
			switch {
			case tc.want == nil && err != nil,
				tc.want == pqcrypto.ErrBadSignature && !errors.Is(err, pqcrypto.ErrBadSignature),
				tc.want == errOther && (err == nil || errors.Is(err, pqcrypto.ErrBadSignature)):
				t.Fatalf("VerifyKEMKeyCertificate = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := pqcrypto.CertifyKEMKey(hedged, pqcrypto.MLKEM768, 0, mlPub); err == nil {
		t.Error("CertifyKEMKey accepted seq 0")
	}
}

var errOther = errors.New("a malformed input")

func TestIdentityKeys(t *testing.T) {
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := pqcrypto.IdentityKeyFromSeed(ik.Seed())
	if err != nil || !bytes.Equal(again.PublicKey(), ik.PublicKey()) || len(ik.PublicKey()) != pqcrypto.IdentityPublicKeySize {
		t.Fatalf("the key rebuilt from its seed differs (%v)", err)
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := pqcrypto.IdentityKeyFromSeed(make([]byte, n)); err == nil {
			t.Errorf("IdentityKeyFromSeed accepted a %d-byte seed", n)
		}
	}
	for _, n := range []int{0, 1, pqcrypto.IdentityPublicKeySize - 1, pqcrypto.IdentityPublicKeySize + 1, pqcrypto.SignatureSize} {
		if _, err := pqcrypto.ParseIdentityKey(make([]byte, n)); err == nil {
			t.Errorf("ParseIdentityKey accepted %d bytes", n)
		}
	}
	// Returned slices are copies: a caller scribbling on them changes nothing.
	pub := ik.PublicKey()
	pub[0] ^= 1
	ik.Seed()[0] ^= 1
	if bytes.Equal(pub, ik.PublicKey()) || !bytes.Equal(again.Seed(), ik.Seed()) {
		t.Error("PublicKey or Seed returned the key's own memory")
	}
}

func TestSafetyNumberRejects(t *testing.T) {
	v := loadV2Vectors(t)
	a, b := v.Identities["alice"], v.Identities["bob"]
	ika, ikb := b64(t, a.PublicKey), b64(t, b.PublicKey)
	cases := []struct {
		name string
		uidA string
		ikA  []byte
		uidB string
		ikB  []byte
	}{
		{"same user", a.UID, ika, a.UID, ikb},
		{"empty user id", "", ika, b.UID, ikb},
		{"short key", a.UID, ika[:100], b.UID, ikb},
		{"no key", a.UID, ika, b.UID, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := pqcrypto.SafetyNumber(tc.uidA, tc.ikA, tc.uidB, tc.ikB); err == nil {
				t.Fatalf("SafetyNumber = %s, want an error", n)
			}
		})
	}
	// Another key for one side changes both halves' order-independent result.
	n1, _ := pqcrypto.SafetyNumber(a.UID, ika, b.UID, ikb)
	n2, _ := pqcrypto.SafetyNumber(a.UID, b64(t, v.Identities["carol"].PublicKey), b.UID, ikb)
	if n1 == n2 || n1[30:] != n2[30:] || len(n1) != 60 {
		t.Errorf("a swapped key for alice gives %s, was %s: want only alice's half changed", n2, n1)
	}
}

// TestIdentityKeysConcurrentUse: the server shares one parsed identity key
// between requests, and a client may sign from several goroutines; run
// under -race.
func TestIdentityKeysConcurrentUse(t *testing.T) {
	f := newSignedFixture(t, docHeader, false)
	alice, pinned := f.keys.identity["alice"], f.keys.pinned[aliceUID]
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			errs <- pqcrypto.VerifyEnvelope(pinned, f.h, f.env)
		})
		wg.Go(func() {
			sig, err := pqcrypto.SignEnvelope(alice, f.h, &f.env.Envelope)
			if err == nil {
				err = pqcrypto.VerifyEnvelope(pinned, f.h, &pqcrypto.SignedEnvelope{Envelope: f.env.Envelope, Signature: sig})
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
