package sharedstate

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/presence"
	"github.com/qchat/qchat/internal/qchattest/redistest"
	"github.com/qchat/qchat/internal/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSharedStateMemoryWithoutRedisURL(t *testing.T) {
	b, err := Open(context.Background(), "", "qchat:", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Broker.(*broker.Memory); !ok {
		t.Errorf("broker %T", b.Broker)
	}
	if _, ok := b.Presence.(*presence.Memory); !ok {
		t.Errorf("presence %T", b.Presence)
	}
	if _, ok := b.NewLimiter("api", 1, time.Minute).(*ratelimit.Memory); !ok {
		t.Errorf("limiter %T", b.NewLimiter("api", 1, time.Minute))
	}
	if _, ok := b.NewBucket("user", 1, 1).(*ratelimit.MemoryBucket); !ok {
		t.Errorf("bucket %T", b.NewBucket("user", 1, 1))
	}
	if b.BrokerHealth != nil {
		t.Error("BrokerHealth set for the memory broker")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSharedStateBadRedisURL(t *testing.T) {
	_, err := Open(context.Background(), "http://user:s3cret@host:6379", "qchat:", nil)
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err %v, want one naming REDIS_URL without the password", err)
	}
}

// Redis down at start is not fatal: the instance serves and says it is degraded.
func TestSharedStateUnreachableRedisIsNotFatal(t *testing.T) {
	start := time.Now()
	b, err := Open(context.Background(), "redis://127.0.0.1:1/0", "qchat:", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Open took %v", d)
	}
	if err := b.BrokerHealth(context.Background()); err == nil {
		t.Fatal("broker healthy without redis")
	}
	if err := b.Broker.Publish(context.Background(), []string{"user:x"}, &broker.Event{Kind: broker.Typing}); err != nil {
		t.Fatalf("publish without redis: %v", err)
	}
}

func TestSharedStateRedis(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	b, err := Open(ctx, redistest.URL(t), prefix, nil, WithPresenceTTL(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok := b.Broker.(*broker.Redis); !ok {
		t.Errorf("broker %T", b.Broker)
	}
	if _, ok := b.Presence.(*presence.Redis); !ok {
		t.Errorf("presence %T", b.Presence)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.BrokerHealth(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("broker not healthy: %v", b.BrokerHealth(ctx))
		}
		time.Sleep(10 * time.Millisecond)
	}
	api, auth := b.NewLimiter("api", 1, time.Minute), b.NewLimiter("auth", 1, time.Minute)
	if res, _ := api.Take(ctx, "1.2.3.4"); !res.Allowed {
		t.Fatal("first api request rejected")
	}
	if res, _ := auth.Take(ctx, "1.2.3.4"); !res.Allowed {
		t.Fatal("limiters share a budget")
	}
	if n, err := client.Exists(ctx, prefix+"ratelimit:api:1.2.3.4", prefix+"ratelimit:auth:1.2.3.4").Result(); err != nil || n != 2 {
		t.Fatalf("limiter keys: %d, %v", n, err)
	}
	// The user bucket is shared through Redis too: a second instance's
	// bucket value sees the first one's request.
	user, user2 := b.NewBucket("user", 0.001, 1), b.NewBucket("user", 0.001, 1)
	if res, _ := user.Take(ctx, "u1"); !res.Allowed {
		t.Fatal("first user request rejected")
	}
	if res, _ := user2.Take(ctx, "u1"); res.Allowed {
		t.Fatal("the user bucket is not shared")
	}
	if n, _ := client.Exists(ctx, prefix+"ratelimit:user:u1").Result(); n != 1 {
		t.Fatal("no user bucket key under the prefix")
	}
	if _, err := b.Presence.Connect(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if n, _ := client.Exists(ctx, prefix+"presence:u").Result(); n != 1 {
		t.Fatal("no presence key under the prefix")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := client.Exists(ctx, prefix+"presence:u").Result(); n != 0 {
		t.Fatal("presence claim left after Close")
	}
}
