package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/term"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

// The key backup (envelope v2): every secret key, sealed with a secret the
// server never sees, stored on the server so that a new device can read the
// whole history. The secret is a passphrase of at least 12 characters or a
// generated recovery key, never the account password (which the server sees
// at every login).

const backupSecretEnv = "QCHAT_BACKUP_SECRET"

// backupSecret reads a backup secret like the password: --backup-secret-file,
// QCHAT_BACKUP_SECRET, a prompt without echo, or a line of stdin. A new one
// typed at a terminal is asked for twice.
func (a *app) backupSecret(prompt string, confirm bool) (string, error) {
	s, err := a.secret(a.backupFile, backupSecretEnv, prompt)
	if err != nil {
		return "", err
	}
	if f, ok := a.stdin.(*os.File); confirm && ok && a.backupFile == "" && a.getenv(backupSecretEnv) == "" && term.IsTerminal(int(f.Fd())) {
		again, err := a.secret("", "", "the same again")
		if err != nil {
			return "", err
		}
		if string(again) != string(s) {
			return "", &failure{msg: "the two entries differ: nothing was changed"}
		}
	}
	return string(s), nil
}

// backupOf is the backup of this device's keys: the identity key and every
// registered KEM key, plus those of prior (the backup being replaced) that
// this device lacks, so that rewriting a backup never drops a key another
// device put in it.
func backupOf(ks *keyStore, seeds map[string]string, prior *pqcrypto.Backup) (*pqcrypto.Backup, error) {
	ik, err := ks.identity(seeds)
	if err != nil {
		return nil, err
	}
	if ik == nil {
		return nil, errors.New("this device has no identity key to back up")
	}
	b := &pqcrypto.Backup{IdentitySeed: ik.Seed()}
	have := map[string]bool{}
	for _, k := range ks.Keys {
		if k.KeyID == "" {
			continue
		}
		kp, err := k.pair(seeds)
		if err != nil {
			return nil, err
		}
		b.KEMKeys = append(b.KEMKeys, pqcrypto.BackupKEMKey{KeyID: k.KeyID, Algorithm: kp.Algorithm, Seed: kp.Seed})
		have[k.KeyID] = true
	}
	if prior != nil {
		for _, k := range prior.KEMKeys {
			if !have[k.KeyID] {
				b.KEMKeys = append(b.KEMKeys, k)
			}
		}
	}
	return b, nil
}

// currentBackup asks for the secret of the account's existing backup and
// opens the backup with it, so that a wrong secret is caught before anything
// changes. It returns "" if the account has no backup.
func (a *app) currentBackup(ctx context.Context, why string) (string, *pqcrypto.Backup, error) {
	if _, err := a.client.KeyBackup(ctx); client.HasCode(err, client.CodeNotFound) {
		return "", nil, nil
	} else if err != nil {
		return "", nil, fail(err, "cannot check your key backup")
	}
	secret, err := a.backupSecret("key backup passphrase or recovery key ("+why+")", false)
	if err != nil {
		return "", nil, err
	}
	prior, err := a.client.OpenKeyBackup(ctx, secret)
	if errors.Is(err, pqcrypto.ErrCannotOpenBackup) {
		return "", nil, &failure{msg: "cannot open your key backup with that passphrase or recovery key: nothing was changed", cause: err}
	}
	if err != nil {
		return "", nil, fail(err, "cannot read your key backup")
	}
	return secret, prior, nil
}

// currentBackupSecret is currentBackup for rotate-key, which keeps the
// keys of the old backup in the new one.
func (a *app) currentBackupSecret(ctx context.Context, why string) (string, error) {
	secret, prior, err := a.currentBackup(ctx, why)
	a.priorBackup = prior
	return secret, err
}

// writeBackup seals this device's keys (and those only the replaced backup
// had) under secret and stores them on the server.
func (a *app) writeBackup(ctx context.Context, secret string) error {
	ks, seeds, err := a.unlocked()
	if err != nil {
		return err
	}
	b, err := backupOf(ks, seeds, a.priorBackup)
	if err != nil {
		return err
	}
	return a.client.StoreKeyBackup(ctx, secret, b)
}

func (a *app) backupCreate(ctx context.Context, args []string) error {
	fs := a.flags("backup create")
	recovery := fs.Bool("recovery-key", false, "generate a recovery key (shown once) instead of asking for a passphrase")
	if _, err := a.start(ctx, fs, args, spec{signIn: true, keys: true,
		about: "Seals your secret keys with a passphrase of 12 characters or more (or, with --recovery-key, a generated\n" +
			"recovery key shown once) and stores them on the server, replacing any earlier backup. The server never\n" +
			"sees the passphrase; without it the backup cannot be opened, by anyone. It is not your password."}); err != nil {
		return err
	}
	var secret string
	var err error
	if *recovery {
		if secret, err = pqcrypto.GenerateRecoveryKey(nil); err != nil {
			return err
		}
	} else {
		if secret, err = a.backupSecret(fmt.Sprintf("new key backup passphrase (%d characters or more)", pqcrypto.MinPassphraseLength), true); err != nil {
			return err
		}
		if pqcrypto.ValidatePassphrase(secret) != nil {
			return &failure{msg: fmt.Sprintf("the backup passphrase must be at least %d characters (or use --recovery-key for a generated one)", pqcrypto.MinPassphraseLength), code: "USAGE"}
		}
	}
	if err := a.writeBackup(ctx, secret); err != nil {
		return fail(err, "cannot store the key backup")
	}
	ks, _ := a.loadKeys()
	n := 0
	for _, k := range ks.Keys {
		if k.KeyID != "" {
			n++
		}
	}
	out := map[string]any{"backup": true, "keys": n}
	if *recovery {
		out["recoveryKey"] = secret
		return a.out(out, "key backup stored (your identity key and %s)\nrecovery key, shown this once; write it down and keep it safe:\n\n    %s\n\nrestore on a new device with: %s login USERNAME, then %s backup restore\n",
			plural(n, "key", "keys"), secret, a.me(), a.me())
	}
	return a.out(out, "key backup stored (your identity key and %s)\nrestore on a new device with: %s login USERNAME, then %s backup restore\n",
		plural(n, "key", "keys"), a.me(), a.me())
}

func (a *app) backupDelete(ctx context.Context, args []string) error {
	if _, err := a.start(ctx, a.flags("backup delete"), args, spec{signIn: true,
		about: "Deletes your key backup from the server. Keys on your devices stay."}); err != nil {
		return err
	}
	if err := a.client.DeleteKeyBackup(ctx); err != nil {
		return fail(err, "cannot delete the key backup")
	}
	return a.out(map[string]any{"backup": false}, "key backup deleted\n")
}

func (a *app) backupRestore(ctx context.Context, args []string) error {
	fs := a.flags("backup restore")
	encrypt := fs.Bool("encrypt", false, "on a device without keys: seal the restored key store under a passphrase")
	if _, err := a.start(ctx, fs, args, spec{signIn: true,
		about: "Fetches your key backup and opens it here with its passphrase or recovery key (asked for):\n" +
			"your identity key and every key in it, so that this device reads your whole history."}); err != nil {
		return err
	}
	me, err := a.client.Me(ctx)
	if err != nil {
		return fail(err, "cannot read your account")
	}
	if _, err := a.client.KeyBackup(ctx); client.HasCode(err, client.CodeNotFound) {
		return &failure{msg: fmt.Sprintf("%s has no key backup: make one with %s backup create on a device that has your keys (or, if they are lost, %s reset-identity)", me.Username, a.me(), a.me()),
			code: client.CodeNotFound, cause: err}
	} else if err != nil {
		return fail(err, "cannot fetch your key backup")
	}
	secret, err := a.backupSecret("key backup passphrase or recovery key", false)
	if err != nil {
		return err
	}
	b, err := a.client.OpenKeyBackup(ctx, secret)
	if errors.Is(err, pqcrypto.ErrCannotOpenBackup) {
		return &failure{msg: "cannot open key backup: wrong passphrase or recovery key (or a backup that was tampered with)", cause: err}
	}
	if err != nil {
		return fail(err, "cannot fetch your key backup")
	}
	ik, err := pqcrypto.IdentityKeyFromSeed(b.IdentitySeed)
	if err != nil {
		return err
	}
	ikPub := pqcrypto.EncodeB64(ik.PublicKey())
	if me.IdentityKey == nil || me.IdentityKey.Key != ikPub {
		return &failure{msg: fmt.Sprintf("the backup holds identity key %s, which is not your account's current one: it was made before your identity was reset; make a new backup on a device with your current keys",
			pqcrypto.Fingerprint(ik.PublicKey()))}
	}

	ks, err := a.loadKeys()
	var seeds map[string]string
	var pp []byte
	var noKeys errNoKeys
	switch {
	case errors.As(err, &noKeys):
		ks = &keyStore{Version: 1}
		if pp, err = a.newPassphrase(*encrypt); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if seeds, err = ks.seeds(a.getPassphrase); err != nil {
			return err
		}
		if ks.Encrypted != nil {
			pp = a.passphrase
		}
		if ks.Identity != "" && ks.Identity != ikPub {
			return &failure{msg: "this device holds another identity key than the backup's: nothing was changed (use --profile NAME for another account)"}
		}
	}
	serverKeys, err := a.client.UserKeys(ctx, me.Id)
	if err != nil {
		return fail(err, "cannot list your keys")
	}
	rank := map[string]int{} // key id → position in the server's list, newest first
	created := map[string]time.Time{}
	for i, k := range serverKeys {
		rank[k.Id], created[k.Id] = i, k.CreatedAt
	}
	have := map[string]int{}
	for i, k := range ks.Keys {
		have[k.PublicKey] = i
	}
	next := withSeed(seeds, ik.PublicKey(), ik.Seed())
	restored := 0
	for _, bk := range b.KEMKeys {
		kp, err := pqcrypto.KeyPairFromSeed(bk.Algorithm, bk.Seed)
		if err != nil {
			return &failure{msg: "cannot open key backup: it holds a damaged key", cause: err}
		}
		pub := pqcrypto.EncodeB64(kp.PublicKey)
		next = withSeed(next, kp.PublicKey, kp.Seed)
		if i, ok := have[pub]; ok {
			ks.Keys[i].KeyID = bk.KeyID
			continue
		}
		at := created[bk.KeyID]
		if at.IsZero() {
			at = time.Now().UTC()
		}
		ks.Keys = append(ks.Keys, storedKey{KeyID: bk.KeyID, Algorithm: bk.Algorithm, PublicKey: pub, CreatedAt: at})
		have[pub] = len(ks.Keys) - 1
		restored++
	}
	// Keys[0] is the current key: order as the server does, newest first;
	// keys it does not list (none, normally) go last.
	slices.SortStableFunc(ks.Keys, func(x, y storedKey) int {
		rx, okx := rank[x.KeyID]
		ry, oky := rank[y.KeyID]
		switch {
		case okx && oky:
			return rx - ry
		case okx:
			return -1
		case oky:
			return 1
		}
		return 0
	})
	ks.Identity = ikPub
	if err := ks.setSeeds(next, pp); err != nil {
		return err
	}
	if err := writeJSON(a.dir, keysFile, ks); err != nil {
		return err
	}
	a.client.SetIdentity(ik)
	if err := a.client.AcceptIdentity(me); err != nil {
		return err
	}
	if err := a.client.MarkVerified(me); err != nil {
		return err
	}
	a.checkCurrentKey(me, ks)
	return a.out(map[string]any{"restored": restored, "keys": len(ks.Keys), "identityFingerprint": pqcrypto.Fingerprint(ik.PublicKey())},
		"restored your identity key (fingerprint %s) and %s from the key backup; this device now opens your history\n",
		pqcrypto.Fingerprint(ik.PublicKey()), plural(restored, "key", "keys"))
}

// resetIdentity replaces the account's identity key when every device and
// the backup are lost: a new identity key and a new KEM key it certifies.
// It needs the account password, and every contact's client warns them
// and seals nothing to this account until they accept the new key.
func (a *app) resetIdentity(ctx context.Context, args []string) error {
	fs := a.flags("reset-identity")
	algName := fs.String("algorithm", string(pqcrypto.MLKEM768), "ML_KEM_768 or X_WING")
	encrypt := fs.Bool("encrypt", false, "on a device without keys: seal the new key store under a passphrase")
	if _, err := a.start(ctx, fs, args, spec{signIn: true,
		about: "Makes a new identity key and key pair for your account, when your keys are lost on every device and\n" +
			"there is no key backup. Your contacts will see that your identity changed and must accept it\n" +
			"(qchat trust) before they can write to you again; messages sealed for your old keys stay unreadable.\n" +
			"Your password is asked for."}); err != nil {
		return err
	}
	alg, err := parseAlgorithm(*algName)
	if err != nil {
		return err
	}
	ks, err := a.loadKeys()
	var seeds map[string]string
	var noKeys errNoKeys
	switch {
	case errors.As(err, &noKeys):
		ks = &keyStore{Version: 1}
		pp, err := a.newPassphrase(*encrypt)
		if err != nil {
			return err
		}
		a.passphrase = pp
		if pp != nil {
			// writeStore seals an encrypted store under a.passphrase.
			ks.Encrypted = &sealedSeeds{}
		}
	case err != nil:
		return err
	default:
		if seeds, err = ks.seeds(a.getPassphrase); err != nil {
			return err
		}
	}
	password, err := a.secret(a.passwordFile, "QCHAT_PASSWORD", "password")
	if err != nil {
		return err
	}
	ik, kp, err := newKeys(alg)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "warning: your contacts will be told that your identity key changed; their clients send you nothing until they accept the new one\n")
	u, err := a.publishPending(ks, seeds, ik, kp, func() (*client.User, error) { return a.client.SetIdentityKey(ctx, ik, kp, string(password)) })
	var ce *client.Error
	if errors.As(err, &ce) && ce.Code == client.CodeBadUserInput && ce.Extensions["field"] == "password" {
		return &failure{msg: "wrong password: nothing was changed", code: client.CodeBadUserInput, cause: err}
	}
	if err != nil {
		return fail(err, "cannot reset your identity")
	}
	if _, err := a.client.KeyBackup(ctx); err == nil {
		fmt.Fprintf(a.stderr, "note: your key backup holds your old identity key: replace it with %s backup create\n", a.me())
	}
	return a.out(map[string]any{"keyId": u.PublicKey.Id, "identityFingerprint": pqcrypto.Fingerprint(ik.PublicKey()), "fingerprint": ks.Keys[0].fingerprint()},
		"new identity key (fingerprint %s) and key (%s) published\ntell your contacts, and compare safety numbers again: %s verify @user\n",
		pqcrypto.Fingerprint(ik.PublicKey()), alg, a.me())
}
