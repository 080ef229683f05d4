package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qchat/qchat/models"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryDeliversToTopicSubscribersOnly(t *testing.T) {
	b := NewMemory(4)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := b.Subscribe(ctx, "user:a")
	c, _ := b.Subscribe(ctx, "user:c")
	ev := &Event{Kind: Typing}
	if err := b.Publish(ctx, []string{"user:a", "user:b"}, ev); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-a:
		if got != ev {
			t.Fatalf("got %v", got)
		}
	case <-time.After(time.Second):
		t.Fatal("no event for a")
	}
	select {
	case got := <-c:
		t.Fatalf("c received %v", got)
	default:
	}
}

func TestMemorySlowSubscriberIsDroppedWithoutBlocking(t *testing.T) {
	b := NewMemory(2)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, _ := b.Subscribe(ctx, "t")
	fast, _ := b.Subscribe(ctx, "t")
	done := make(chan struct{})
	go func() {
		for range fast {
		}
		close(done)
	}()
	for i := 0; i < 100; i++ {
		if err := b.Publish(ctx, []string{"t"}, &Event{Kind: Typing}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for range slow {
		n++
	}
	if n != 2 {
		t.Fatalf("slow subscriber got %d events before being cut off, want its buffer (2)", n)
	}
	if _, dropped := b.Stats(); dropped == 0 {
		t.Fatal("no drop counted")
	}
	cancel()
	<-done
}

func TestMemoryUnsubscribeOnContextEnd(t *testing.T) {
	b := NewMemory(1)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ch, _ := b.Subscribe(ctx, "t")
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed")
	}
	deadline := time.Now().Add(time.Second)
	for b.Subscribers() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
}

func TestBatchAccessors(t *testing.T) {
	r1, r2, r3 := &models.ReadReceipt{MessageID: "1"}, &models.ReadReceipt{MessageID: "2"}, &models.ReadReceipt{MessageID: "3"}
	for _, tc := range []struct {
		name string
		ev   *Event
		want []*models.ReadReceipt
	}{
		{"none", &Event{Kind: Receipt}, nil},
		{"one", &Event{Kind: Receipt, Receipt: r1}, []*models.ReadReceipt{r1}},
		{"batch", &Event{Kind: Receipt, Receipt: r1, Receipts: []*models.ReadReceipt{r2, r3}}, []*models.ReadReceipt{r1, r2, r3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Collect(tc.ev.AllReceipts())
			if !slices.Equal(got, tc.want) {
				t.Fatalf("AllReceipts = %v, want %v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		inv  Invalidation
		want []string
	}{
		{Invalidation{What: "room", Key: "a"}, []string{"a"}},
		{Invalidation{What: "member", Key: "a", More: []string{"b", "c"}}, []string{"a", "b", "c"}},
	} {
		if got := tc.inv.Keys(); !slices.Equal(got, tc.want) {
			t.Errorf("Keys(%+v) = %v, want %v", tc.inv, got, tc.want)
		}
	}
}

// The OnDrop hook of a subscription's context is called once when the
// broker drops it for falling behind, before its channel closes, and never
// for an end through the context.
func TestMemoryOnDropHook(t *testing.T) {
	b := NewMemory(1)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var slowDrops, goneDrops int
	slow, _ := b.Subscribe(OnDrop(ctx, func() { slowDrops++ }), "t")
	goneCtx, leave := context.WithCancel(ctx)
	gone, _ := b.Subscribe(OnDrop(goneCtx, func() { goneDrops++ }), "other")
	for range 3 {
		if err := b.Publish(ctx, []string{"t"}, &Event{Kind: Typing}); err != nil {
			t.Fatal(err)
		}
	}
	for range slow {
	}
	leave()
	for range gone {
	}
	if slowDrops != 1 || goneDrops != 0 {
		t.Fatalf("hook calls: dropped subscriber %d (want 1), ended subscriber %d (want 0)", slowDrops, goneDrops)
	}
}
