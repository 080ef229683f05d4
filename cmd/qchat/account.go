package main

import (
	"context"
	"errors"
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
	kp, err := pqcrypto.GenerateKeyPair(alg, nil)
	if err != nil {
		return err
	}
	pub := pqcrypto.EncodeB64(kp.PublicKey)
	ks := keyStore{Version: 1, Keys: []storedKey{{Algorithm: alg, PublicKey: pub, CreatedAt: time.Now().UTC()}}}
	if err := ks.setSeeds(map[string]string{pub: pqcrypto.EncodeB64(kp.Seed)}, pp); err != nil {
		return err
	}
	if err := writeJSON(a.dir, keysFile, &ks); err != nil {
		return err
	}
	path := filepath.Join(a.dir, keysFile)
	fp := pqcrypto.Fingerprint(kp.PublicKey)
	how := "unencrypted; protect it like a password, or use --encrypt"
	if pp != nil {
		how = "sealed under your passphrase"
	}
	return a.out(map[string]any{"algorithm": alg, "fingerprint": fp, "file": path, "encrypted": pp != nil},
		"generated a %s key pair\nfingerprint %s\nsecret key saved to %s (%s)\n", alg, fp, path, how)
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
	pub, err := pqcrypto.DecodeB64(ks.Keys[0].PublicKey)
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	password, err := a.secret(a.passwordFile, "QCHAT_PASSWORD", "password")
	if err != nil {
		return err
	}
	c, err := a.anonymous()
	if err != nil {
		return err
	}
	// Register needs the public half only.
	s, err := c.Register(ctx, name, string(password), &pqcrypto.KeyPair{Algorithm: ks.Keys[0].Algorithm, PublicKey: pub})
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
	return a.out(map[string]any{"user": userJSON(s.User.Id, s.User.Username), "keyId": s.User.PublicKey.Id, "fingerprint": ks.Keys[0].fingerprint()},
		"registered %s on %s and logged in\nfingerprint %s\n", s.User.Username, c.ServerURL(), ks.Keys[0].fingerprint())
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
	a.checkCurrentKey(&s.User)
	return a.out(map[string]any{"user": userJSON(s.User.Id, s.User.Username), "expiresAt": s.ExpiresAt},
		"logged in as %s on %s until %s\n", s.User.Username, c.ServerURL(), s.ExpiresAt.Local().Format(time.DateTime))
}

// checkCurrentKey tells a person logging in on a device that cannot open
// their messages what to do about it. Key backups do not exist yet, so the
// one remedy is a new key published from here.
func (a *app) checkCurrentKey(u *client.User) {
	remedy := fmt.Sprintf("run %s rotate-key to publish a new key from this device; messages sealed before that stay unreadable here", a.me())
	var ks keyStore
	ok, err := readJSON(a.dir, keysFile, &ks)
	if err != nil || !ok || len(ks.Keys) == 0 {
		fmt.Fprintf(a.stderr, "note: this device has no key for %s, so it cannot open their messages: %s\n", u.Username, remedy)
		return
	}
	if u.PublicKey == nil || u.PublicKey.Key == ks.Keys[0].PublicKey {
		return
	}
	for _, k := range ks.Keys {
		if k.PublicKey == u.PublicKey.Key {
			return // rotated here, or an older copy of this store: it opens
		}
	}
	fmt.Fprintf(a.stderr, "note: %s's current key was made on another device, so new messages cannot be opened here: %s\n", u.Username, remedy)
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
		about: "Shows the fingerprint of my current key, or of a user's: compare it with them in person or by phone."})
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
		return a.out(map[string]any{"username": s.Username, "keyId": k.KeyID, "algorithm": k.Algorithm, "fingerprint": k.fingerprint()},
			"my key (%s)\n%s\n", k.Algorithm, k.fingerprint())
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
	return a.out(map[string]any{"username": u.Username, "keyId": u.PublicKey.Id, "algorithm": u.PublicKey.Algorithm, "fingerprint": fp},
		"%s's key (%s)\n%s\n", u.Username, u.PublicKey.Algorithm, fp)
}

// rotateKey replaces the current key. The new secret key is saved before the
// server learns the public key, so a failure in between never leaves the
// account with a key whose secret is lost. On a device without a key store
// (a new machine) it starts one: the way to read new messages there.
func (a *app) rotateKey(ctx context.Context, args []string) error {
	fs := a.flags("rotate-key")
	algName := fs.String("algorithm", "", "ML_KEM_768 or X_WING (default: the current key's)")
	encrypt := fs.Bool("encrypt", false, "on a device without keys: seal the new key store under a passphrase")
	if _, err := a.start(ctx, fs, args, spec{signIn: true,
		about: "Makes a new key pair and publishes it as the account's current key. Older keys stay on this device, so older messages still open."}); err != nil {
		return err
	}
	ks, err := a.loadKeys()
	var noKeys errNoKeys
	fresh := errors.As(err, &noKeys)
	if fresh {
		ks, err = &keyStore{Version: 1}, nil
	}
	if err != nil {
		return err
	}
	alg := pqcrypto.MLKEM768
	if len(ks.Keys) > 0 {
		alg = ks.Keys[0].Algorithm
	}
	if *algName != "" {
		if alg, err = parseAlgorithm(*algName); err != nil {
			return err
		}
	}
	var seeds map[string]string
	var pp []byte
	if fresh {
		if pp, err = a.newPassphrase(*encrypt); err != nil {
			return err
		}
	} else {
		if seeds, err = ks.seeds(a.getPassphrase); err != nil {
			return err
		}
		if ks.Encrypted != nil {
			pp = a.passphrase
		}
	}
	kp, err := pqcrypto.GenerateKeyPair(alg, nil)
	if err != nil {
		return err
	}
	pub := pqcrypto.EncodeB64(kp.PublicKey)
	next := make(map[string]string, len(seeds)+1)
	for k, v := range seeds {
		next[k] = v
	}
	next[pub] = pqcrypto.EncodeB64(kp.Seed)
	ks.Keys = append([]storedKey{{Algorithm: alg, PublicKey: pub, CreatedAt: time.Now().UTC()}}, ks.Keys...)
	if err := ks.setSeeds(next, pp); err != nil {
		return err
	}
	if err := writeJSON(a.dir, keysFile, ks); err != nil {
		return err
	}
	u, err := a.client.RotateKey(ctx, kp)
	if err != nil {
		// Take the pending key out again; the old one stays current.
		ks.Keys = ks.Keys[1:]
		delete(next, pub)
		if serr := ks.setSeeds(next, pp); serr != nil {
			return fmt.Errorf("rotate key: %w (and restoring %s: %v)", err, keysFile, serr)
		}
		if werr := writeJSON(a.dir, keysFile, ks); werr != nil {
			return fmt.Errorf("rotate key: %w (and restoring %s: %v)", err, keysFile, werr)
		}
		return fail(err, "cannot publish the new key")
	}
	ks.Keys[0].KeyID = u.PublicKey.Id
	if err := writeJSON(a.dir, keysFile, ks); err != nil {
		return err
	}
	kept := fmt.Sprintf("%d keys kept, so older messages still open", len(ks.Keys))
	if fresh {
		kept = "messages sealed before now were for keys this device does not have and stay unreadable here"
	}
	return a.out(map[string]any{"keyId": u.PublicKey.Id, "algorithm": alg, "fingerprint": ks.Keys[0].fingerprint(), "keys": len(ks.Keys)},
		"new current key (%s)\nfingerprint %s\n%s\n", alg, ks.Keys[0].fingerprint(), kept)
}
