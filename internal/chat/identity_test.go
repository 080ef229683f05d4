package chat_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/chat"
	"github.com/qchat/qchat/internal/presence"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

func ptr[T any](v T) *T { return &v }

// fieldOf is the field a BAD_USER_INPUT error names ("" if none).
func fieldOf(err error) string {
	var e *models.Error
	if !errors.As(err, &e) || e.Extensions == nil {
		return ""
	}
	f, _ := e.Extensions["field"].(string)
	return f
}

func TestRegisterWithIdentityKey(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		c, other := qchattest.NewV2Keys(t), qchattest.NewV2Keys(t)
		in := func(name string, mod func(*models.RegisterInput)) models.RegisterInput {
			r := models.RegisterInput{Username: name, Password: "password-" + name, PublicKey: c.Pub(), IdentityKey: c.Identity(), PublicKeySignature: c.Cert(t, 1)}
			if mod != nil {
				mod(&r)
			}
			return r
		}
		for _, tc := range []struct {
			name  string
			mod   func(*models.RegisterInput)
			field string
		}{
			{"seq 2", func(r *models.RegisterInput) { r.PublicKeySignature = c.Cert(t, 2) }, "publicKeySignature"},
			{"other identity", func(r *models.RegisterInput) { r.IdentityKey = other.Identity() }, "publicKeySignature"},
			{"other key", func(r *models.RegisterInput) { r.PublicKey = other.Pub() }, "publicKeySignature"},
			{"empty signature", func(r *models.RegisterInput) { r.PublicKeySignature = "" }, "publicKeySignature"},
			{"empty identity", func(r *models.RegisterInput) { r.IdentityKey = "" }, "identityKey"},
			{"short identity", func(r *models.RegisterInput) { r.IdentityKey = "AAAA" }, "identityKey"},
			{"not base64", func(r *models.RegisterInput) { r.PublicKeySignature = "!" }, "publicKeySignature"},
		} {
			_, err := f.svc.Register(ctx, in("bad_"+strings.ReplaceAll(tc.name, " ", "_"), tc.mod))
			if kindOf(err) != "invalid" || fieldOf(err) != tc.field {
				t.Errorf("%s: %v (field %q), want BAD_USER_INPUT on %s", tc.name, err, fieldOf(err), tc.field)
			}
		}
		p, err := f.svc.Register(ctx, in("carla", nil))
		if err != nil {
			t.Fatal(err)
		}
		ik, err := f.svc.IdentityKey(ctx, p.User.ID)
		if err != nil || ik == nil || ik.Key() != c.Identity() || ik.Fingerprint != c.IK.Public().Fingerprint() {
			t.Fatalf("identity key after registering: %+v %v", ik, err)
		}
		k, err := f.svc.PublicKey(ctx, p.User.CurrentKeyID)
		if err != nil || k.Seq == nil || *k.Seq != 1 || k.Signature() == nil {
			t.Fatalf("first key: seq %v, signature %v, %v", k.Seq, k.Signature() != nil, err)
		}
		// ML-DSA signing is randomised: check the stored certificate verifies.
		if err := pqcrypto.VerifyKEMKeyCertificate(c.IK.Public(), c.KP.Algorithm, 1, k.KeyBytes, k.SignatureBytes); err != nil {
			t.Fatalf("the stored certificate: %v", err)
		}
		// An account made before version 2 signs in and has no identity key.
		v1 := f.legacy(t, "old")
		if ik, err := f.svc.IdentityKey(ctx, v1.ID); ik != nil || err != nil {
			t.Fatalf("a v1 account's identity key: %+v %v", ik, err)
		}
	})
}

func TestSetIdentityKeyAndRotate(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		u := f.legacy(t, "dana") // an account made before version 2
		password := "password-" + u.Username
		c := qchattest.NewV2Keys(t)

		// Without an identity key, rotateKey cannot be certified: the next
		// key comes with setIdentityKey.
		if _, err := f.svc.RotateKey(ctx, u.User, c.Pub(), nil, 1, c.Cert(t, 1)); fieldOf(err) != "signature" {
			t.Fatalf("certified rotation without an identity key: %v", err)
		}
		// The first identity key: no password needed; seq must be 1.
		if _, err := f.svc.SetIdentityKey(ctx, u.User, c.Identity(), c.Pub(), nil, 2, c.Cert(t, 2), nil); fieldOf(err) != "seq" {
			t.Fatalf("seq 2 on the first certified key: %v", err)
		}
		if _, err := f.svc.SetIdentityKey(ctx, u.User, c.Identity(), c.Pub(), nil, 1, qchattest.NewV2Keys(t).Cert(t, 1), nil); fieldOf(err) != "signature" {
			t.Fatalf("a certificate by another identity: %v", err)
		}
		got, err := f.svc.SetIdentityKey(ctx, u.User, c.Identity(), c.Pub(), nil, 1, c.Cert(t, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		u.User = got

		// rotateKey now needs the next seq and a certificate.
		c.KP, _ = pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
		for _, tc := range []struct {
			seq   int
			sig   string
			field string
		}{
			{0, c.Cert(t, 2), "seq"},
			{2, "", "signature"},
			{1, c.Cert(t, 1), "seq"}, // an old seq cannot come back
			{3, c.Cert(t, 3), "seq"},
			{2, c.Cert(t, 3), "signature"},
		} {
			if _, err := f.svc.RotateKey(ctx, u.User, c.Pub(), nil, tc.seq, tc.sig); kindOf(err) != "invalid" || fieldOf(err) != tc.field {
				t.Errorf("rotate with seq %v: %v (field %q), want %s", tc.seq, err, fieldOf(err), tc.field)
			}
		}
		if u.User, err = f.svc.RotateKey(ctx, u.User, c.Pub(), nil, 2, c.Cert(t, 2)); err != nil {
			t.Fatal(err)
		}

		// Replacing the identity key needs the password; seq continues (3).
		n := qchattest.NewV2Keys(t)
		for _, pw := range []*string{nil, ptr("wrong password")} {
			if _, err := f.svc.SetIdentityKey(ctx, u.User, n.Identity(), n.Pub(), nil, 3, n.Cert(t, 3), pw); fieldOf(err) != "password" {
				t.Fatalf("replace with password %v: %v", pw, err)
			}
		}
		if ik, _ := f.svc.IdentityKey(ctx, u.ID); ik.Key() != c.Identity() {
			t.Fatal("a refused replacement changed the identity key")
		}
		if _, err := f.svc.SetIdentityKey(ctx, u.User, n.Identity(), n.Pub(), nil, 1, n.Cert(t, 1), &password); fieldOf(err) != "seq" {
			t.Fatalf("replacement restarting seq at 1: %v", err)
		}
		if _, err := f.svc.SetIdentityKey(ctx, u.User, n.Identity(), n.Pub(), nil, 3, n.Cert(t, 3), &password); err != nil {
			t.Fatal(err)
		}
		if ik, _ := f.svc.IdentityKey(ctx, u.ID); ik.Key() != n.Identity() {
			t.Fatal("the replacement did not take")
		}
		var history int
		if err := store.DB().NewRaw(`SELECT COUNT(*) FROM identity_keys WHERE user_id = ?`, u.ID).Scan(ctx, &history); err != nil || history != 2 {
			t.Fatalf("identity key history: %d %v", history, err)
		}
	})
}

func TestKeyBackup(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		f := newFixture(t, store)
		ctx := context.Background()
		a, b := f.register(t, "ann"), f.register(t, "ben")
		ik := qchattest.NewV2Keys(t).IK
		sealed, err := pqcrypto.SealBackup(nil, a.ID, "correct horse battery", &pqcrypto.Backup{IdentitySeed: ik.Seed()}, pqcrypto.BackupParams{})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.svc.KeyBackup(ctx, a.User); got != nil || err != nil {
			t.Fatalf("backup before any: %v %v", got, err)
		}
		for name, bad := range map[string]string{
			"not json":    "backup",
			"wrong shape": `{"v":2}`,
			"oversize":    sealed[:len(sealed)-1] + strings.Repeat(" ", pqcrypto.MaxSealedBackupSize) + "}",
		} {
			if err := f.svc.SetKeyBackup(ctx, a.User, bad); kindOf(err) != "invalid" || fieldOf(err) != "backup" {
				t.Errorf("%s: %v", name, err)
			}
		}
		if err := f.svc.SetKeyBackup(ctx, a.User, sealed); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.SetKeyBackup(ctx, a.User, sealed); err != nil { // replacing
			t.Fatal(err)
		}
		if got, err := f.svc.KeyBackup(ctx, a.User); err != nil || got == nil || *got != sealed {
			t.Fatalf("backup read back: %v", err)
		}
		if got, err := f.svc.KeyBackup(ctx, b.User); got != nil || err != nil {
			t.Fatalf("another user sees a backup: %v %v", got, err)
		}
		if ok, err := f.svc.DeleteKeyBackup(ctx, b.User); ok || err != nil {
			t.Fatalf("another user deleted something: %v %v", ok, err)
		}
		if ok, err := f.svc.DeleteKeyBackup(ctx, a.User); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if got, _ := f.svc.KeyBackup(ctx, a.User); got != nil {
			t.Fatal("the backup outlived its deletion")
		}
	})
}

// Replacing an identity key is a security event in the log; a refused
// attempt too. Neither line carries the password or a key.
func TestIdentityKeyReplacementIsASecurityEvent(t *testing.T) {
	store := qchattest.NewSQLite(t)
	var logs strings.Builder
	var mu sync.Mutex
	authn := auth.New(store, auth.Config{BcryptCost: 4})
	bk := broker.NewMemory(16)
	svc := chat.New(chat.Deps{Store: store, Sessions: authn, Broker: bk, Presence: presence.NewMemory(),
		Log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	t.Cleanup(func() { svc.Close(); authn.Close(); _ = bk.Close() })
	ctx := context.Background()
	c, n := qchattest.NewV2Keys(t), qchattest.NewV2Keys(t)
	p, err := svc.Register(ctx, models.RegisterInput{Username: "sam", Password: "password-sam", PublicKey: c.Pub(), IdentityKey: c.Identity(), PublicKeySignature: c.Cert(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetIdentityKey(ctx, p.User, n.Identity(), n.Pub(), nil, 2, n.Cert(t, 2), ptr("wrong-password")); fieldOf(err) != "password" {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := svc.SetIdentityKey(ctx, p.User, n.Identity(), n.Pub(), nil, 2, n.Cert(t, 2), ptr("password-sam")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, want := range []string{"event=identity_key_replace_refused", "event=identity_key_replaced", "fingerprint=\"" + n.IK.Public().Fingerprint()} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{"password-sam", "wrong-password", n.Identity()[:40], c.Identity()[:40]} {
		if strings.Contains(out, secret) {
			t.Errorf("the log carries %q", secret)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
