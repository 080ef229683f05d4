package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/qchat/qchat/pqcrypto"
)

// Trust on first use (envelope v2): the SDK remembers, per user, the
// identity key it first saw and the newest certified KEM key, and checks
// every key it seals to and every signature it opens against what it
// remembers, never against what the server presents now. A server that
// swaps a user's identity key is caught by the pin; one that presents an
// old KEM key again is caught by the sequence number.

// Pin is what a client remembers about one user's keys.
type Pin struct {
	// Username is the user's name when the pin was last written, for
	// messages only: the pin belongs to the user id.
	Username string
	// IdentityKey is the raw identity public key accepted for the user:
	// the first one seen, or the one accepted last (Accept).
	IdentityKey []byte
	// Previous are identity keys accepted before IdentityKey, oldest first:
	// content the user signed while one of them was theirs still verifies.
	Previous [][]byte
	// Verified: the caller compared safety numbers with the user for
	// IdentityKey. Accepting a new identity key clears it.
	Verified bool
	// Seq is the highest KEM key certificate sequence number seen for the
	// user (0: none yet) and KEMKey the public key certified with it.
	Seq    int
	KEMKey []byte
}

// Pins is the caller's trust store: one Pin per user id. The SDK reads a
// pin before every seal and open and writes one when it first sees a user
// or a newer key. Implementations must be safe for concurrent use; the CLI
// keeps its pins in a file next to its keys, MemoryPins keeps them for the
// life of the process.
type Pins interface {
	// Pin returns the user's pin, or nil (and no error) if there is none.
	Pin(userID string) (*Pin, error)
	// SetPin stores p as the user's pin.
	SetPin(userID string, p *Pin) error
}

// MemoryPins is a Pins in memory, the default of a Client made without
// WithPins.
type MemoryPins struct {
	mu sync.Mutex
	m  map[string]Pin
}

// NewMemoryPins returns an empty MemoryPins.
func NewMemoryPins() *MemoryPins { return &MemoryPins{m: map[string]Pin{}} }

// Pin implements Pins.
func (p *MemoryPins) Pin(userID string) (*Pin, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pin, ok := p.m[userID]
	if !ok {
		return nil, nil
	}
	return clonePin(&pin), nil
}

// SetPin implements Pins.
func (p *MemoryPins) SetPin(userID string, pin *Pin) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[userID] = *clonePin(pin)
	return nil
}

func clonePin(p *Pin) *Pin {
	c := *p
	c.IdentityKey = bytes.Clone(p.IdentityKey)
	c.KEMKey = bytes.Clone(p.KEMKey)
	c.Previous = make([][]byte, len(p.Previous))
	for i, k := range p.Previous {
		c.Previous[i] = bytes.Clone(k)
	}
	return &c
}

// IdentityChangedError: the server presents an identity key for a user that
// differs from the pinned one. Nothing is sealed to the user until the
// caller accepts the new key (Client.AcceptIdentity), ideally after
// comparing safety numbers with them.
type IdentityChangedError struct {
	UserID, Username string
	// Pinned and Presented are the raw identity keys: the one accepted
	// before and the one the server presents now.
	Pinned, Presented []byte
}

func (e *IdentityChangedError) Error() string {
	return fmt.Sprintf("the identity key of %s has changed (pinned %s, the server now presents %s): "+
		"nothing is sent to them until you accept the new key", e.name(), pqcrypto.Fingerprint(e.Pinned), pqcrypto.Fingerprint(e.Presented))
}

func (e *IdentityChangedError) name() string {
	if e.Username != "" {
		return e.Username
	}
	return e.UserID
}

// KeyRejectedError: a user's current KEM key cannot be sealed to. Reason
// says why in words: no identity key or no certificate (an account from
// before version 2 that has not signed in with a version 2 client yet), a
// certificate that does not verify against the pinned identity key, or a
// sequence number that goes back (an old key presented again).
type KeyRejectedError struct {
	UserID, Username string
	Reason           string
}

func (e *KeyRejectedError) Error() string {
	name := e.Username
	if name == "" {
		name = e.UserID
	}
	return fmt.Sprintf("cannot seal to %s: %s", name, e.Reason)
}

// Reasons of KeyRejectedError.
const (
	ReasonNoIdentity     = "they have no identity key yet (an account from before version 2: it gets one when they sign in with an up-to-date client)"
	ReasonNoCertificate  = "their key has no certificate by their identity key"
	ReasonBadCertificate = "their key's certificate does not verify against their pinned identity key"
)

// identityCache keeps parsed identity keys: unpacking an ML-DSA-65 key
// costs more than verifying a signature with it, and a client verifies
// many signatures by few people.
type identityCache struct {
	mu sync.Mutex
	m  map[string]*pqcrypto.IdentityPublicKey
}

// maxCachedIdentities bounds the cache; a client that meets more people
// than this simply parses again.
const maxCachedIdentities = 4096

func (ic *identityCache) parse(raw []byte) (*pqcrypto.IdentityPublicKey, error) {
	ic.mu.Lock()
	k, ok := ic.m[string(raw)]
	ic.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := pqcrypto.ParseIdentityKey(raw)
	if err != nil {
		return nil, err
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.m == nil || len(ic.m) >= maxCachedIdentities {
		ic.m = make(map[string]*pqcrypto.IdentityPublicKey)
	}
	ic.m[string(raw)] = k
	return k, nil
}

// presentedIdentity decodes the identity key the server presents for u;
// nil if it presents none.
func presentedIdentity(u *User) ([]byte, error) {
	if u.IdentityKey == nil {
		return nil, nil
	}
	raw, err := pqcrypto.DecodeB64(u.IdentityKey.Key)
	if err != nil || len(raw) != pqcrypto.IdentityPublicKeySize {
		return nil, &KeyRejectedError{UserID: u.Id, Username: u.Username, Reason: "the server presents an identity key that is not one"}
	}
	return raw, nil
}

// pinIdentity returns the user's pin, pinning the identity key the server
// presents if the user has none yet (trust on first use). It returns an
// *IdentityChangedError if the presented key differs from the pinned one,
// and a *KeyRejectedError if the user has no identity key at all.
func (c *Client) pinIdentity(u *User) (*Pin, error) {
	presented, err := presentedIdentity(u)
	if err != nil {
		return nil, err
	}
	pin, err := c.pins.Pin(u.Id)
	if err != nil {
		return nil, fmt.Errorf("read the pin of %s: %w", u.Username, err)
	}
	if pin == nil {
		if presented == nil {
			return nil, &KeyRejectedError{UserID: u.Id, Username: u.Username, Reason: ReasonNoIdentity}
		}
		pin = &Pin{Username: u.Username, IdentityKey: presented}
		if err := c.pins.SetPin(u.Id, pin); err != nil {
			return nil, fmt.Errorf("pin the identity key of %s: %w", u.Username, err)
		}
		return pin, nil
	}
	if presented == nil {
		// A pinned user whose identity key the server no longer shows is a
		// change like any other: it is not for the server to undo.
		return nil, &IdentityChangedError{UserID: u.Id, Username: u.Username, Pinned: pin.IdentityKey}
	}
	if !bytes.Equal(pin.IdentityKey, presented) {
		return nil, &IdentityChangedError{UserID: u.Id, Username: u.Username, Pinned: pin.IdentityKey, Presented: presented}
	}
	return pin, nil
}

// checkRecipient checks u's current KEM key against its pin and returns it
// as a recipient: the identity key must be the pinned one, the key's
// certificate must verify against it, and its seq must not go back (nor
// name another key with the same seq). A newer key moves the pin forward.
func (c *Client) checkRecipient(u *User) (pqcrypto.Recipient, error) {
	pin, err := c.pinIdentity(u)
	if err != nil {
		return pqcrypto.Recipient{}, err
	}
	reject := func(reason string) (pqcrypto.Recipient, error) {
		return pqcrypto.Recipient{}, &KeyRejectedError{UserID: u.Id, Username: u.Username, Reason: reason}
	}
	pk := u.PublicKey
	if pk == nil {
		return reject("they have no key")
	}
	if pk.Signature == nil || pk.Seq == nil {
		return reject(ReasonNoCertificate)
	}
	pub, err1 := pqcrypto.DecodeB64(pk.Key)
	cert, err2 := pqcrypto.DecodeB64(*pk.Signature)
	if err1 != nil || err2 != nil {
		return reject(ReasonBadCertificate)
	}
	owner, err := c.identities.parse(pin.IdentityKey)
	if err != nil {
		return reject(ReasonBadCertificate)
	}
	if err := pqcrypto.VerifyKEMKeyCertificate(owner, pk.Algorithm, *pk.Seq, pub, cert); err != nil {
		return reject(ReasonBadCertificate)
	}
	switch {
	case *pk.Seq < pin.Seq:
		return reject(fmt.Sprintf("the server presents an older key of theirs (seq %d) than one already seen (seq %d)", *pk.Seq, pin.Seq))
	case *pk.Seq == pin.Seq && !bytes.Equal(pub, pin.KEMKey):
		return reject(fmt.Sprintf("the server presents a different key with the same seq (%d) as one already seen", pin.Seq))
	case *pk.Seq > pin.Seq:
		pin.Seq, pin.KEMKey, pin.Username = *pk.Seq, pub, u.Username
		if err := c.pins.SetPin(u.Id, pin); err != nil {
			return pqcrypto.Recipient{}, fmt.Errorf("pin the key of %s: %w", u.Username, err)
		}
	}
	return pqcrypto.Recipient{UserID: u.Id, KeyID: pk.Id, Algorithm: pk.Algorithm, PublicKey: pub}, nil
}

// AcceptIdentity pins the identity key the server now presents for u,
// after an *IdentityChangedError: the old key moves to Previous (content
// signed with it still verifies) and Verified is cleared, since the safety
// number changed with the key. Callers should have their user compare the
// new safety number.
func (c *Client) AcceptIdentity(u *User) error {
	presented, err := presentedIdentity(u)
	if err != nil {
		return err
	}
	if presented == nil {
		return &KeyRejectedError{UserID: u.Id, Username: u.Username, Reason: ReasonNoIdentity}
	}
	pin, err := c.pins.Pin(u.Id)
	if err != nil {
		return fmt.Errorf("read the pin of %s: %w", u.Username, err)
	}
	if pin == nil {
		pin = &Pin{}
	}
	if pin.IdentityKey != nil && !bytes.Equal(pin.IdentityKey, presented) {
		pin.Previous = append(pin.Previous, pin.IdentityKey)
		pin.Verified = false
	}
	pin.IdentityKey, pin.Username = presented, u.Username
	return c.pins.SetPin(u.Id, pin)
}

// MarkVerified records that the caller compared safety numbers with u
// (SafetyNumber) and they matched. It refuses if the server's identity key
// for u is not the pinned one: that number was not the pinned key's.
func (c *Client) MarkVerified(u *User) error {
	pin, err := c.pinIdentity(u)
	if err != nil {
		return err
	}
	pin.Verified = true
	pin.Username = u.Username
	return c.pins.SetPin(u.Id, pin)
}

// SafetyNumber is the 60-digit safety number of the caller and u, computed
// from the caller's own identity key and u's pinned one (pinned now if u is
// new). Format it with pqcrypto.FormatSafetyNumber.
func (c *Client) SafetyNumber(ctx context.Context, u *User) (string, error) {
	ik := c.Identity()
	if ik == nil {
		return "", ErrNoIdentity
	}
	self, err := c.userID(ctx)
	if err != nil {
		return "", err
	}
	pin, err := c.pinIdentity(u)
	if err != nil {
		return "", err
	}
	return pqcrypto.SafetyNumber(self, ik.PublicKey(), u.Id, pin.IdentityKey)
}

// ErrNoIdentity: the client has no identity key to sign with (WithIdentity).
var ErrNoIdentity = errors.New("this client has no identity key (sign in on a device that holds your keys, restore your key backup, or reset your identity)")

// senderKeys are the identity keys a sender's content may be verified
// with: the pinned one first, then those accepted before it. The sender is
// pinned on first use from the server's current key.
func (c *Client) senderKeys(userID string, fetch func() (*User, error)) ([]*pqcrypto.IdentityPublicKey, error) {
	pin, err := c.pins.Pin(userID)
	if err != nil {
		return nil, err
	}
	if pin == nil {
		u, err := fetch()
		if err != nil {
			return nil, err
		}
		if pin, err = c.pinIdentity(u); err != nil {
			return nil, err
		}
	}
	keys := make([]*pqcrypto.IdentityPublicKey, 0, 1+len(pin.Previous))
	for _, raw := range append([][]byte{pin.IdentityKey}, pin.Previous...) {
		k, err := c.identities.parse(raw)
		if err != nil {
			continue
		}
		keys = append(keys, k)
	}
	return keys, nil
}
