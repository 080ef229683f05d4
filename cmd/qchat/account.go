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
func (a *app) keygen(_ context.Context, args []string) error {
	fs := a.flags("keygen")
	algName := fs.String("algorithm", string(pqcrypto.MLKEM768), "ML_KEM_768 or X_WING")
	encrypt := fs.Bool("encrypt", false, "seal the secret key under a passphrase (prompted unless given)")
	force := fs.Bool("force", false, "replace an existing key store; its secret keys are lost")
	if _, err := parse(fs, args, 0, 0, "[--algorithm ML_KEM_768|X_WING] [--encrypt] [--force]"); err != nil {
		return err
	}
	alg, err := parseAlgorithm(*algName)
	if err != nil {
		return err
	}
	var old keyStore
	if ok, err := readJSON(a.dir, keysFile, &old); err != nil {
		return err
	} else if ok && len(old.Keys) > 0 && !*force {
		return fmt.Errorf("%s already holds a key (fingerprint %s); a registered user wants qchat rotate-key, --force discards it",
			filepath.Join(a.dir, keysFile), old.Keys[0].fingerprint())
	}
	var pp []byte
	if *encrypt || a.passphraseFile != "" || a.getenv("QCHAT_PASSPHRASE") != "" {
		if pp, err = a.getPassphrase(); err != nil {
			return err
		}
		if len(pp) == 0 {
			return usageErr("empty passphrase")
		}
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

// register creates the account for the key from keygen. Only the public key
// is sent; no passphrase is needed.
func (a *app) register(ctx context.Context, args []string) error {
	fs := a.flags("register")
	pos, err := parse(fs, args, 1, 1, "USERNAME [--password-file F]")
	if err != nil {
		return err
	}
	ks, err := a.loadKeys()
	if err != nil {
		return err
	}
	if ks.Keys[0].KeyID != "" {
		return fmt.Errorf("the key in %s is already registered (key %s); one config dir holds one account", a.dir, ks.Keys[0].KeyID)
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
	s, err := c.Register(ctx, pos[0], string(password), &pqcrypto.KeyPair{Algorithm: ks.Keys[0].Algorithm, PublicKey: pub})
	if err != nil {
		return fmt.Errorf("register %s: %w", pos[0], err)
	}
	ks.Keys[0].KeyID = s.User.PublicKey.Id
	if err := writeJSON(a.dir, keysFile, ks); err != nil {
		return err
	}
	if err := writeJSON(a.dir, sessionFile, &session{Server: c.ServerURL(), Token: s.Token, UserID: s.User.Id, Username: s.User.Username}); err != nil {
		return err
	}
	return a.out(map[string]any{"user": userJSON(s.User.Id, s.User.Username), "keyId": s.User.PublicKey.Id, "fingerprint": ks.Keys[0].fingerprint()},
		"registered %s on %s and logged in\nkey %s, fingerprint %s\n", s.User.Username, c.ServerURL(), s.User.PublicKey.Id, ks.Keys[0].fingerprint())
}

func userJSON(id, name string) map[string]string {
	return map[string]string{"id": id, "username": name}
}

// login opens a session. The token is written to session.json and never
// printed, not even with --json.
func (a *app) login(ctx context.Context, args []string) error {
	fs := a.flags("login")
	pos, err := parse(fs, args, 1, 1, "USERNAME [--password-file F]")
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
	if err != nil {
		return fmt.Errorf("login %s: %w", pos[0], err)
	}
	if err := writeJSON(a.dir, sessionFile, &session{Server: c.ServerURL(), Token: s.Token, UserID: s.User.Id, Username: s.User.Username}); err != nil {
		return err
	}
	a.checkCurrentKey(&s.User)
	return a.out(map[string]any{"user": userJSON(s.User.Id, s.User.Username), "expiresAt": s.ExpiresAt},
		"logged in as %s on %s until %s\n", s.User.Username, c.ServerURL(), s.ExpiresAt.Local().Format(time.DateTime))
}

// checkCurrentKey warns when the account's current key is not the newest one
// here: messages sealed for it will not open on this machine.
func (a *app) checkCurrentKey(u *client.User) {
	ks, err := a.loadKeys()
	if err != nil {
		fmt.Fprintf(a.stderr, "warning: %v: messages cannot be decrypted here\n", err)
		return
	}
	if u.PublicKey == nil || u.PublicKey.Key != ks.Keys[0].PublicKey {
		fmt.Fprintf(a.stderr, "warning: %s's current key on the server is not this machine's current key (%s): new messages may not open here\n",
			u.Username, ks.Keys[0].fingerprint())
	}
}

func (a *app) logout(ctx context.Context, args []string) error {
	fs := a.flags("logout")
	if _, err := parse(fs, args, 0, 0, ""); err != nil {
		return err
	}
	c, s, err := a.authed()
	if err != nil {
		return err
	}
	// An expired or revoked session is as logged out as it gets.
	if err := c.Logout(ctx); err != nil && !client.HasCode(err, client.CodeUnauthenticated) {
		return fmt.Errorf("logout: %w", err)
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
	fs := a.flags("fingerprint")
	pos, err := parse(fs, args, 0, 1, "[@user]")
	if err != nil {
		return err
	}
	switch len(pos) {
	case 0:
		ks, err := a.loadKeys()
		if err != nil {
			return err
		}
		k := ks.Keys[0]
		s, _ := a.loadSession()
		return a.out(map[string]any{"username": s.Username, "keyId": k.KeyID, "algorithm": k.Algorithm, "fingerprint": k.fingerprint()},
			"my key %s (%s)\n%s\n", k.label(), k.Algorithm, k.fingerprint())
	case 1:
		c, _, err := a.authed()
		if err != nil {
			return err
		}
		u, err := c.UserByUsername(ctx, trimAt(pos[0]))
		if err != nil {
			return err
		}
		if u.PublicKey == nil {
			return fmt.Errorf("%s has no key", u.Username)
		}
		pub, err := pqcrypto.DecodeB64(u.PublicKey.Key)
		if err != nil {
			return fmt.Errorf("%s's key: %w", u.Username, err)
		}
		fp := pqcrypto.Fingerprint(pub)
		return a.out(map[string]any{"username": u.Username, "keyId": u.PublicKey.Id, "algorithm": u.PublicKey.Algorithm, "fingerprint": fp},
			"%s's key %s (%s)\n%s\n", u.Username, u.PublicKey.Id, u.PublicKey.Algorithm, fp)
	}
	return usageErr("qchat fingerprint [@user]")
}

// rotateKey replaces the current key. The new secret key is saved before the
// server learns the public key, so a failure in between never leaves the
// account with a key whose secret is lost.
func (a *app) rotateKey(ctx context.Context, args []string) error {
	fs := a.flags("rotate-key")
	algName := fs.String("algorithm", "", "ML_KEM_768 or X_WING (default: the current key's)")
	if _, err := parse(fs, args, 0, 0, "[--algorithm ML_KEM_768|X_WING]"); err != nil {
		return err
	}
	c, _, err := a.authed()
	if err != nil {
		return err
	}
	ks, err := a.loadKeys()
	if err != nil {
		return err
	}
	alg := ks.Keys[0].Algorithm
	if *algName != "" {
		if alg, err = parseAlgorithm(*algName); err != nil {
			return err
		}
	}
	seeds, err := ks.seeds(a.getPassphrase)
	if err != nil {
		return err
	}
	var pp []byte
	if ks.Encrypted != nil {
		pp = a.passphrase
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
	u, err := c.RotateKey(ctx, kp)
	if err != nil {
		// Take the pending key out again; the old one stays current.
		ks.Keys = ks.Keys[1:]
		if werr := writeJSON(a.dir, keysFile, ks); werr != nil {
			return fmt.Errorf("rotate key: %w (and restoring %s: %v)", err, keysFile, werr)
		}
		return fmt.Errorf("rotate key: %w", err)
	}
	ks.Keys[0].KeyID = u.PublicKey.Id
	if err := writeJSON(a.dir, keysFile, ks); err != nil {
		return err
	}
	return a.out(map[string]any{"keyId": u.PublicKey.Id, "algorithm": alg, "fingerprint": ks.Keys[0].fingerprint(), "keys": len(ks.Keys)},
		"new current key %s (%s)\nfingerprint %s\n%d keys kept, so older messages still open\n", u.PublicKey.Id, alg, ks.Keys[0].fingerprint(), len(ks.Keys))
}
