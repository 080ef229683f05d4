package broker

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qchat/qchat/internal/qchattest/redistest"
	"github.com/qchat/qchat/models"
)

// instance is a broker with the counters both implementations keep.
type instance interface {
	Broker
	Subscribers() int
	Stats() (delivered, dropped uint64)
}

// brokerFactory makes two brokers of one implementation that exchange
// events, as two instances would: the same value for Memory, two instances
// on one Redis prefix for Redis. buffer is each subscriber's queue.
type brokerFactory struct {
	name string
	make func(t *testing.T, buffer int) (a, b instance)
}

var (
	_ instance = (*Memory)(nil)
	_ instance = (*Redis)(nil)
)

func brokerFactories() []brokerFactory {
	return []brokerFactory{
		{"memory", func(t *testing.T, buffer int) (instance, instance) {
			m := NewMemory(buffer)
			t.Cleanup(func() { _ = m.Close() })
			return m, m
		}},
		{"redis", func(t *testing.T, buffer int) (instance, instance) {
			client, prefix := redistest.Client(t)
			opts := func(id string) RedisOptions {
				return RedisOptions{Prefix: prefix, InstanceID: id, Buffer: buffer, PingInterval: 200 * time.Millisecond}
			}
			a, b := NewRedis(client, opts("a")), NewRedis(client, opts("b"))
			t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
			waitHealthy(t, a, 5*time.Second)
			waitHealthy(t, b, 5*time.Second)
			return a, b
		}},
	}
}

// Every implementation of Broker behaves alike: one suite, run against each.
func TestBrokerConformance(t *testing.T) {
	for _, f := range brokerFactories() {
		t.Run(f.name, func(t *testing.T) {
			t.Run("delivers to the topic's subscribers on every instance, once", func(t *testing.T) {
				a, b := f.make(t, 8)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				onA, _ := a.Subscribe(ctx, "user:x")
				otherOnA, _ := a.Subscribe(ctx, "user:z")
				onB, _ := b.Subscribe(ctx, "user:x")
				ev := &Event{Kind: Typing, Typing: &models.TypingEvent{UserID: "y", IsTyping: true}}
				if err := b.Publish(ctx, []string{"user:x", "user:y"}, ev); err != nil {
					t.Fatal(err)
				}
				if got := next(t, onB, 2*time.Second); got != ev {
					t.Fatalf("the publisher's own subscriber got %+v, want the published event itself", got)
				}
				if got := next(t, onA, 2*time.Second); !reflect.DeepEqual(got, ev) {
					t.Fatalf("the other instance's subscriber got %+v, want %+v", got, ev)
				}
				// Events of one publisher arrive in order: the next one each
				// subscriber sees is the marker, not a second copy of ev.
				marker := &Event{Kind: Presence, Presence: &models.PresenceEvent{UserID: "marker"}}
				if err := b.Publish(ctx, []string{"user:x", "user:z"}, marker); err != nil {
					t.Fatal(err)
				}
				for name, ch := range map[string]<-chan *Event{"a's user:x": onA, "a's user:z": otherOnA, "b's user:x": onB} {
					if got := next(t, ch, 2*time.Second); !reflect.DeepEqual(got, marker) {
						t.Fatalf("%s got %+v, want only the marker", name, got)
					}
				}
			})

			t.Run("an ended context ends the subscription without the drop hook", func(t *testing.T) {
				a, _ := f.make(t, 8)
				before := a.Subscribers()
				dropped := false
				ctx, cancel := context.WithCancel(OnDrop(context.Background(), func() { dropped = true }))
				ch, err := a.Subscribe(ctx, "user:x")
				if err != nil {
					t.Fatal(err)
				}
				if n := a.Subscribers(); n != before+1 {
					t.Fatalf("%d subscribers, want %d", n, before+1)
				}
				cancel()
				drain(t, ch)
				waitUntil(t, "the subscriber to be forgotten", func() bool { return a.Subscribers() == before })
				if dropped {
					t.Fatal("the drop hook ran for a subscription its context ended")
				}
			})

			t.Run("a subscriber that falls behind is dropped and told, without blocking the publisher", func(t *testing.T) {
				const buffer = 2
				a, _ := f.make(t, buffer)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				drops := 0
				slow, _ := a.Subscribe(OnDrop(ctx, func() { drops++ }), "user:x")
				// Published on the subscriber's own instance, where delivery
				// is synchronous: the slow subscriber reads nothing meanwhile.
				for i := range 100 {
					if err := a.Publish(ctx, []string{"user:x"}, &Event{Kind: Typing, Typing: &models.TypingEvent{UserID: fmt.Sprint(i)}}); err != nil {
						t.Fatal(err)
					}
				}
				if n := drain(t, slow); n != buffer {
					t.Fatalf("the slow subscriber got %d events before being cut off, want its buffer (%d)", n, buffer)
				}
				if drops != 1 {
					t.Fatalf("the drop hook ran %d times, want once", drops)
				}
				if _, dropped := a.Stats(); dropped == 0 {
					t.Fatal("no drop counted")
				}
			})

			t.Run("SubscribeFunc delivers in order from a goroutine that runs only while events wait", func(t *testing.T) {
				a, b := f.make(t, 8)
				ctx, cancel := context.WithCancel(context.Background())
				idle := goleak.IgnoreCurrent()
				got := make(chan *Event, 100)
				ended := make(chan struct{})
				if err := a.SubscribeFunc(ctx, "user:x", func(ev *Event) bool { got <- ev; return true }, func() { close(ended) }); err != nil {
					t.Fatal(err)
				}
				// From the other instance too, where events arrive as they
				// are received; 5 at a time stays within the buffer.
				for _, pub := range []instance{a, b} {
					for round := range 4 {
						for i := range 5 {
							if err := pub.Publish(ctx, []string{"user:x"}, &Event{Kind: Typing, Typing: &models.TypingEvent{UserID: fmt.Sprint(round*5 + i)}}); err != nil {
								t.Fatal(err)
							}
						}
						for i := range 5 {
							if ev := next(t, got, 2*time.Second); ev.Typing.UserID != fmt.Sprint(round*5+i) {
								t.Fatalf("got %s, want %d", ev.Typing.UserID, round*5+i)
							}
						}
					}
				}
				if err := goleak.Find(idle); err != nil {
					t.Fatalf("an idle subscription holds a goroutine: %v", err)
				}
				cancel()
				<-ended
			})

			t.Run("SubscribeFunc drops a subscriber whose buffer is full, after delivering it", func(t *testing.T) {
				const buffer = 2
				a, _ := f.make(t, buffer)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var drops, delivered atomic.Int32
				entered, release, ended := make(chan struct{}), make(chan struct{}), make(chan struct{})
				err := a.SubscribeFunc(OnDrop(ctx, func() { drops.Add(1) }), "user:x", func(ev *Event) bool {
					if delivered.Add(1) == 1 {
						close(entered)
						<-release
					}
					return true
				}, func() { close(ended) })
				if err != nil {
					t.Fatal(err)
				}
				publish := func(i int) {
					if err := a.Publish(ctx, []string{"user:x"}, &Event{Kind: Typing, Typing: &models.TypingEvent{UserID: fmt.Sprint(i)}}); err != nil {
						t.Fatal(err)
					}
				}
				publish(0)
				<-entered // the first event is being delivered: the buffer is empty
				for i := range 100 {
					publish(i + 1)
				}
				if drops.Load() != 1 {
					t.Fatalf("the drop hook ran %d times before the subscriber caught up, want once", drops.Load())
				}
				close(release)
				<-ended
				if n := delivered.Load(); n != buffer+1 {
					t.Fatalf("delivered %d events, want the one in hand and the buffer's %d", n, buffer)
				}
				if _, dropped := a.Stats(); dropped == 0 {
					t.Fatal("no drop counted")
				}
			})

			t.Run("SubscribeFunc ends once, on its context or when deliver says so, without the drop hook", func(t *testing.T) {
				a, _ := f.make(t, 8)
				before := a.Subscribers()
				for _, stop := range []string{"context", "deliver"} {
					var ends, drops, delivered atomic.Int32
					ctx, cancel := context.WithCancel(OnDrop(context.Background(), func() { drops.Add(1) }))
					ended := make(chan struct{})
					err := a.SubscribeFunc(ctx, "user:x", func(*Event) bool { delivered.Add(1); return false }, func() {
						ends.Add(1)
						close(ended)
					})
					if err != nil {
						t.Fatal(err)
					}
					if stop == "context" {
						cancel()
					} else {
						for range 3 {
							_ = a.Publish(context.Background(), []string{"user:x"}, &Event{Kind: Typing, Typing: &models.TypingEvent{}})
						}
					}
					<-ended
					cancel()
					waitUntil(t, "the subscriber to be forgotten", func() bool { return a.Subscribers() == before })
					if ends.Load() != 1 || drops.Load() != 0 || delivered.Load() > 1 {
						t.Fatalf("%s: end ran %d times, the drop hook %d, deliver %d", stop, ends.Load(), drops.Load(), delivered.Load())
					}
				}
			})

			t.Run("close ends every subscription and refuses more", func(t *testing.T) {
				a, _ := f.make(t, 8)
				ch, err := a.Subscribe(context.Background(), "user:x")
				if err != nil {
					t.Fatal(err)
				}
				ended := make(chan struct{})
				if err := a.SubscribeFunc(context.Background(), "user:x", func(*Event) bool { return true }, func() { close(ended) }); err != nil {
					t.Fatal(err)
				}
				if err := a.Close(); err != nil {
					t.Fatal(err)
				}
				drain(t, ch)
				<-ended
				if err := a.Publish(context.Background(), []string{"user:x"}, &Event{Kind: Typing}); err == nil {
					t.Fatal("publish after close succeeded")
				}
				if _, err := a.Subscribe(context.Background(), "user:x"); err == nil {
					t.Fatal("subscribe after close succeeded")
				}
				if err := a.SubscribeFunc(context.Background(), "user:x", func(*Event) bool { return true }, func() {}); err == nil {
					t.Fatal("SubscribeFunc after close succeeded")
				}
				if err := a.Close(); err != nil {
					t.Fatalf("second close: %v", err)
				}
			})
		})
	}
}

// drain reads ch until it closes and returns how many events it held; the
// time bound is only a backstop for a broken broker.
func drain(t *testing.T, ch <-chan *Event) int {
	t.Helper()
	n := 0
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n
			}
			n++
		case <-timeout:
			t.Fatal("subscription not closed")
		}
	}
}

// waitUntil polls cond until it holds; the time bound is only a backstop.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
