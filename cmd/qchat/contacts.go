package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

// contactsStore is contacts.json: the SDK's pins (client.Pins), one per
// user id, kept across runs. Trust on first use only protects if what was
// first seen is remembered.
type contactsStore struct {
	Version  int                 `json:"version"`
	Contacts map[string]*contact `json:"contacts"`
}

// contact is one pin as stored, binary values in base64.
type contact struct {
	Username    string    `json:"username"`
	IdentityKey string    `json:"identityKey"`
	Previous    []string  `json:"previousIdentityKeys,omitempty"`
	Verified    bool      `json:"verified"`
	Seq         int       `json:"seq,omitempty"`
	KEMKey      string    `json:"kemKey,omitempty"`
	FirstSeen   time.Time `json:"firstSeen"`
}

// filePins implements client.Pins over contacts.json. Several qchat
// processes may run at once (a listen, and a trust in another terminal):
// reads reload the file when it changed, and every write reads it again and
// changes only its own entry.
type filePins struct {
	dir string

	mu    sync.Mutex
	stamp string
	cache contactsStore
}

var _ client.Pins = (*filePins)(nil)

func (p *filePins) fileStamp() string {
	info, err := os.Stat(filepath.Join(p.dir, contactsFile))
	if err != nil {
		return ""
	}
	return fmt.Sprint(info.Size(), info.ModTime().UnixNano())
}

// load returns the current contents; the caller holds p.mu.
func (p *filePins) load() (contactsStore, error) {
	st := p.fileStamp()
	if st != "" && st == p.stamp {
		return p.cache, nil
	}
	var cs contactsStore
	if _, err := readJSON(p.dir, contactsFile, &cs); err != nil {
		return contactsStore{}, err
	}
	if cs.Contacts == nil {
		cs.Contacts = map[string]*contact{}
	}
	p.cache, p.stamp = cs, st
	return cs, nil
}

func (p *filePins) all() (map[string]*contact, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs, err := p.load()
	return cs.Contacts, err
}

// Pin implements client.Pins.
func (p *filePins) Pin(userID string) (*client.Pin, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs, err := p.load()
	if err != nil {
		return nil, err
	}
	c, ok := cs.Contacts[userID]
	if !ok {
		return nil, nil
	}
	return c.pin()
}

// SetPin implements client.Pins.
func (p *filePins) SetPin(userID string, pin *client.Pin) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stamp = "" // read the file again: another process may have written it
	cs, err := p.load()
	if err != nil {
		return err
	}
	c := &contact{Username: pin.Username, IdentityKey: pqcrypto.EncodeB64(pin.IdentityKey), Verified: pin.Verified,
		Seq: pin.Seq, FirstSeen: time.Now().UTC()}
	if old, ok := cs.Contacts[userID]; ok {
		c.FirstSeen = old.FirstSeen
	}
	if pin.KEMKey != nil {
		c.KEMKey = pqcrypto.EncodeB64(pin.KEMKey)
	}
	for _, k := range pin.Previous {
		c.Previous = append(c.Previous, pqcrypto.EncodeB64(k))
	}
	next := contactsStore{Version: 1, Contacts: make(map[string]*contact, len(cs.Contacts)+1)}
	for id, old := range cs.Contacts {
		next.Contacts[id] = old
	}
	next.Contacts[userID] = c
	if err := writeJSON(p.dir, contactsFile, &next); err != nil {
		return err
	}
	p.cache, p.stamp = next, p.fileStamp()
	return nil
}

func (c *contact) pin() (*client.Pin, error) {
	bad := func() (*client.Pin, error) {
		return nil, fmt.Errorf("%s: the entry of %s is damaged", contactsFile, c.Username)
	}
	ik, err := pqcrypto.DecodeB64(c.IdentityKey)
	if err != nil {
		return bad()
	}
	p := &client.Pin{Username: c.Username, IdentityKey: ik, Verified: c.Verified, Seq: c.Seq}
	if c.KEMKey != "" {
		if p.KEMKey, err = pqcrypto.DecodeB64(c.KEMKey); err != nil {
			return bad()
		}
	}
	for _, s := range c.Previous {
		k, err := pqcrypto.DecodeB64(s)
		if err != nil {
			return bad()
		}
		p.Previous = append(p.Previous, k)
	}
	return p, nil
}

// fingerprint is the fingerprint of a base64 identity key.
func fingerprintB64(s string) string {
	b, err := pqcrypto.DecodeB64(s)
	if err != nil {
		return "(invalid key)"
	}
	return pqcrypto.Fingerprint(b)
}

// identityChanged is the warning a changed identity key gets wherever it
// stops something.
func (a *app) identityChanged(e *client.IdentityChangedError) *failure {
	name := e.Username
	if name == "" {
		name = e.UserID
	}
	return &failure{msg: fmt.Sprintf("WARNING: %s's identity key has changed since you first saw it (pinned %s, now %s). "+
		"Someone may be impersonating them, or they reset their identity. Nothing was sent to them. "+
		"Check with %s in person or by phone, then accept the new key with %s trust @%s (and compare safety numbers: %s verify @%s)",
		name, pqcrypto.Fingerprint(e.Pinned), fingerprintOrNone(e.Presented), name, a.me(), name, a.me(), name), code: "IDENTITY_CHANGED", cause: e}
}

func fingerprintOrNone(k []byte) string {
	if k == nil {
		return "none"
	}
	return pqcrypto.Fingerprint(k)
}

// trustState says in a word or two where the caller stands with u's
// identity key, without pinning anything: "you", "no identity key" (an
// account from before version 2), "not met" (not pinned yet), "verified",
// "not verified", or "CHANGED" (the server presents another identity key
// than the pinned one: qchat trust, after checking).
func (a *app) trustState(u *client.User) string {
	if a.session != nil && u.Id == a.session.UserID {
		return "you"
	}
	pin, err := a.pins().Pin(u.Id)
	switch {
	case err != nil:
		return "unknown (" + contactsFile + " unreadable)"
	case u.IdentityKey == nil && pin == nil:
		return "no identity key"
	case pin == nil:
		return "not met"
	case u.IdentityKey == nil || u.IdentityKey.Key != pqcrypto.EncodeB64(pin.IdentityKey):
		return "CHANGED"
	case pin.Verified:
		return "verified"
	}
	return "not verified"
}

// verify shows the safety number of me and a user and, with --mark,
// records that we compared it and it matched.
func (a *app) verify(ctx context.Context, args []string) error {
	fs := a.flags("verify")
	mark := fs.Bool("mark", false, "record that you compared the number with them and it matched")
	pos, err := a.start(ctx, fs, args, spec{args: "@user", min: 1, max: 1, signIn: true, keys: true,
		about: "Shows the 60-digit safety number of you and @user, computed from both identity keys. Compare it\n" +
			"with them in person or by phone: both of you see the same number. If it matches, run it again\n" +
			"with --mark to record that @user is verified."})
	if err != nil {
		return err
	}
	u, err := a.user(ctx, a.client, pos[0])
	if err != nil {
		return err
	}
	if u.Id == a.session.UserID {
		return usageErr("a safety number is of you and someone else")
	}
	number, err := a.client.SafetyNumber(ctx, u)
	var changed *client.IdentityChangedError
	if errors.As(err, &changed) {
		return a.identityChanged(changed)
	}
	if err != nil {
		return fail(err, "cannot compute the safety number with %s", u.Username)
	}
	verified := false
	if pin, err := a.pins().Pin(u.Id); err == nil && pin != nil {
		verified = pin.Verified
	}
	if *mark {
		if err := a.client.MarkVerified(u); err != nil {
			return fail(err, "cannot mark %s verified", u.Username)
		}
		verified = true
	}
	grouped := pqcrypto.FormatSafetyNumber(number)
	state := "not verified: if it matches theirs, run " + a.me() + " verify @" + u.Username + " --mark"
	if verified {
		state = "verified"
	}
	return a.out(map[string]any{"username": u.Username, "userId": u.Id, "safetyNumber": grouped, "verified": verified},
		"safety number of you (%s) and %s:\n\n    %s\n\n%s: %s\n", a.session.Username, u.Username, grouped, u.Username, state)
}

// trust accepts the identity key the server now presents for a user, after
// a warning that it changed.
func (a *app) trust(ctx context.Context, args []string) error {
	pos, err := a.start(ctx, a.flags("trust"), args, spec{args: "@user", min: 1, max: 1, signIn: true,
		about: "Accepts @user's current identity key after a warning that it changed. Do it only once you know\n" +
			"why it changed (they reset their identity): then compare safety numbers with qchat verify @user."})
	if err != nil {
		return err
	}
	u, err := a.user(ctx, a.client, pos[0])
	if err != nil {
		return err
	}
	if u.IdentityKey == nil {
		return &failure{msg: fmt.Sprintf("%s has no identity key yet: there is nothing to trust until they sign in with an up-to-date qchat", u.Username)}
	}
	before, err := a.pins().Pin(u.Id)
	if err != nil {
		return err
	}
	if err := a.client.AcceptIdentity(u); err != nil {
		return fail(err, "cannot accept %s's identity key", u.Username)
	}
	fp := fingerprintB64(u.IdentityKey.Key)
	switch {
	case before == nil:
		return a.out(map[string]any{"username": u.Username, "identityFingerprint": fp, "changed": false},
			"%s's identity key (fingerprint %s) is now pinned; compare safety numbers with %s verify @%s\n", u.Username, fp, a.me(), u.Username)
	case pqcrypto.EncodeB64(before.IdentityKey) == u.IdentityKey.Key:
		return a.out(map[string]any{"username": u.Username, "identityFingerprint": fp, "changed": false},
			"%s's identity key (fingerprint %s) has not changed; nothing to do\n", u.Username, fp)
	}
	return a.out(map[string]any{"username": u.Username, "identityFingerprint": fp, "changed": true},
		"accepted %s's new identity key (fingerprint %s); they are not verified any more: compare safety numbers with %s verify @%s\n",
		u.Username, fp, a.me(), u.Username)
}

// contacts lists the users this device has pinned, with their verification
// state and, when signed in, whether the server now presents another
// identity key for them.
func (a *app) contacts(ctx context.Context, args []string) error {
	if _, err := a.start(ctx, a.flags("contacts"), args, spec{
		about: "Lists the users you have met (their identity keys are pinned here), whether you verified them by\n" +
			"safety number, and whether their identity key has changed since."}); err != nil {
		return err
	}
	all, err := a.pins().all()
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	// Checking against the server is a bonus: offline, the list still shows.
	current := map[string]*client.User{}
	if c, s, err := a.authed(); err == nil {
		for chunk := range slices.Chunk(ids, 100) {
			us, err := c.Users(ctx, chunk)
			if err != nil {
				break
			}
			for i := range us {
				current[us[i].Id] = &us[i]
			}
		}
		delete(all, s.UserID) // yourself: not a contact
		ids = slices.DeleteFunc(ids, func(id string) bool { return id == s.UserID })
	}
	sort.Slice(ids, func(i, j int) bool { return all[ids[i]].Username < all[ids[j]].Username })
	if len(ids) == 0 && !a.json {
		fmt.Fprintln(a.stdout, "no contacts yet: users are pinned the first time you send to them or read them")
	}
	for _, id := range ids {
		c := all[id]
		state := "not verified"
		if c.Verified {
			state = "verified"
		}
		changed := false
		if u := current[id]; u != nil {
			if u.Username != "" {
				c.Username = u.Username
			}
			changed = u.IdentityKey == nil || u.IdentityKey.Key != c.IdentityKey
		}
		line := fmt.Sprintf("%-20s %-13s identity %s", c.Username, state, fingerprintB64(c.IdentityKey))
		if changed {
			line += fmt.Sprintf("  IDENTITY CHANGED: check with them, then %s trust @%s", a.me(), c.Username)
		}
		if err := a.out(map[string]any{"username": c.Username, "userId": id, "verified": c.Verified, "identityFingerprint": fingerprintB64(c.IdentityKey), "identityChanged": changed},
			"%s\n", line); err != nil {
			return err
		}
	}
	return nil
}
