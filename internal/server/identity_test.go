package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/pqcrypto"
)

const (
	meKeysQuery       = `{ me { identityKey { key fingerprint createdAt } publicKey { seq signature } } }`
	setIdentityMut    = `mutation($ik: String!, $pk: String!, $seq: Int!, $sig: String!, $pw: String) { setIdentityKey(identityKey: $ik, publicKey: $pk, seq: $seq, signature: $sig, password: $pw) { identityKey { key } publicKey { seq } } }`
	rotateCertMut     = `mutation($pk: String!, $seq: Int!, $sig: String!) { rotateKey(publicKey: $pk, seq: $seq, signature: $sig) { publicKey { seq signature } } }`
	keyBackupQuery    = `{ keyBackup }`
	setKeyBackupMut   = `mutation($b: String!) { setKeyBackup(backup: $b) }`
	deleteKeyBackupMu = `mutation { deleteKeyBackup }`
)

type meKeys struct {
	Me struct {
		IdentityKey *struct{ Key, Fingerprint, CreatedAt string }
		PublicKey   struct {
			Seq       *int
			Signature *string
		}
	}
}

func TestRegisterWithAndWithoutIdentityKey(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		k := qchattest.NewV2Keys(t)
		vars := func(name string, sig string) map[string]any {
			v := registerVars(name, "password1", k.Pub(), "")
			in := v["in"].(map[string]any)
			in["identityKey"], in["publicKeySignature"] = k.Identity(), sig
			return v
		}
		wantFieldError(t, srv.Do(t, "", registerMutation, vars("forger", qchattest.NewV2Keys(t).Cert(t, 1))), "publicKeySignature")
		wantFieldError(t, srv.Do(t, "", registerMutation, vars("seqtwo", k.Cert(t, 2))), "publicKeySignature")

		var reg struct{ Register struct{ Token string } }
		srv.MustDo(t, "", registerMutation, vars("victor", k.Cert(t, 1)), &reg)
		var got meKeys
		srv.MustDo(t, reg.Register.Token, meKeysQuery, nil, &got)
		if ik := got.Me.IdentityKey; ik == nil || ik.Key != k.Identity() || ik.Fingerprint != k.IK.Public().Fingerprint() || ik.CreatedAt == "" {
			t.Fatalf("identity key after a v2 registration: %+v", ik)
		}
		if s := got.Me.PublicKey; s.Seq == nil || *s.Seq != 1 || s.Signature == nil {
			t.Fatalf("first key after a v2 registration: %+v", s)
		}

		// Registration is version 2 only.
		unsigned := registerVars("plain", "password1", k.Pub(), "")
		delete(unsigned["in"].(map[string]any), "identityKey")
		delete(unsigned["in"].(map[string]any), "publicKeySignature")
		if r := srv.Do(t, "", registerMutation, unsigned); r.Code() != "GRAPHQL_VALIDATION_FAILED" {
			t.Fatalf("a registration without an identity key answered %+v", r.Errors)
		}

		// An account made before version 2 signs in and reads its history;
		// it sends nothing until it has an identity key.
		old := srv.RegisterV1(t, "oldie")
		bob := srv.Register(t, "bob")
		msg := send(t, srv, bob, qchattest.Seal(t, uuid.NewString(), bob, "", old.ID, "to an old account", bob, old))
		srv.MustDo(t, old.Token, meKeysQuery, nil, &got)
		if got.Me.IdentityKey != nil || got.Me.PublicKey.Seq != nil || got.Me.PublicKey.Signature != nil {
			t.Fatalf("a v1 account shows v2 keys: %+v", got.Me)
		}
		var read struct{ Message qchattest.WireMessage }
		srv.MustDo(t, old.Token, `query($id: ID!) { message(id: $id) { `+qchattest.MessageFields+` } }`, map[string]any{"id": msg.ID}, &read)
		if text := qchattest.Open(t, old, read.Message); text != "to an old account" {
			t.Fatalf("the old account reads %q", text)
		}
		in := qchattest.Seal(t, uuid.NewString(), old, "", bob.ID, "hi", old, bob)
		if r := srv.Do(t, old.Token, sendMutation, map[string]any{"in": in}); r.Code() != "GRAPHQL_VALIDATION_FAILED" {
			t.Fatalf("an unsigned message answered %+v", r.Errors)
		}
		in["signature"] = msg.Signature
		wantFieldError(t, srv.Do(t, old.Token, sendMutation, map[string]any{"in": in}), "signature")
	})
}

func TestSetIdentityKeyThroughTheAPI(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		u := srv.RegisterV1(t, "ursula") // version 1: no identity key yet
		k := qchattest.NewV2Keys(t)
		set := func(k *qchattest.V2Keys, seq int, pw any) *qchattest.Response {
			return srv.Do(t, u.Token, setIdentityMut, map[string]any{"ik": k.Identity(), "pk": k.Pub(), "seq": seq, "sig": k.Cert(t, seq), "pw": pw})
		}
		wantFieldError(t, set(k, 2, nil), "seq")
		var out struct {
			SetIdentityKey struct {
				IdentityKey *struct{ Key string }
				PublicKey   struct{ Seq *int }
			}
		}
		set(k, 1, nil).Decode(t, &out)

		// Rotation now needs the next seq and a certificate.
		k.KP, _ = pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
		rotate := func(seq any, sig any) *qchattest.Response {
			return srv.Do(t, u.Token, rotateCertMut, map[string]any{"pk": k.Pub(), "seq": seq, "sig": sig})
		}
		wantFieldError(t, rotate(0, k.Cert(t, 2)), "seq")
		wantFieldError(t, rotate(1, k.Cert(t, 1)), "seq")
		wantFieldError(t, rotate(2, qchattest.NewV2Keys(t).Cert(t, 2)), "signature")
		var rot struct {
			RotateKey struct{ PublicKey struct{ Seq int } }
		}
		rotate(2, k.Cert(t, 2)).Decode(t, &rot)
		if rot.RotateKey.PublicKey.Seq != 2 {
			t.Fatalf("rotated key's seq: %d", rot.RotateKey.PublicKey.Seq)
		}

		// Replacing the identity key needs the password.
		n := qchattest.NewV2Keys(t)
		wantFieldError(t, set(n, 3, nil), "password")
		wantFieldError(t, set(n, 3, "not the password"), "password")
		set(n, 3, u.Password).Decode(t, &out)
		if ik := out.SetIdentityKey.IdentityKey; ik == nil || ik.Key != n.Identity() || out.SetIdentityKey.PublicKey.Seq == nil || *out.SetIdentityKey.PublicKey.Seq != 3 {
			t.Fatalf("setIdentityKey answered %+v", out.SetIdentityKey)
		}
		var got meKeys
		srv.MustDo(t, u.Token, meKeysQuery, nil, &got)
		if got.Me.IdentityKey == nil || got.Me.IdentityKey.Key != n.Identity() || *got.Me.PublicKey.Seq != 3 {
			t.Fatalf("after replacing: %+v", got.Me)
		}
	})
}

func TestKeyBackupThroughTheAPI(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice, eve := srv.Register(t, "alice"), srv.Register(t, "eve")
		sealed, err := pqcrypto.SealBackup(nil, alice.ID, "correct horse battery", &pqcrypto.Backup{IdentitySeed: qchattest.NewV2Keys(t).IK.Seed()}, pqcrypto.BackupParams{})
		if err != nil {
			t.Fatal(err)
		}
		var b struct{ KeyBackup *string }
		srv.MustDo(t, alice.Token, keyBackupQuery, nil, &b)
		if b.KeyBackup != nil {
			t.Fatal("a backup before any was set")
		}
		for _, bad := range []string{"nope", `{"v":2}`, strings.Repeat("a", pqcrypto.MaxSealedBackupSize+1)} {
			wantFieldError(t, srv.Do(t, alice.Token, setKeyBackupMut, map[string]any{"b": bad}), "backup")
		}
		if r := srv.Do(t, "", setKeyBackupMut, map[string]any{"b": sealed}); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("anonymous setKeyBackup: %+v", r.Errors)
		}
		srv.MustDo(t, alice.Token, setKeyBackupMut, map[string]any{"b": sealed}, nil)
		srv.MustDo(t, alice.Token, keyBackupQuery, nil, &b)
		if b.KeyBackup == nil || *b.KeyBackup != sealed {
			t.Fatal("the backup did not read back as stored")
		}
		// Nobody else ever sees or removes it.
		srv.MustDo(t, eve.Token, keyBackupQuery, nil, &b)
		if b.KeyBackup != nil {
			t.Fatal("eve reads alice's backup")
		}
		var del struct{ DeleteKeyBackup bool }
		srv.MustDo(t, eve.Token, deleteKeyBackupMu, nil, &del)
		if del.DeleteKeyBackup {
			t.Fatal("eve deleted a backup she does not have")
		}
		srv.MustDo(t, alice.Token, deleteKeyBackupMu, nil, &del)
		srv.MustDo(t, alice.Token, keyBackupQuery, nil, &b)
		if !del.DeleteKeyBackup || b.KeyBackup != nil {
			t.Fatalf("after deleting: %v %v", del.DeleteKeyBackup, b.KeyBackup)
		}
	})
}

// TestIdentityKeyPasswordGuessesAreLimited: setIdentityKey checks the account
// password, so a stolen session could guess it there, several aliased
// attempts per request. Wrong passwords count as failed logins: past the
// budget every further attempt in the same request is refused before any
// bcrypt comparison.
func TestIdentityKeyPasswordGuessesAreLimited(t *testing.T) {
	const budget = 3
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.AuthRateLimitMax, c.AuthRateLimitWindow = budget, time.Minute
	}})
	u := srv.RegisterV1(t, "ursula")
	k := qchattest.NewV2Keys(t)
	srv.Do(t, u.Token, setIdentityMut, map[string]any{"ik": k.Identity(), "pk": k.Pub(), "seq": 1, "sig": k.Cert(t, 1), "pw": nil}).Decode(t, &struct{}{})

	n := qchattest.NewV2Keys(t)
	var q strings.Builder
	q.WriteString(`mutation($ik: String!, $pk: String!, $sig: String!) {`)
	const attempts = 8
	for i := range attempts {
		fmt.Fprintf(&q, ` a%d: setIdentityKey(identityKey: $ik, publicKey: $pk, seq: 2, signature: $sig, password: "guess %d") { id }`, i, i)
	}
	q.WriteString(` }`)
	res := srv.Do(t, u.Token, q.String(), map[string]any{"ik": n.Identity(), "pk": n.Pub(), "sig": n.Cert(t, 2)})
	codes := map[string]int{}
	for _, e := range res.Errors {
		c, _ := e.Extensions["code"].(string)
		codes[c]++
	}
	if codes["BAD_USER_INPUT"] != budget || codes["RATE_LIMITED"] != attempts-budget {
		t.Fatalf("codes of %d aliased guesses with a budget of %d: %v", attempts, budget, codes)
	}
	// The right password is refused too until the budget refills: the
	// guesser cannot learn which attempt would have worked.
	res = srv.Do(t, u.Token, setIdentityMut, map[string]any{"ik": n.Identity(), "pk": n.Pub(), "seq": 2, "sig": n.Cert(t, 2), "pw": u.Password})
	if res.Code() != "RATE_LIMITED" {
		t.Fatalf("the right password after the budget: %v", res.Errors)
	}
}
