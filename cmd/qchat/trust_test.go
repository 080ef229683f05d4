package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

var safetyNumberRE = regexp.MustCompile(`\b(\d{5} ){11}\d{5}\b`)

// TestTrustOnFirstUse: contacts are pinned when first met; both users'
// verify print the same safety number; a server that swaps bob's identity
// key (written straight into its tables) makes alice's send refuse with a
// warning until she runs trust; a live listen warns of bob resetting his
// identity.
func TestTrustOnFirstUse(t *testing.T) {
	ctx, srv, alice, bob := signedUpPair(t)
	if out := alice.do(ctx, "contacts"); !strings.Contains(out, "no contacts yet") {
		t.Errorf("contacts before meeting anyone:\n%s", out)
	}
	alice.do(ctx, "room", "create", "Plans")
	alice.do(ctx, "room", "add", "Plans", "@bob")
	identityOf := func(who string) string {
		t.Helper()
		for _, line := range strings.Split(strings.TrimSpace(alice.do(ctx, "room", "members", "Plans", "--json")), "\n") {
			var m struct {
				User     struct{ Username string }
				Identity string
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			if m.User.Username == who {
				return m.Identity
			}
		}
		t.Fatalf("%s is not a member", who)
		return ""
	}
	if got := identityOf("bob"); got != "not met" {
		t.Errorf("bob before alice meets him: %q", got)
	}
	alice.do(ctx, "send", "@bob", "hello bob")
	if got := identityOf("bob"); got != "not verified" {
		t.Errorf("bob once met: %q", got)
	}
	if out := alice.do(ctx, "contacts"); !strings.Contains(out, "bob") || !strings.Contains(out, "not verified") {
		t.Errorf("contacts after the first message:\n%s", out)
	}

	aliceNumber := safetyNumberRE.FindString(alice.do(ctx, "verify", "@bob"))
	bobNumber := safetyNumberRE.FindString(bob.do(ctx, "verify", "@alice"))
	if aliceNumber == "" || aliceNumber != bobNumber {
		t.Fatalf("safety numbers %q and %q, want the same twelve groups of five digits", aliceNumber, bobNumber)
	}
	alice.do(ctx, "verify", "@bob", "--mark")
	var c struct {
		Username        string
		Verified        bool
		IdentityChanged bool
	}
	if err := json.Unmarshal([]byte(alice.do(ctx, "contacts", "--json")), &c); err != nil || c.Username != "bob" || !c.Verified || c.IdentityChanged {
		t.Fatalf("contacts after verify --mark: %+v, %v", c, err)
	}
	if got := identityOf("bob"); got != "verified" {
		t.Errorf("bob once verified: %q", got)
	}

	// The server swaps bob's identity key and presents a key certified by
	// the new one: alice's client refuses, and says what to do.
	fake, _ := pqcrypto.GenerateIdentityKey(nil)
	fakeKP, _ := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	var bobID string
	if err := srv.Store.DB().NewSelect().Model((*models.User)(nil)).Column("id").Where("username = ?", "bob").Scan(ctx, &bobID); err != nil {
		t.Fatal(err)
	}
	db := srv.Store.DB()
	if _, err := db.NewUpdate().Model((*models.IdentityKey)(nil)).Set("current = ?", false).Where("user_id = ?", bobID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewInsert().Model(&models.IdentityKey{ID: uuid.NewString(), UserID: bobID, KeyBytes: fake.PublicKey(),
		Fingerprint: pqcrypto.Fingerprint(fake.PublicKey()), Current: true, CreatedAt: models.Now()}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	cert, _ := pqcrypto.CertifyKEMKey(fake, fakeKP.Algorithm, 2, fakeKP.PublicKey)
	seq := 2
	if err := srv.Store.RotateKey(ctx, bobID, &models.PublicKey{ID: uuid.NewString(), Algorithm: models.KeyAlgorithmMlKem768, KeyBytes: fakeKP.PublicKey,
		Fingerprint: pqcrypto.Fingerprint(fakeKP.PublicKey), CreatedAt: models.Now(), SignatureBytes: cert, Seq: &seq}); err != nil {
		t.Fatal(err)
	}
	_, _, err := alice.exec(ctx, "send", "@bob", "must not reach a stranger")
	if err == nil || !strings.Contains(err.Error(), "WARNING: bob's identity key has changed") || !strings.Contains(err.Error(), "qchat trust @bob") {
		t.Fatalf("send after the swap: %v", err)
	}
	if _, _, err := alice.exec(ctx, "verify", "@bob"); err == nil || !strings.Contains(err.Error(), "identity key has changed") {
		t.Errorf("verify after the swap: %v", err)
	}
	if err := json.Unmarshal([]byte(alice.do(ctx, "contacts", "--json")), &c); err != nil || !c.IdentityChanged {
		t.Errorf("contacts after the swap: %+v, %v", c, err)
	}
	if got := identityOf("bob"); got != "CHANGED" {
		t.Errorf("bob after the swap: %q", got)
	}
	hist := bob.do(ctx, "history", "@alice")
	if strings.Contains(hist, "must not reach") {
		t.Errorf("the refused message was sent:\n%s", hist)
	}
	if out := alice.do(ctx, "trust", "@bob"); !strings.Contains(out, "accepted bob's new identity key") {
		t.Errorf("trust said:\n%s", out)
	}
	// Trust clears the warning. (A send would now be sealed for the key the
	// server made up; the server's own cache of bob's key, which nothing
	// told about the rows written behind its back, would refuse it.)
	if out := alice.do(ctx, "verify", "@bob"); !safetyNumberRE.MatchString(out) || !strings.Contains(out, "not verified") {
		t.Errorf("verify after trust:\n%s", out)
	}
	if err := json.Unmarshal([]byte(alice.do(ctx, "contacts", "--json")), &c); err != nil || c.Verified || c.IdentityChanged {
		t.Errorf("contacts after trust: %+v, %v (verified must be cleared)", c, err)
	}

	// Bob resets his identity while alice listens: a warning, live.
	live := alice.listen(ctx)
	srv.WaitSubscribers(t, 6)
	bob.do(ctx, "reset-identity")
	live.waitFor(t, "an identity warning", func() bool {
		return strings.Contains(live.out.String(), "WARNING: bob's identity key changed")
	})
}

// TestVersion1AccountGetsAnIdentity: an account made before version 2, with
// a key store that has no identity key, gets one at its first sign-in, and
// can then be written to; until then, others are refused by name.
func TestVersion1AccountGetsAnIdentity(t *testing.T) {
	ctx := context.Background()
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	old := srv.RegisterV1(t, "oldtimer") // registered by a version 1 client
	oldCLI := newCLIUser(t, srv.URL, "oldtimer")
	oldCLI.env["QCHAT_PASSWORD"] = old.Password
	pub := pqcrypto.EncodeB64(old.Key.PublicKey)
	ks := keyStore{Version: 1, Keys: []storedKey{{KeyID: old.KeyID, Algorithm: old.Key.Algorithm, PublicKey: pub}},
		Seeds: map[string]string{pub: pqcrypto.EncodeB64(old.Key.Seed)}}
	if err := writeJSON(oldCLI.dir(), keysFile, &ks); err != nil {
		t.Fatal(err)
	}
	alice := newCLIUser(t, srv.URL, "alice")
	alice.signUp(ctx)
	if _, _, err := alice.exec(ctx, "send", "@oldtimer", "hello"); err == nil || !strings.Contains(err.Error(), "oldtimer") || !strings.Contains(err.Error(), "no identity key") {
		t.Fatalf("send to a version 1 account: %v", err)
	}

	_, note, err := oldCLI.exec(ctx, "login", "oldtimer")
	if err != nil || !strings.Contains(note, "set up your identity key") {
		t.Fatalf("first sign-in of a version 1 account: %v, said:\n%s", err, note)
	}
	var after keyStore
	if _, err := readJSON(oldCLI.dir(), keysFile, &after); err != nil || after.Identity == "" || len(after.Keys) != 2 {
		t.Fatalf("key store after the first sign-in: %+v, %v", after, err)
	}
	alice.do(ctx, "send", "@oldtimer", "hello at last")
	if hist := oldCLI.do(ctx, "history", "@alice"); !strings.Contains(hist, "hello at last") {
		t.Errorf("history of the upgraded account:\n%s", hist)
	}
	// A second sign-in changes nothing.
	if _, note, err := oldCLI.exec(ctx, "login", "oldtimer"); err != nil || strings.Contains(note, "identity") {
		t.Errorf("second sign-in: %v, said:\n%s", err, note)
	}
}

// TestResetIdentityNeedsThePassword: reset-identity with a wrong password
// changes nothing, here or on the server.
func TestResetIdentityNeedsThePassword(t *testing.T) {
	ctx := context.Background()
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	alice := newCLIUser(t, srv.URL, "alice")
	alice.signUp(ctx)
	before, err := readKeysFile(alice.dir())
	if err != nil {
		t.Fatal(err)
	}
	alice.env["QCHAT_PASSWORD"] = "not the password"
	if _, _, err := alice.exec(ctx, "reset-identity"); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("reset-identity with a wrong password: %v", err)
	}
	if after, err := readKeysFile(alice.dir()); err != nil || after != before {
		t.Errorf("the key store changed: %v", err)
	}
	alice.env["QCHAT_PASSWORD"] = "password of alice"
	_, warn, err := alice.exec(ctx, "reset-identity")
	if err != nil || !strings.Contains(warn, "contacts will be told") {
		t.Fatalf("reset-identity: %v, said:\n%s", err, warn)
	}
	if after, _ := readKeysFile(alice.dir()); after == before {
		t.Error("the key store did not change")
	}
}

func readKeysFile(dir string) (string, error) {
	var ks keyStore
	if _, err := readJSON(dir, keysFile, &ks); err != nil {
		return "", err
	}
	b, err := json.Marshal(ks)
	return string(b), err
}

// TestPinsFileIsShared: two processes on one config dir (a listen, and a
// trust in another terminal) see each other's pins, and neither write
// drops the other's.
func TestPinsFileIsShared(t *testing.T) {
	dir := t.TempDir()
	listen, trust := &filePins{dir: dir}, &filePins{dir: dir}
	ikA, _ := pqcrypto.GenerateIdentityKey(nil)
	ikB, _ := pqcrypto.GenerateIdentityKey(nil)
	ikB2, _ := pqcrypto.GenerateIdentityKey(nil)
	if err := listen.SetPin("a", &client.Pin{Username: "a", IdentityKey: ikA.PublicKey(), Seq: 3, KEMKey: []byte{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := trust.SetPin("b", &client.Pin{Username: "b", IdentityKey: ikB.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	if p, err := listen.Pin("b"); err != nil || p == nil || !bytes.Equal(p.IdentityKey, ikB.PublicKey()) {
		t.Fatalf("listen's view of b: %+v, %v", p, err)
	}
	if err := listen.SetPin("b", &client.Pin{Username: "b", IdentityKey: ikB2.PublicKey(), Previous: [][]byte{ikB.PublicKey()}, Verified: true}); err != nil {
		t.Fatal(err)
	}
	a, err := trust.Pin("a")
	if err != nil || a == nil || a.Seq != 3 || !bytes.Equal(a.KEMKey, []byte{1, 2}) {
		t.Fatalf("trust's view of a: %+v, %v", a, err)
	}
	b, err := trust.Pin("b")
	if err != nil || b == nil || !b.Verified || !bytes.Equal(b.IdentityKey, ikB2.PublicKey()) || len(b.Previous) != 1 {
		t.Fatalf("trust's view of b: %+v, %v", b, err)
	}
	if p, err := trust.Pin("nobody"); p != nil || err != nil {
		t.Errorf("an unknown user: %+v, %v", p, err)
	}
	if info, err := os.Stat(filepath.Join(dir, contactsFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("contacts.json: %v, %v", info, err)
	}
}

// TestListenShowsForgeriesAsUnverifiable: listen shows a message that does
// not verify (here alice's genuine envelope and signature copied under a
// new id, written straight into the server's tables) as unverifiable, never
// with its text, and goes on showing genuine messages.
func TestListenShowsForgeriesAsUnverifiable(t *testing.T) {
	ctx, srv, alice, bob := signedUpPair(t)
	var sent struct{ ID string }
	if err := json.Unmarshal([]byte(alice.do(ctx, "send", "@bob", "the original", "--json")), &sent); err != nil {
		t.Fatal(err)
	}
	live := bob.listen(ctx, "--json")
	srv.WaitSubscribers(t, 6)

	orig, err := srv.Store.MessageByID(ctx, sent.ID)
	if err != nil {
		t.Fatal(err)
	}
	var keys []*models.RecipientKey
	if err := srv.Store.DB().NewSelect().Model(&keys).Where("message_id = ?", sent.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	cp := *orig
	cp.ID, cp.CreatedAt = uuid.NewString(), models.Now()
	for _, k := range keys {
		k.MessageID, k.ReadAt = cp.ID, nil
	}
	if _, _, err := srv.Store.InsertMessage(ctx, &cp, keys); err != nil {
		t.Fatal(err)
	}
	// The next live message makes listen catch up, which finds the copy.
	alice.do(ctx, "send", "@bob", "after the forgery")
	live.waitText(t, "after the forgery")
	var forged map[string]any
	for _, m := range live.messages() {
		if m["id"] == cp.ID {
			forged = m
		}
	}
	if forged == nil || forged["unverifiable"] != true || forged["text"] != nil || forged["signed"] != false {
		t.Fatalf("listen showed the copy as %v; all:\n%s", forged, live.out.String())
	}
	for _, m := range live.messages() {
		if m["text"] == "after the forgery" && m["signed"] != true {
			t.Errorf("the genuine message: %v", m)
		}
	}
}

// TestSecretsPipedOnStdin: a script can pipe every secret a command needs,
// one per line: register reads the key store passphrase (the identity key
// signs the first key) and then the password.
func TestSecretsPipedOnStdin(t *testing.T) {
	ctx := context.Background()
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	dir := t.TempDir()
	getenv := env(map[string]string{"QCHAT_CONFIG_DIR": dir, "QCHAT_SERVER": srv.URL})
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"keygen", "--encrypt"}, strings.NewReader("a store passphrase\n"), &out, &errOut, getenv); err != nil {
		t.Fatalf("keygen: %v\n%s", err, errOut.String())
	}
	if err := run(ctx, []string{"register", "carol"}, strings.NewReader("a store passphrase\npassword of carol\n"), &out, &errOut, getenv); err != nil {
		t.Fatalf("register with both secrets piped: %v\n%s", err, errOut.String())
	}
	if err := run(ctx, []string{"login", "carol"}, strings.NewReader("password of carol\n"), &out, &errOut, getenv); err != nil {
		t.Fatalf("login with the password registered: %v\n%s", err, errOut.String())
	}
}
