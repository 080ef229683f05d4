// Package broker carries live events between the resolvers that cause them and
// the subscriptions that deliver them. Resolvers see only the Broker interface:
// the in-process Memory broker serves one instance, and a shared implementation
// can replace it without touching them.
package broker

import (
	"context"
	"iter"

	"github.com/qchat/qchat/models"
)

// Kind names an event.
type Kind string

const (
	MessageAdded   Kind = "message_added"
	MessageDeleted Kind = "message_deleted"
	Typing         Kind = "typing"
	Receipt        Kind = "receipt"
	Presence       Kind = "presence"
	RoomChanged    Kind = "room"
	KeyChanged     Kind = "key_changed"
	// Invalidate tells every instance to drop a cached entry (see
	// InvalidationTopic).
	Invalidate Kind = "invalidate"
)

// InvalidationTopic carries cache invalidations between instances: a logout
// on one must end the session on all at once.
const InvalidationTopic = "system:invalidate"

// Invalidation names cached entries of one kind.
type Invalidation struct {
	What string // "session" (Key: hex token hash), "user" (Key: user id), "member" (Key: room|user)
	Key  string
	// More are further keys of the same kind: one action that touches many
	// entries (deleting a room of 1,000 members) sends one invalidation, not
	// one per entry that would overflow the invalidation subscriber's buffer
	// and lose the invalidations of others. An added field rather than a
	// list replacing Key, so that an instance of an earlier version still
	// applies Key (the TTLs bound the rest).
	More []string
}

// Keys lists Key and More.
func (i Invalidation) Keys() []string { return append([]string{i.Key}, i.More...) }

// Event is one live event. Exactly the field that matches Kind is set. Events are
// shared between subscribers and must not be modified after Publish. Between
// instances an event travels in the wire format of wire.go, not as this struct.
type Event struct {
	Kind     Kind
	Message  *models.Message       // MessageAdded, MessageDeleted (tombstone)
	Typing   *models.TypingEvent   // Typing
	Receipt  *models.ReadReceipt   // Receipt: the first (or only) receipt of a batch
	Presence *models.PresenceEvent // Presence
	Room     *models.RoomEvent     // RoomChanged
	Inval    *Invalidation         // Invalidate
	// KeyChange came after Inval in the wire format's first version: an
	// instance of an earlier version decodes a KeyChanged event as one of an
	// unknown kind, which no subscription's filter delivers.
	KeyChange *models.KeyChange // KeyChanged
	// Receipts are the rest of a batch of receipts (Kind Receipt): a markRead
	// of 500 messages is one event for each reader, not 500 that would
	// overflow every subscriber's buffer. Apart from Receipt so that an
	// instance of an earlier version, which reads Receipt only, still
	// delivers the first receipt of a batch (all of a one-message markRead).
	Receipts []*models.ReadReceipt
}

// AllReceipts yields Receipt and then Receipts.
func (e *Event) AllReceipts() iter.Seq[*models.ReadReceipt] {
	return func(yield func(*models.ReadReceipt) bool) {
		if e.Receipt != nil && !yield(e.Receipt) {
			return
		}
		for _, rc := range e.Receipts {
			if !yield(rc) {
				return
			}
		}
	}
}

// UserTopic is the topic that carries everything addressed to one user: an event
// is published to the topic of every user allowed to see it.
func UserTopic(userID string) string { return "user:" + userID }

// Broker publishes events to topics and delivers them to subscribers.
//
// Publish never blocks on a subscriber: one whose buffer is full loses the
// subscription (its channel is closed, after the OnDrop hook of its context
// is called) rather than slowing the sender or anyone else; the client
// catches up through history.
type Broker interface {
	Publish(ctx context.Context, topics []string, ev *Event) error
	// Subscribe delivers the events of topic until ctx ends or the subscriber
	// falls behind; then the channel is closed.
	Subscribe(ctx context.Context, topic string) (<-chan *Event, error)
	// SubscribeFunc delivers the events of topic by calling deliver, in
	// order and one at a time, from a goroutine that runs only while
	// events wait: an idle subscription holds no goroutine. Up to the
	// broker's buffer of events wait (the one deliver holds aside), as in
	// Subscribe's channel; one more drops the subscriber. The subscription
	// ends when ctx ends (the waiting events are discarded), when deliver
	// returns false, or when the subscriber falls behind (after the
	// waiting events are delivered); end is then called once, after the
	// last deliver has returned. If SubscribeFunc returns an error, end is
	// not called.
	SubscribeFunc(ctx context.Context, topic string, deliver func(*Event) bool, end func()) error
	Close() error
}
