// Package broker carries live events between the resolvers that cause them and
// the subscriptions that deliver them. Resolvers see only the Broker interface:
// the in-process Memory broker serves one instance, and a shared implementation
// can replace it without touching them.
package broker

import (
	"context"

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
	// Invalidate tells every instance to drop a cached entry (see
	// InvalidationTopic).
	Invalidate Kind = "invalidate"
)

// InvalidationTopic carries cache invalidations between instances: a logout
// on one must end the session on all at once.
const InvalidationTopic = "system:invalidate"

// Invalidation names one cached entry.
type Invalidation struct {
	What string `json:"what"` // "session" (Key: hex token hash), "user" (Key: user id), "member" (Key: room|user)
	Key  string `json:"key"`
}

// Event is one live event. Exactly the field that matches Kind is set. Events are
// shared between subscribers and must not be modified after Publish.
type Event struct {
	Kind     Kind                  `json:"kind"`
	Message  *models.Message       `json:"message,omitempty"`  // MessageAdded, MessageDeleted (tombstone)
	Typing   *models.TypingEvent   `json:"typing,omitempty"`   // Typing
	Receipt  *models.ReadReceipt   `json:"receipt,omitempty"`  // Receipt
	Presence *models.PresenceEvent `json:"presence,omitempty"` // Presence
	Room     *models.RoomEvent     `json:"room,omitempty"`     // RoomChanged
	Inval    *Invalidation         `json:"inval,omitempty"`    // Invalidate
}

// UserTopic is the topic that carries everything addressed to one user: an event
// is published to the topic of every user allowed to see it.
func UserTopic(userID string) string { return "user:" + userID }

// Broker publishes events to topics and delivers them to subscribers.
//
// Publish never blocks on a subscriber: one whose buffer is full loses the
// subscription (its channel is closed) rather than slowing the sender or anyone
// else; the client catches up through history.
type Broker interface {
	Publish(ctx context.Context, topics []string, ev *Event) error
	// Subscribe delivers the events of topic until ctx ends or the subscriber
	// falls behind; then the channel is closed.
	Subscribe(ctx context.Context, topic string) (<-chan *Event, error)
	Close() error
}
