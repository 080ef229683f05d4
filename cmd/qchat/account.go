package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

// keygen creates the key store with a fresh key pair. The passphrase, if
// any, comes from --passphrase-file or QCHAT_PASSPHRASE, or a prompt with
// --encrypt.
func (a *app) keygen(ctx context.Context, args []string) error {
	fs := a.flags("keygen")
	algName := fs.String("algorithm", string(pqcrypto.MLKEM768), "ML_KEM_768 or X_WING")
	encrypt := fs.Bool("encrypt", false, "seal the secret key under a passphrase (prompted unless given)")
	force := fs.Bool("force", false, "replace a key store whose key was never registered")
	if _, err := a.start(ctx, fs, args, spec{about: "Generates this device's key pair for a new account (then: qchat register USERNAME)."}); err != nil {
		return err
	}
	alg, err := parseAlgorithm(*algName)
	if err != nil {
		return err
	}
	var old keyStore
	if ok, err := readJSON(a.dir, keysFile, &old); err != nil {
		return err
	} else if ok && len(old.Keys) > 0 {
		// Replacing a registered key here would leave the server handing
		// out the old one: others would keep sealing to it, and this
		// device could not open its own new messages. rotate-key is the
		// way that tells the server.
		for _, k := range old.Keys {
			if k.KeyID != "" {
				return &failure{msg: fmt.Sprintf("this device's key is registered (fingerprint %s): run %s rotate-key for a new one (older keys are kept), or use --profile NAME for another account",
					old.Keys[0].fingerprint(), a.me())}
			}
		}
		if !*force {
			return &failure{msg: fmt.Sprintf("%s already holds an unregistered key (fingerprint %s): register it, or replace it with keygen --force",
				filepath.Join(a.dir, keysFile), old.Keys[0].fingerprint())}
		}
	}
	pp, err := a.newPassphrase(*encrypt)
	if err != nil {
		return err
	}
	ik, kp, err := newKeys(alg)
	if err != nil {
		return err
	}
	pub := pqcrypto.EncodeB64(kp.PublicKey)
	ks := keyStore{Version: 1, Identity: pqcrypto.EncodeB64(ik.PublicKey()),
		Keys: []storedKey{{Algorithm: alg, PublicKey: pub, CreatedAt: time.Now().UTC()}}}
	seeds := withSeed(withSeed(nil, ik.PublicKey(), ik.Seed()), kp.PublicKey, kp.Seed)
	if err := ks.setSeeds(seeds, pp); err != nil {
		return err
	}
	if err := writeJSON(a.dir, keysFile, &ks); err != nil {
		return err
	}
	path := filepath.Join(a.dir, keysFile)
	fp, ifp := pqcrypto.Fingerprint(kp.PublicKey), pqcrypto.Fingerprint(ik.PublicKey())
	how := "unencrypted; protect it like a password, or use --encrypt"
	if pp != nil {
		how = "sealed under your passphrase"
	}
	return a.out(map[string]any{"algorithm": alg, "fingerprint": fp, "identityFingerprint": ifp, "file": path, "encrypted": pp != nil},
		"generated an identity key (ML-DSA-65) and a %s key pair\nidentity fingerprint %s\nkey fingerprint %s\nsecret keys saved to %s (%s)\n", alg, ifp, fp, path, how)
}

// newPassphrase is the passphrase of a new key store: asked for with
// --encrypt, taken from a file flag or the environment if one is set, and
// nil (an unencrypted store) otherwise.
func (a *app) newPassphrase(encrypt bool) ([]byte, error) {
	if !encrypt && a.passphraseFile == "" && a.getenv("QCHAT_PASSPHRASE") == "" {
		return nil, nil
	}
	pp, err := a.getPassphrase()
	if err != nil {
		return nil, err
	}
	if len(pp) == 0 {
		return nil, usageErr("empty passphrase")
	}
	return pp, nil
}

// register creates the account for the key from keygen. Only the public key
// is sent; no passphrase is needed.
func (a *app) register(ctx context.Context, args []string) error {
	pos, err := a.start(ctx, a.flags("register"), args, spec{args: "USERNAME", min: 1, max: 1,
		about: "Creates an account for this device's key (from qchat keygen) and logs in. The password is asked for."})
	if err != nil {
		return err
	}
	name := pos[0]
	ks, err := a.loadKeys()
	if err != nil {
		return err
	}
	if ks.Keys[0].KeyID != "" {
		return &failure{msg: fmt.Sprintf("this device's key is already registered; for another account use --profile NAME (e.g. qchat --profile %s keygen)", name)}
	}
	// The identity key certifies the first key: its seed is needed, so an
	// encrypted store asks for its passphrase.
	seeds, err := ks.seeds(a.getPassphrase)
	if err != nil {
		return err
	}
	kp, err := ks.Keys[0].pair(seeds)
	if err != nil {
		return err
	}
	ik, err := ks.identity(seeds)
	if err != nil {
		return err
	}
	if ik == nil { // a store from keygen before version 2
		if ik, err = pqcrypto.GenerateIdentityKey(nil); err != nil {
			return err
		}
		ks.Identity = pqcrypto.EncodeB64(ik.PublicKey())
		if err := a.writeStore(ks, withSeed(seeds, ik.PublicKey(), ik.Seed())); err != nil {
			return err
		}
	}
	password, err := a.secret(a.passwordFile, "QCHAT_PASSWORD", "password")
	if err != nil {
		return err
	}
	c, err := a.anonymous()
	if err != nil {
		return err
	}
	s, err := c.Register(ctx, name, string(password), ik, kp)
	if client.HasCode(err, client.CodeConflict) {
		return &failure{msg: fmt.Sprintf("the username %s is taken: choose another", name), code: client.CodeConflict, cause: err}
	}
	if err != nil {
		return fail(err, "cannot register %s", name)
	}
	ks.Keys[0].KeyID = s.User.PublicKey.Id
	if err := writeJSON(a.dir, keysFile, ks); err != nil {
		return err
	}
	if err := writeJSON(a.dir, sessionFile, &session{Server: c.ServerURL(), Token: s.Token, UserID: s.User.Id, Username: s.User.Username}); err != nil {
		return err
	}
	return a.out(map[string]any{"user": userJSON(s.User.Id, s.User.Username), "keyId": s.User.PublicKey.Id, "fingerprint": ks.Keys[0].fingerprint(),
		"identityFingerprint": pqcrypto.Fingerprint(ik.PublicKey())},
		"registered %s on %s and logged in\nidentity fingerprint %s\nkey fingerprint %s\nback your keys up with: %s backup create\n",
		s.User.Username, c.ServerURL(), pqcrypto.Fingerprint(ik.PublicKey()), ks.Keys[0].fingerprint(), a.me())
}

// writeStore writes ks with seeds, sealed under the store's passphrase if
// it has one (already asked for: the seeds were read with it).
func (a *app) writeStore(ks *keyStore, seeds map[string]string) error {
	var pp []byte
	if ks.Encrypted != nil {
		pp = a.passphrase
	}
	if err := ks.setSeeds(seeds, pp); err != nil {
		return err
	}
	if err := writeJSON(a.dir, keysFile, ks); err != nil {
		return err
	}
	a.seeds = seeds
	return nil
}

func userJSON(id, name string) map[string]string {
	return map[string]string{"id": id, "username": name}
}

// login opens a session. The token is written to session.json and never
// printed, not even with --json.
func (a *app) login(ctx context.Context, args []string) error {
	pos, err := a.start(ctx, a.flags("login"), args, spec{args: "USERNAME", min: 1, max: 1,
		about: "Opens a session on this device. The password is asked for."})
	if err != nil {
		return err
	}
	password, err := a.secret(a.passwordFile, "QCHAT_PASSWORD", "password")
	if err != nil {
		return err
	}
	c, err := a.anonymous()
	if err != nil {
		return err
	}
	s, err := c.Login(ctx, pos[0], string(password))
	if client.HasCode(err, client.CodeUnauthenticated) {
		return &failure{msg: "wrong username or password", code: client.CodeUnauthenticated, cause: err}
	}
	if err != nil {
		return fail(err, "cannot log in as %s", pos[0])
	}
	if err := writeJSON(a.dir, sessionFile, &session{Server: c.ServerURL(), Token: s.Token, UserID: s.User.Id, Username: s.User.Username}); err != nil {
		return err
	}
	a.client = c
	if err := a.afterLogin(ctx, &s.User); err != nil {
		return err
	}
	return a.out(map[string]any{"user": userJSON(s.User.Id, s.User.Username), "expiresAt": s.ExpiresAt},
		"logged in as %s on %s until %s\n", s.User.Username, c.ServerURL(), s.ExpiresAt.Local().Format(time.DateTime))
}

// afterLogin looks at this device's keys against the account's and says
// what to do when they do not match: a device without keys restores the
// backup (or, without one, resets the identity); a store from before
// version 2 gets its identity key now.
func (a *app) afterLogin(ctx context.Context, u *client.User) error {
	var ks keyStore
	ok, err := readJSON(a.dir, keysFile, &ks)
	if err != nil {
		return err
	}
	if !ok || len(ks.Keys) == 0 {
		a.noKeysHere(ctx, u)
		return nil
	}
	if ks.Identity == "" {
		if u.IdentityKey != nil {
			fmt.Fprintf(a.stderr, "note: this device has no identity key, but %s has one (set up on another device): restore your keys with %s backup restore\n", u.Username, a.me())
			return nil
		}
		// An account from before version 2: its first sign-in with this
		// client gives it an identity key (unlock does it).
		return a.unlock(ctx)
	}
	if u.IdentityKey != nil && u.IdentityKey.Key != ks.Identity {
		fmt.Fprintf(a.stderr, "note: %s's identity key is not this device's (it was reset on another device): restore the new keys with %s backup restore, or make new ones here with %s reset-identity\n",
			u.Username, a.me(), a.me())
		return nil
	}
	a.checkCurrentKey(u, &ks)
	return nil
}

// noKeysHere says what a person logging in on a device without keys can do.
func (a *app) noKeysHere(ctx context.Context, u *client.User) {
	reset := fmt.Sprintf("%s reset-identity makes new keys (it needs your password; your contacts will see that your identity changed, and messages sealed for your old keys stay unreadable)", a.me())
	if u.IdentityKey == nil {
		fmt.Fprintf(a.stderr, "note: this device has no keys for %s, so it cannot open their messages: %s\n", u.Username, reset)
		return
	}
	_, err := a.client.KeyBackup(ctx)
	switch {
	case err == nil:
		fmt.Fprintf(a.stderr, "note: this device has no keys for %s yet: restore them from your key backup with %s backup restore\n", u.Username, a.me())
	case client.HasCode(err, client.CodeNotFound):
		fmt.Fprintf(a.stderr, "note: this device has no keys for %s and there is no key backup. If your keys are on another device, run %s backup create there, then %s backup restore here; if they are lost, %s\n",
			u.Username, a.me(), a.me(), reset)
	default:
		fmt.Fprintf(a.stderr, "note: this device has no keys for %s (and the key backup could not be checked: %s): try %s backup restore\n", u.Username, reason(err), a.me())
	}
}

// checkCurrentKey tells a person logging in on a device whose keys are
// older than the account's (rotated on another device) what to do.
func (a *app) checkCurrentKey(u *client.User, ks *keyStore) {
	if u.PublicKey == nil {
		return
	}
	for _, k := range ks.Keys {
		if k.PublicKey == u.PublicKey.Key {
			return // rotated here, or an older copy of this store: it opens
		}
	}
	fmt.Fprintf(a.stderr, "note: %s's current key was made on another device, so new messages cannot be opened here: run %s backup restore to fetch it (if that device backed it up), or %s rotate-key to publish a new key from here\n",
		u.Username, a.me(), a.me())
}

// upgradeIdentity gives an account from before version 2, signed in with a
// store that has no identity key, its identity key: a new one, published
// with a new KEM key it certifies. The new secret keys are saved before the
// server learns of them.
func (a *app) upgradeIdentity(ctx context.Context, ks *keyStore, seeds map[string]string) (*pqcrypto.IdentityKey, error) {
	me, err := a.client.Me(ctx)
	if err != nil {
		return nil, fail(err, "cannot read your account")
	}
	if me.IdentityKey != nil {
		return nil, &failure{msg: fmt.Sprintf("this device has no identity key, but %s has one (set up on another device): restore your keys with %s backup restore", me.Username, a.me())}
	}
	alg := pqcrypto.MLKEM768
	if len(ks.Keys) > 0 {
		alg = ks.Keys[0].Algorithm
	}
	ik, kp, err := newKeys(alg)
	if err != nil {
		return nil, err
	}
	u, err := a.publishPending(ks, seeds, ik, kp, func() (*client.User, error) { return a.client.SetIdentityKey(ctx, ik, kp, "") })
	if err != nil {
		return nil, fail(err, "cannot set up your identity key")
	}
	a.ring[u.PublicKey.Id] = kp
	fmt.Fprintf(a.stderr, "note: set up your identity key (fingerprint %s) with a new key it certifies; your contacts will be told. Back your keys up with %s backup create\n",
		pqcrypto.Fingerprint(ik.PublicKey()), a.me())
	return ik, nil
}

// publishPending saves kp (and ik, if not nil, as the new identity key) in
// the store, then publishes them with publish; if that fails, the store is
// put back as it was. The secret keys are on disk before the server learns
// the public ones, so a failure in between never leaves the account with a
// key whose secret is lost.
func (a *app) publishPending(ks *keyStore, seeds map[string]string, ik *pqcrypto.IdentityKey, kp *pqcrypto.KeyPair, publish func() (*client.User, error)) (*client.User, error) {
	oldIdentity, oldKeys := ks.Identity, ks.Keys
	next := withSeed(seeds, kp.PublicKey, kp.Seed)
	if ik != nil {
		next = withSeed(next, ik.PublicKey(), ik.Seed())
		ks.Identity = pqcrypto.EncodeB64(ik.PublicKey())
	}
	ks.Keys = append([]storedKey{{Algorithm: kp.Algorithm, PublicKey: pqcrypto.EncodeB64(kp.PublicKey), CreatedAt: time.Now().UTC()}}, oldKeys...)
	if err := a.writeStore(ks, next); err != nil {
		return nil, err
	}
	u, err := publish()
	if err != nil {
		ks.Identity, ks.Keys = oldIdentity, oldKeys
		if werr := a.writeStore(ks, seeds); werr != nil {
			return nil, fmt.Errorf("%w (and restoring %s: %v)", err, keysFile, werr)
		}
		return nil, err
	}
	ks.Keys[0].KeyID = u.PublicKey.Id
	if err := writeJSON(a.dir, keysFile, ks); err != nil {
		return nil, err
	}
	return u, nil
}

func (a *app) logout(ctx context.Context, args []string) error {
	if _, err := a.start(ctx, a.flags("logout"), args, spec{signIn: true, about: "Ends the session on the server and forgets its token here."}); err != nil {
		return err
	}
	s := a.session
	// An expired or revoked session is as logged out as it gets.
	if err := a.client.Logout(ctx); err != nil && !client.HasCode(err, client.CodeUnauthenticated) {
		return fail(err, "cannot log out")
	}
	s.Token = ""
	if err := writeJSON(a.dir, sessionFile, s); err != nil {
		return err
	}
	return a.out(map[string]any{"loggedOut": true, "username": s.Username}, "logged out %s\n", s.Username)
}

// fingerprint shows my current key's fingerprint, or a user's. A user's is
// computed here from the key bytes rather than taken from the server's
// fingerprint field: comparing it out of band is what detects a server that
// substitutes keys.
func (a *app) fingerprint(ctx context.Context, args []string) error {
	pos, err := a.start(ctx, a.flags("fingerprint"), args, spec{args: "[@user]", max: 1,
		about: "Shows the fingerprints of my identity key and current key, or of a user's. Safety numbers\n" +
			"(qchat verify @user) compare both users' identity keys at once."})
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		ks, err := a.loadKeys()
		if err != nil {
			return err
		}
		k := ks.Keys[0]
		s, _ := a.loadSession()
		out := map[string]any{"username": s.Username, "keyId": k.KeyID, "algorithm": k.Algorithm, "fingerprint": k.fingerprint()}
		if ks.Identity == "" {
			return a.out(out, "my key (%s)\n%s\n", k.Algorithm, k.fingerprint())
		}
		out["identityFingerprint"] = fingerprintB64(ks.Identity)
		return a.out(out, "my identity key\n%s\nmy key (%s)\n%s\n", fingerprintB64(ks.Identity), k.Algorithm, k.fingerprint())
	}
	c, _, err := a.authed()
	if err != nil {
		return err
	}
	u, err := a.user(ctx, c, pos[0])
	if err != nil {
		return err
	}
	if u.PublicKey == nil {
		return &failure{msg: u.Username + " has no key"}
	}
	pub, err := pqcrypto.DecodeB64(u.PublicKey.Key)
	if err != nil {
		return fmt.Errorf("%s's key: %w", u.Username, err)
	}
	fp := pqcrypto.Fingerprint(pub)
	out := map[string]any{"username": u.Username, "keyId": u.PublicKey.Id, "algorithm": u.PublicKey.Algorithm, "fingerprint": fp}
	if u.IdentityKey == nil {
		return a.out(out, "%s's key (%s)\n%s\n", u.Username, u.PublicKey.Algorithm, fp)
	}
	// Computed here from the key, like the KEM key's: the server's
	// fingerprint field is the server's word. verify compares both
	// identity keys at once, with the pinned one.
	ifp := fingerprintB64(u.IdentityKey.Key)
	out["identityFingerprint"] = ifp
	return a.out(out, "%s's identity key, as the server presents it (qchat verify @%s compares the pinned one)\n%s\n%s's key (%s)\n%s\n",
		u.Username, u.Username, ifp, u.Username, u.PublicKey.Algorithm, fp)
}

// rotateKey replaces the current key with one certified by the identity
// key. If the account has a key backup, the backup is rewritten with the
// new key, which needs its passphrase or recovery key: qchat keeps nothing
// that opens the backup (a stolen device would otherwise be able to read
// every backup written after the theft), so it asks, and checks the secret
// on the current backup before changing anything.
func (a *app) rotateKey(ctx context.Context, args []string) error {
	fs := a.flags("rotate-key")
	algName := fs.String("algorithm", "", "ML_KEM_768 or X_WING (default: the current key's)")
	noBackup := fs.Bool("no-backup", false, "do not rewrite the key backup (then it cannot open messages sealed for the new key)")
	if _, err := a.start(ctx, fs, args, spec{signIn: true, keys: true,
		about: "Makes a new key pair, certified by your identity key, and publishes it as the account's current key.\n" +
			"Older keys stay on this device, so older messages still open. If you have a key backup, its\n" +
			"passphrase or recovery key is asked for and the backup is rewritten with the new key."}); err != nil {
		return err
	}
	ks, seeds, err := a.unlocked()
	if err != nil {
		return err
	}
	alg := ks.Keys[0].Algorithm
	if *algName != "" {
		if alg, err = parseAlgorithm(*algName); err != nil {
			return err
		}
	}
	secret := ""
	if !*noBackup {
		if secret, err = a.currentBackupSecret(ctx, "to rewrite it with the new key; --no-backup skips that"); err != nil {
			return err
		}
	}
	kp, err := pqcrypto.GenerateKeyPair(alg, nil)
	if err != nil {
		return err
	}
	u, err := a.publishPending(ks, seeds, nil, kp, func() (*client.User, error) { return a.client.RotateKey(ctx, kp) })
	if err != nil {
		return fail(err, "cannot publish the new key")
	}
	backedUp := false
	if secret != "" {
		if err := a.writeBackup(ctx, secret); err != nil {
			fmt.Fprintf(a.stderr, "warning: the new key is published, but the key backup could not be rewritten (%s): run %s backup create\n", reason(err), a.me())
		} else {
			backedUp = true
		}
	}
	kept := fmt.Sprintf("%d keys kept, so older messages still open", len(ks.Keys))
	if backedUp {
		kept += "; key backup rewritten"
	}
	return a.out(map[string]any{"keyId": u.PublicKey.Id, "algorithm": alg, "fingerprint": ks.Keys[0].fingerprint(), "keys": len(ks.Keys), "backup": backedUp},
		"new current key (%s)\nfingerprint %s\n%s\n", alg, ks.Keys[0].fingerprint(), kept)
}

// unlocked reads the key store again with the seeds this process unlocked
// or wrote last: an encrypted store is not unsealed again (Argon2id with
// 64 MiB, a noticeable pause each time).
func (a *app) unlocked() (*keyStore, map[string]string, error) {
	ks, err := a.loadKeys()
	if err != nil {
		return nil, nil, err
	}
	if a.seeds != nil {
		return ks, a.seeds, nil
	}
	seeds, err := ks.seeds(a.getPassphrase)
	if err != nil {
		return nil, nil, err
	}
	return ks, seeds, nil
}

// newKeys makes a fresh identity key and a KEM key pair of alg, which it
// will certify: what an account (or its reset) starts with.
func newKeys(alg pqcrypto.Algorithm) (*pqcrypto.IdentityKey, *pqcrypto.KeyPair, error) {
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		return nil, nil, err
	}
	kp, err := pqcrypto.GenerateKeyPair(alg, nil)
	if err != nil {
		return nil, nil, err
	}
	return ik, kp, nil
}
