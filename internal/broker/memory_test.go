package broker

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
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
