package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// signed is what a verified version 2 envelope stores besides version 1's
// fields: the signature and the leaves, in the signed order.
type signed struct {
	signature []byte
	digests   []byte
}

// cid is the envelope's conversation id: the room, or for a direct message
// the recipient the sender addressed (envelope v1).
func cid(roomID, recipientID *string) string {
	if roomID != nil {
		return *roomID
	}
	return *recipientID
}

// verifySignature checks that signature (base64, field "signature") is the
// sender's signature over env under h, against the sender's current identity
// key, before anything is stored. It keeps garbage out of the database; each
// reader still verifies against the key it has pinned.
func (s *Service) verifySignature(ctx context.Context, senderID string, h pqcrypto.SignedHeader, env *pqcrypto.Envelope, signature string) (*signed, error) {
	sig, err := pqcrypto.DecodeSignature(signature)
	if err != nil {
		return nil, envelopeError(err)
	}
	pk, err := s.signer(ctx, senderID)
	if err != nil {
		return nil, err
	}
	// The leaves are computed once, here, and both verified and stored.
	digests := pqcrypto.KeyDigests(env.Keys)
	if err := pqcrypto.VerifyDigests(pk, h, env.Ciphertext, env.Nonce, digests, sig); err != nil {
		if errors.Is(err, pqcrypto.ErrBadSignature) {
			return nil, models.InvalidField("signature", "signature: does not verify against the sender's identity key")
		}
		return nil, envelopeError(err)
	}
	return &signed{signature: sig, digests: models.JoinDigests(digests)}, nil
}

// signer is the sender's current identity key, parsed, from the cache when
// it can: every send checks a signature against it.
func (s *Service) signer(ctx context.Context, userID string) (*pqcrypto.IdentityPublicKey, error) {
	if pk, ok := s.signers.GetIfPresent(userID); ok {
		return pk, nil
	}
	ik, err := s.currentIdentity(ctx, userID)
	if err != nil {
		return nil, err
	}
	if ik == nil {
		return nil, models.InvalidField("signature", "signature: the sender has no identity key yet (setIdentityKey first)")
	}
	pk, err := s.parseIdentity(ik.KeyBytes)
	if err != nil {
		return nil, fmt.Errorf("stored identity key of %s: %w", userID, err)
	}
	s.signers.Set(userID, pk)
	return pk, nil
}
