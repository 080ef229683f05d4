package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Broker = (*Redis)(nil)

// Redis is the broker of several instances: each delivers to its own
// subscribers through an embedded Memory broker, and the instances exchange
// events over one Redis pub/sub channel.
//
// One channel for every topic, not one per user: an event costs a single
// PUBLISH however many users it is addressed to, an instance holds a single
// subscription whatever its number of sockets, and each instance drops what
// none of its subscribers wants (Memory.Publish on a topic nobody holds is a
// map lookup). The price is that every instance decodes every event, which is
// cheap next to the database write that preceded it.
//
// Live delivery between instances is at most once: an event published while
// Redis is unreachable reaches this instance's subscribers only. Storage has
// already happened, and clients catch up through history with their cursor.
type Redis struct {
	local   *Memory
	client  redis.UniversalClient
	channel string
	origin  string
	log     *slog.Logger
	opts    RedisOptions

	up             atomic.Bool // the subscription is established
	publishFailing atomic.Bool // the last PUBLISH failed
	stop           context.CancelFunc
	done           chan struct{}
	closing        sync.Once

	psMu sync.Mutex
	ps   *redis.PubSub // the current subscription; nil once closed

	published atomic.Uint64 // messages PUBLISHed to Redis
	failed    atomic.Uint64 // PUBLISHes that failed (the event reached local subscribers only)
	received  atomic.Uint64 // foreign messages delivered locally
	malformed atomic.Uint64 // messages that did not decode
	newer     atomic.Uint64 // messages of a newer wire version, skipped

	newerSeen sync.Map // wire versions above WireVersion already logged
}

// RedisOptions tune a Redis broker; the zero value is usable.
type RedisOptions struct {
	// Prefix starts every Redis name (channel "<Prefix>events"), so that
	// several deployments can share one Redis.
	Prefix string
	// InstanceID identifies this process in its messages so that it skips
	// its own; empty means a random one.
	InstanceID string
	// Buffer is the local subscribers' buffer (see NewMemory).
	Buffer int
	// PublishTimeout bounds the PUBLISH of one event (default 1 s): the
	// request that caused the event must not wait on an unreachable Redis.
	PublishTimeout time.Duration
	// PingInterval is how long the subscription may stay silent before it is
	// pinged, and how long a ping may stay unanswered before the connection
	// is replaced (default 5 s).
	PingInterval time.Duration
	// Log receives the outages and recoveries; nil discards.
	Log *slog.Logger
}

// Backoff between attempts to restore the subscription.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// NewRedis returns a broker that shares events through client and starts its
// receive loop; Close stops it. client is not closed by Close: it may be
// shared (presence and rate limits use it too). An unreachable Redis is not
// an error: the loop keeps trying, and Health reports it meanwhile.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.InstanceID == "" {
		opts.InstanceID = NewInstanceID()
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &Redis{
		local:   NewMemory(opts.Buffer),
		client:  client,
		channel: opts.Prefix + "events",
		origin:  opts.InstanceID,
		log:     opts.Log.With("component", "broker", "instance", opts.InstanceID),
		opts:    opts,
		stop:    stop,
		done:    make(chan struct{}),
	}
	r.ps = client.Subscribe(ctx, r.channel)
	go r.receive(ctx)
	return r
}

// NewInstanceID returns a random identifier for this process.
func NewInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Publish implements Broker: it delivers to this instance's subscribers at
// once, then hands the event to Redis for the others. A Redis failure is
// logged and counted, not returned: the caller has stored what the event
// announces, and the event did reach every subscriber that can be reached.
func (r *Redis) Publish(ctx context.Context, topics []string, ev *Event) error {
	if err := r.local.Publish(ctx, topics, ev); err != nil {
		return err
	}
	if len(topics) == 0 {
		return nil
	}
	payload, err := encodeWire(r.origin, topics, ev)
	if err != nil {
		return err
	}
	// The event must go out even if the request that caused it has ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.PublishTimeout)
	defer cancel()
	if err := r.client.Publish(ctx, r.channel, payload).Err(); err != nil {
		r.failed.Add(1)
		// Logged when failures start, not for each event of an outage;
		// the failed counter tells how many.
		if !r.publishFailing.Swap(true) {
			r.log.WarnContext(ctx, "redis publish failing: events reach this instance's subscribers only", "kind", ev.Kind, "err", err)
		}
		return nil
	}
	r.published.Add(1)
	if r.publishFailing.Swap(false) {
		r.log.InfoContext(ctx, "redis publish works again", "failed_total", r.failed.Load())
	}
	return nil
}

// Subscribe implements Broker.
func (r *Redis) Subscribe(ctx context.Context, topic string) (<-chan *Event, error) {
	return r.local.Subscribe(ctx, topic)
}

// SubscribeFunc implements Broker.
func (r *Redis) SubscribeFunc(ctx context.Context, topic string, deliver func(*Event) bool, end func()) error {
	return r.local.SubscribeFunc(ctx, topic, deliver, end)
}

// receive delivers the other instances' events until ctx ends. go-redis
// re-establishes a broken subscription on the next read; this loop adds the
// backoff, the pings that find a silently dead connection, and the state
// Health reports.
func (r *Redis) receive(ctx context.Context) {
	defer close(r.done)
	backoff := minBackoff
	pinged := false // a ping is unanswered
	for {
		ps := r.pubsub()
		if ps == nil {
			return
		}
		msg, err := ps.ReceiveTimeout(ctx, r.opts.PingInterval)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			backoff, pinged = minBackoff, false
			r.setUp(true, nil)
			if m, ok := msg.(*redis.Message); ok {
				r.deliver(m.Payload)
			}
		case isTimeout(err) && !pinged:
			// Silence: ask for a pong, which arrives as the next message.
			if err := ps.Ping(ctx); err != nil {
				r.setUp(false, err)
			}
			pinged = true
		case isTimeout(err):
			// The pong did not come: replace the connection.
			r.setUp(false, errors.New("ping unanswered"))
			r.resubscribe(ctx)
			pinged = false
		default:
			r.setUp(false, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

func (r *Redis) pubsub() *redis.PubSub {
	r.psMu.Lock()
	defer r.psMu.Unlock()
	return r.ps
}

// resubscribe replaces the subscription with a new one on a new connection.
func (r *Redis) resubscribe(ctx context.Context) {
	r.psMu.Lock()
	defer r.psMu.Unlock()
	if r.ps == nil {
		return
	}
	_ = r.ps.Close()
	r.ps = r.client.Subscribe(ctx, r.channel)
}

// setUp records the subscription's state and logs its changes only, so that
// an outage makes two lines rather than one per attempt.
func (r *Redis) setUp(up bool, err error) {
	if r.up.Swap(up) == up {
		return
	}
	if up {
		r.log.Info("redis subscription established", "channel", r.channel)
	} else {
		r.log.Warn("redis subscription lost: live events from other instances are missed until it returns", "channel", r.channel, "err", err)
	}
}

// deliver decodes one message and hands it to the local subscribers, unless
// this instance sent it (it was delivered locally when published).
//
// A message of a newer wire version comes from an instance already upgraded
// in a rolling upgrade: it is skipped (its subscribers catch up through
// history, as after any missed live event) and logged once per version, not
// once per event of a busy cluster.
func (r *Redis) deliver(payload string) {
	h, err := decodeWireHeader([]byte(payload))
	if err == nil && h.Origin == r.origin {
		return
	}
	if err == nil && h.Version > WireVersion {
		r.newer.Add(1)
		if _, seen := r.newerSeen.LoadOrStore(h.Version, true); !seen {
			r.log.Warn("redis: skipping events of a newer wire version until this instance is upgraded",
				"version", h.Version, "understood", WireVersion)
		}
		return
	}
	var ev *Event
	if err == nil && len(h.Event) > 0 && string(h.Event) != "null" {
		ev, err = decodeWireEvent(h.Event)
	}
	if err != nil || ev == nil {
		r.malformed.Add(1)
		r.log.Warn("redis: undecodable broker message dropped", "err", err, "bytes", len(payload))
		return
	}
	r.received.Add(1)
	_ = r.local.Publish(context.Background(), h.Topics, ev)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Health reports an error while Redis does not answer a PING or the
// subscription is down: this instance then neither sends live events to the
// others nor receives theirs.
func (r *Redis) Health(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	if !r.up.Load() {
		return errors.New("redis subscription down")
	}
	return nil
}

// Stats reports deliveries to this instance's subscribers and the drops of
// slow ones, as Memory.Stats does.
func (r *Redis) Stats() (delivered, dropped uint64) { return r.local.Stats() }

// RedisStats counts the traffic with Redis since start.
type RedisStats struct {
	Published uint64 // events sent to the other instances
	Failed    uint64 // events that could not be sent (delivered locally only)
	Received  uint64 // events received from the other instances
	Malformed uint64 // messages that did not decode
	Newer     uint64 // messages of a newer wire version, skipped
}

// RedisStats reports the traffic with Redis.
func (r *Redis) RedisStats() RedisStats {
	return RedisStats{Published: r.published.Load(), Failed: r.failed.Load(), Received: r.received.Load(), Malformed: r.malformed.Load(), Newer: r.newer.Load()}
}

// Subscribers counts this instance's live subscriptions.
func (r *Redis) Subscribers() int { return r.local.Subscribers() }

// Close stops the receive loop and ends every local subscription. It does
// not close the Redis client.
func (r *Redis) Close() error {
	r.closing.Do(func() {
		r.stop()
		r.psMu.Lock()
		// Closing the connection interrupts a read in progress at once.
		_ = r.ps.Close()
		r.ps = nil
		r.psMu.Unlock()
		<-r.done
		r.up.Store(false)
		_ = r.local.Close()
	})
	return nil
}
