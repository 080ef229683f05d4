package chat

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// conversationOf resolves the target of a message or a typing notice: exactly
// one of roomID and recipientID. It returns the conversation key and the users
// an envelope must be sealed for (sender included).
func (s *Service) conversationOf(ctx context.Context, u *models.User, roomID, recipientID *string) (conv string, recipients []db.RoomRecipient, err error) {
	switch {
	case (roomID == nil) == (recipientID == nil):
		return "", nil, models.Invalid("give exactly one of roomId and recipientId")
	case roomID != nil:
		if err := checkID("roomId", *roomID); err != nil {
			return "", nil, err
		}
		// One query answers both: the members with their keys, and whether
		// the caller is one of them.
		rs, err := s.roomRecipients(ctx, *roomID)
		if err != nil {
			return "", nil, err
		}
		if !slices.ContainsFunc(rs, func(x db.RoomRecipient) bool { return x.UserID == u.ID }) {
			return "", nil, models.NotFound("room")
		}
		return *roomID, rs, nil
	default:
		if err := checkID("recipientId", *recipientID); err != nil {
			return "", nil, err
		}
		if *recipientID == u.ID {
			return "", nil, models.Invalid("recipientId: a direct message to yourself is not allowed")
		}
		rs, err := s.userRecipients(ctx, []string{u.ID, *recipientID})
		if err != nil {
			return "", nil, err
		}
		if len(rs) != 2 {
			return "", nil, models.NotFound("user")
		}
		return db.DirectConversation(u.ID, *recipientID), rs, nil
	}
}

// checkRecipients compares an envelope's recipient keys with the members the
// server expects and reports the differences in extensions that a client uses to
// refetch keys and seal again.
func checkRecipients(keys []pqcrypto.RecipientKey, want []db.RoomRecipient) error {
	current := make(map[string]string, len(want))
	for _, w := range want {
		current[w.UserID] = w.KeyID
	}
	var missing, unexpected, stale []string
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		seen[k.UserID] = true
		cur, ok := current[k.UserID]
		switch {
		case !ok:
			unexpected = append(unexpected, k.UserID)
		case cur != k.KeyID:
			stale = append(stale, k.KeyID)
		}
	}
	for _, w := range want {
		if !seen[w.UserID] {
			missing = append(missing, w.UserID)
		}
	}
	if len(missing)+len(unexpected)+len(stale) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	sort.Strings(stale)
	msg := "keys: the recipient set must be exactly the conversation's members with their current keys"
	switch {
	case len(stale) > 0:
		msg = "keys: stale key ids; fetch the recipients' current keys and seal again"
	case len(missing) > 0:
		msg = "keys: missing recipients; every member, the sender included, needs a key"
	case len(unexpected) > 0:
		msg = "keys: unexpected recipients who are not members of the conversation"
	}
	return &models.Error{Code: apierr.CodeBadUserInput, Message: msg, Extensions: map[string]any{
		"missingUserIds":    nonNil(missing),
		"unexpectedUserIds": nonNil(unexpected),
		"staleKeyIds":       nonNil(stale),
	}}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// checkEnvelope checks everything the server can about an envelope (shape,
// lengths for each key's algorithm) and that its recipients are exactly the
// conversation's members with their current keys.
func checkEnvelope(ct []byte, nonce string, keys []*models.RecipientKeyInput, want []db.RoomRecipient) (*pqcrypto.Envelope, error) {
	algs := make(map[string]pqcrypto.Algorithm, len(want))
	for _, w := range want {
		algs[w.KeyID] = pqcrypto.Algorithm(w.Algorithm)
	}
	wk := make([]pqcrypto.WireRecipientKey, len(keys))
	for i, k := range keys {
		wk[i] = pqcrypto.WireRecipientKey{UserID: k.UserID, KeyID: k.KeyID, KEMCiphertext: k.KemCiphertext, WrappedKey: k.WrappedKey}
	}
	env, err := pqcrypto.ValidateDetached(ct, nonce, wk, func(id string) (pqcrypto.Algorithm, bool) {
		a, ok := algs[id]
		return a, ok
	})
	if err != nil {
		return nil, envelopeError(err)
	}
	if err := checkRecipients(env.Keys, want); err != nil {
		return nil, err
	}
	return env, nil
}

// contentHash identifies what a client sent under a message id, so that a retry
// can be told apart from a clash. Every key's bytes enter through the signed
// leaves, already computed for the signature check, and the signature itself
// too: the same id and content with another signature is a clash, not a retry
// (ML-DSA signing may be randomised, so a client retries with the signature
// it sent first).
func contentHash(conv string, attachment *string, env *pqcrypto.Envelope, sig *signed) []byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(conv))
	if attachment != nil {
		field([]byte(*attachment))
	} else {
		field(nil)
	}
	field(env.Ciphertext)
	field(env.Nonce)
	field(sig.digests)
	field(sig.signature)
	return h.Sum(nil)
}

// SendMessage stores a message sealed for exactly the members of its
// conversation and publishes it to each of them.
func (s *Service) SendMessage(ctx context.Context, u *models.User, in models.SendMessageInput) (*models.Message, error) {
	if err := checkID("id", in.ID); err != nil {
		return nil, err
	}
	conv, want, err := s.conversationOf(ctx, u, in.RoomID, in.RecipientID)
	if err != nil {
		return nil, err
	}
	ct, err := pqcrypto.DecodeB64(in.Ciphertext)
	if err != nil {
		return nil, envelopeError(&pqcrypto.ValidationError{Field: "ciphertext", Reason: "not canonical standard base64 with padding"})
	}
	if len(ct) > models.MaxMessageCiphertext {
		return nil, models.Invalid("ciphertext: at most %d bytes (send larger content as a document)", models.MaxMessageCiphertext)
	}
	env, err := checkEnvelope(ct, in.Nonce, in.Keys, want)
	if err != nil {
		return nil, err
	}
	if err := s.attachmentFor(ctx, conv, in.AttachmentID); err != nil {
		return nil, err
	}
	// New content is version 2 only: signed by the sender's identity key.
	h := pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: in.ID, SenderID: u.ID, ConversationID: cid(in.RoomID, in.RecipientID)}
	if in.AttachmentID != nil {
		h.AttachmentID = *in.AttachmentID
	}
	sig, err := s.verifySignature(ctx, u.ID, h, env, in.Signature)
	if err != nil {
		return nil, err
	}
	m := &models.Message{
		ID: in.ID, Conversation: conv, RoomID: in.RoomID, SenderID: u.ID, RecipientID: in.RecipientID,
		CipherBytes: env.Ciphertext, NonceBytes: env.Nonce, AttachmentID: in.AttachmentID,
		ContentHash: contentHash(conv, in.AttachmentID, env, sig), CreatedAt: models.Now(),
		Version: 2, SignatureBytes: sig.signature, KeyDigestBytes: sig.digests,
	}
	keys := make([]*models.RecipientKey, len(env.Keys))
	for i, k := range env.Keys {
		keys[i] = &models.RecipientKey{MessageID: m.ID, UserID: k.UserID, KeyID: k.KeyID, KEMBytes: k.KEMCiphertext, WrappedBytes: k.WrappedKey}
	}
	stored, existed, err := s.store.InsertMessage(ctx, m, keys)
	if err != nil {
		return nil, err
	}
	if existed { // a retry: the earlier send's message, as stored
		return stored, s.Present(ctx, u.ID, stored)
	}
	s.metrics.MessageSent()
	// The event carries sender and room or recipient, so that no subscriber
	// looks them up; without them it is not sent (the message is stored, and
	// a client's retry with the same id answers it).
	if err := s.fillRefs(ctx, stored); err != nil {
		return nil, err
	}
	users := make([]string, len(want))
	for i, w := range want {
		users[i] = w.UserID
	}
	s.publish(ctx, users, &broker.Event{Kind: broker.MessageAdded, Message: stored})
	return forReader(stored, u.ID), nil
}

// Message loads a message the caller may read; anything else is NOT_FOUND.
func (s *Service) Message(ctx context.Context, u *models.User, id string) (*models.Message, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	m, err := s.store.MessageByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.canRead(ctx, m, u.ID) {
		return nil, models.NotFound("message")
	}
	return m, nil
}

// DeleteMessage turns a message into a tombstone; only its sender may.
func (s *Service) DeleteMessage(ctx context.Context, u *models.User, id string) error {
	m, err := s.Message(ctx, u, id)
	if err != nil {
		return err
	}
	if m.SenderID != u.ID {
		s.Security(ctx, slog.LevelWarn, "forbidden", "message_id", id, "action", "deleteMessage")
		return models.Forbidden("only the sender can delete a message")
	}
	if m.Deleted() {
		return nil
	}
	tomb, err := s.store.DeleteMessage(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return nil // deleted concurrently
	}
	if err != nil {
		return err
	}
	users, err := s.audience(ctx, tomb)
	if err != nil {
		return err
	}
	s.publish(ctx, users, &broker.Event{Kind: broker.MessageDeleted, Message: tomb})
	return nil
}

// MarkRead marks messages read by u (only those sealed for u's keys) and
// publishes the receipts; it returns how many it marked.
func (s *Service) MarkRead(ctx context.Context, u *models.User, ids []string) (int, error) {
	if err := checkIDs("messageIds", ids, maxMarkRead); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	marked, err := s.store.MarkRead(ctx, u.ID, ids)
	if err != nil || len(marked) == 0 {
		return 0, err
	}
	mids := make([]string, len(marked))
	for i, k := range marked {
		mids[i] = k.MessageID
	}
	msgs, err := s.store.MessagesByIDs(ctx, mids)
	if err != nil {
		return len(marked), err
	}
	byID := index(msgs, func(m *models.Message) string { return m.ID })
	// The receipts by conversation, and who sees each conversation.
	var convs []string
	receipts := map[string][]*models.ReadReceipt{}
	audiences := map[string][]string{}
	for _, k := range marked {
		m := byID[k.MessageID]
		if m == nil {
			continue
		}
		if _, seen := audiences[m.Conversation]; !seen {
			users, err := s.audience(ctx, m)
			if err != nil {
				s.log.WarnContext(ctx, "receipt audience", "err", err)
			}
			audiences[m.Conversation] = users // nil after an error: nobody
			convs = append(convs, m.Conversation)
		}
		receipts[m.Conversation] = append(receipts[m.Conversation], &models.ReadReceipt{
			MessageID: m.ID, Conversation: m.Conversation, RoomID: m.RoomID, UserID: u.ID, ReadAt: *k.ReadAt,
		})
	}
	s.publishReceipts(ctx, convs, receipts, audiences)
	return len(marked), nil
}

// publishReceipts sends the receipts of one markRead so that no user's topic
// gets more than one event from it: a topic's subscribers that fall 256
// events behind are dropped, and 500 receipts sent one by one ended every
// subscription of every member. Users who see the same conversations share
// one event (in the usual markRead of one conversation: everyone), carrying
// all of those conversations' receipts; each subscriber expands it.
func (s *Service) publishReceipts(ctx context.Context, convs []string, receipts map[string][]*models.ReadReceipt, audiences map[string][]string) {
	type group struct {
		convs []int // indexes into convs
		users []string
	}
	var groups []*group
	byKey := map[string]*group{}
	seen := map[string][]int{} // user -> the conversations it sees, in convs order
	var order []string         // users in first-seen order, for a stable grouping
	for i, c := range convs {
		for _, uid := range audiences[c] {
			if _, ok := seen[uid]; !ok {
				order = append(order, uid)
			}
			seen[uid] = append(seen[uid], i)
		}
	}
	for _, uid := range order {
		key := fmt.Sprint(seen[uid])
		g := byKey[key]
		if g == nil {
			g = &group{convs: seen[uid]}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.users = append(g.users, uid)
	}
	for _, g := range groups {
		var batch []*models.ReadReceipt
		for _, i := range g.convs {
			batch = append(batch, receipts[convs[i]]...)
		}
		ev := &broker.Event{Kind: broker.Receipt, Receipt: batch[0]}
		if len(batch) > 1 { // a single receipt travels as it always has
			ev.Receipts = batch[1:]
		}
		s.publish(ctx, g.users, ev)
	}
}

// SetTyping tells a room, or the other person of a direct conversation,
// that u is typing.
func (s *Service) SetTyping(ctx context.Context, u *models.User, roomID, recipientID *string, typing bool) error {
	var users []string
	switch {
	case (roomID == nil) == (recipientID == nil):
		return models.Invalid("give exactly one of roomId and recipientId")
	case roomID != nil:
		if _, err := s.Membership(ctx, *roomID, u.ID); err != nil {
			return err
		}
		all, err := s.roomAudience(ctx, *roomID)
		if err != nil {
			return err
		}
		users = slices.DeleteFunc(all, func(id string) bool { return id == u.ID })
	default:
		if err := checkID("recipientId", *recipientID); err != nil {
			return err
		}
		if *recipientID == u.ID {
			return models.Invalid("recipientId: cannot type to yourself")
		}
		shared, err := s.store.SharesConversation(ctx, u.ID, *recipientID)
		if err != nil {
			return err
		}
		if !shared {
			// NOT_FOUND for no such user, as before (user(id) tells as
			// much). To a user who shares no conversation with the sender
			// the notice is not sent, and the answer is the same true: a
			// client that reports typing before the first message of a new
			// conversation is not broken, and a stranger learns nothing.
			_, err := s.store.UserByID(ctx, *recipientID)
			return err
		}
		users = []string{*recipientID}
	}
	s.publish(ctx, users, &broker.Event{Kind: broker.Typing, Typing: &models.TypingEvent{
		UserID: u.ID, RoomID: roomID, RecipientID: recipientID, IsTyping: typing,
	}})
	return nil
}

// inRoom says whether a subscription filtered by roomID wants an event of the
// given room (nil roomID: every conversation).
func inRoom(filter, room *string) bool {
	return filter == nil || (room != nil && *room == *filter)
}
