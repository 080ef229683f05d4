package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qchat/qchat/internal/qchattest/redistest"
	"github.com/qchat/qchat/models"
)

// newRedisPair returns two brokers, as two instances would hold, sharing
// client under prefix, once both subscriptions are established.
func newRedisPair(t *testing.T, client redis.UniversalClient, prefix string) (a, b *Redis) {
	t.Helper()
	a = NewRedis(client, RedisOptions{Prefix: prefix, InstanceID: "a", PingInterval: 200 * time.Millisecond})
	b = NewRedis(client, RedisOptions{Prefix: prefix, InstanceID: "b", PingInterval: 200 * time.Millisecond})
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	waitHealthy(t, a, 5*time.Second)
	waitHealthy(t, b, 5*time.Second)
	return a, b
}

func waitHealthy(t *testing.T, b *Redis, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := b.Health(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker %s not healthy within %v: %v", b.origin, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func next(t *testing.T, ch <-chan *Event, within time.Duration) *Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
		return nil
	}
}

func expectNone(t *testing.T, ch <-chan *Event, within time.Duration) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(within):
	}
}

func TestRedisPrefixesAreSeparate(t *testing.T) {
	client, prefix := redistest.Client(t)
	a := NewRedis(client, RedisOptions{Prefix: prefix + "one:"})
	b := NewRedis(client, RedisOptions{Prefix: prefix + "two:"})
	defer a.Close()
	defer b.Close()
	waitHealthy(t, a, 5*time.Second)
	waitHealthy(t, b, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onA, _ := a.Subscribe(ctx, "user:x")
	if err := b.Publish(ctx, []string{"user:x"}, &Event{Kind: Typing}); err != nil {
		t.Fatal(err)
	}
	expectNone(t, onA, 300*time.Millisecond)
}

// Every kind of event survives the trip through Redis unchanged.
func TestRedisEventRoundTrip(t *testing.T) {
	for _, tc := range sampleEvents() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeWire("a", []string{"user:x"}, tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			h, err := decodeWireHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeWireEvent(h.Event)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.ev) {
				t.Fatalf("round trip changed the event:\n got %+v\nwant %+v\njson %s", got, tc.ev, b)
			}
		})
	}
}

// With Redis gone, Publish still delivers here and returns nil at once, Health
// reports the outage, and once Redis is back the subscription returns by
// itself and events flow between instances again.
func TestRedisSurvivesRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	opts, _ := redis.ParseURL(srv.URL())
	opts.DialTimeout, opts.DialerRetries = time.Second, 1
	client := redis.NewClient(opts)
	defer client.Close()
	a, b := newRedisPair(t, client, "t:")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onA, _ := a.Subscribe(ctx, "user:x")
	localOnB, _ := b.Subscribe(ctx, "user:x")

	srv.Stop(t)
	start := time.Now()
	if err := b.Publish(ctx, []string{"user:x"}, &Event{Kind: Typing}); err != nil {
		t.Fatalf("publish with redis down: %v", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("publish with redis down took %v", d)
	}
	next(t, localOnB, time.Second)
	if s := b.RedisStats(); s.Failed != 1 {
		t.Fatalf("stats %+v, want 1 failed", s)
	}
	hctx, hcancel := context.WithTimeout(ctx, time.Second)
	if err := a.Health(hctx); err == nil {
		t.Fatal("healthy with redis down")
	}
	hcancel()
	expectNone(t, onA, 100*time.Millisecond)

	srv.Restart(t)
	start = time.Now()
	waitHealthy(t, a, 10*time.Second)
	waitHealthy(t, b, 10*time.Second)
	t.Logf("subscriptions back %v after redis restarted", time.Since(start).Round(time.Millisecond))
	ev := &Event{Kind: Presence, Presence: &models.PresenceEvent{UserID: "y", Online: true}}
	if err := b.Publish(ctx, []string{"user:x"}, ev); err != nil {
		t.Fatal(err)
	}
	if got := next(t, onA, 2*time.Second); !reflect.DeepEqual(got, ev) {
		t.Fatalf("after restart got %+v", got)
	}
}

// A batch stays readable by an instance of the previous version, which knows
// neither Event.Receipts nor Invalidation.More: it delivers the first receipt
// and applies the first key (the TTLs bound the rest), and an event of one
// receipt or one key is exactly what it always was.
func TestRedisBatchesReadableByEarlierVersion(t *testing.T) {
	type oldEvent struct { // the Event of the version before batches
		Kind    Kind                `json:"kind"`
		Receipt *models.ReadReceipt `json:"receipt,omitempty"`
		Inval   *struct {
			What string `json:"what"`
			Key  string `json:"key"`
		} `json:"inval,omitempty"`
	}
	type oldMessage struct {
		Origin string    `json:"o"`
		Topics []string  `json:"t"`
		Event  *oldEvent `json:"e"`
	}
	at := models.Time{Time: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
	first := &models.ReadReceipt{MessageID: "m1", Conversation: "c", UserID: "u", ReadAt: at}
	batch := &Event{Kind: Receipt, Receipt: first, Receipts: []*models.ReadReceipt{{MessageID: "m2", Conversation: "c", UserID: "u", ReadAt: at}}}
	invals := &Event{Kind: Invalidate, Inval: &Invalidation{What: "member", Key: "r|a", More: []string{"r|b"}}}
	for name, tc := range map[string]struct {
		ev   *Event
		want func(*oldEvent) bool
	}{
		"receipts": {batch, func(o *oldEvent) bool { return o.Kind == Receipt && reflect.DeepEqual(o.Receipt, first) }},
		"invalidations": {invals, func(o *oldEvent) bool {
			return o.Kind == Invalidate && o.Inval != nil && o.Inval.What == "member" && o.Inval.Key == "r|a"
		}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := encodeWire("new", []string{"user:x"}, tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			var got oldMessage
			if err := json.Unmarshal(b, &got); err != nil || got.Event == nil || !tc.want(got.Event) {
				t.Fatalf("the previous version reads %s as %+v (err %v)", b, got.Event, err)
			}
		})
	}
	// One receipt encodes as before batches: no new key on the wire.
	b, _ := encodeWire("new", []string{"user:x"}, &Event{Kind: Receipt, Receipt: first})
	if strings.Contains(string(b), "receipts") {
		t.Fatalf("a single receipt carries the batch field: %s", b)
	}
}

// Several instances carry a batch as one event.
func TestRedisDeliversBatchAsOneEvent(t *testing.T) {
	client, prefix := redistest.Client(t)
	a, b := newRedisPair(t, client, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onA, _ := a.Subscribe(ctx, "user:x")
	var more []*models.ReadReceipt
	for i := range 499 {
		more = append(more, &models.ReadReceipt{MessageID: fmt.Sprint("m", i+2), Conversation: "c", UserID: "u"})
	}
	ev := &Event{Kind: Receipt, Receipt: &models.ReadReceipt{MessageID: "m1", Conversation: "c", UserID: "u"}, Receipts: more}
	if err := b.Publish(ctx, []string{"user:x"}, ev); err != nil {
		t.Fatal(err)
	}
	got := next(t, onA, 2*time.Second)
	n := 0
	for range got.AllReceipts() {
		n++
	}
	if n != 500 {
		t.Fatalf("the batch arrived with %d receipts, want 500", n)
	}
	expectNone(t, onA, 100*time.Millisecond)
}
