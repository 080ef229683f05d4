package presence

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qchat/qchat/internal/qchattest/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// An instance that dies without a word stops renewing its claims: its users
// go offline within the TTL, while a live instance's users stay online past it.
func TestRedisDeadInstanceExpires(t *testing.T) {
	client, prefix := redistest.Client(t)
	const ttl = 600 * time.Millisecond
	live := NewRedis(client, RedisOptions{Prefix: prefix, InstanceID: "live", TTL: ttl})
	defer live.Close()
	dead := NewRedis(client, RedisOptions{Prefix: prefix, InstanceID: "dead", TTL: ttl})
	ctx := context.Background()
	if _, err := live.Connect(ctx, "stays"); err != nil {
		t.Fatal(err)
	}
	if _, err := dead.Connect(ctx, "goes"); err != nil {
		t.Fatal(err)
	}
	// Kill: stop the heartbeat without withdrawing, as SIGKILL would.
	dead.stop()
	<-dead.done

	start := time.Now()
	for {
		on, err := live.Online(ctx, []string{"stays", "goes"})
		if err != nil {
			t.Fatal(err)
		}
		if !on["stays"] {
			t.Fatalf("live instance's user offline after %v", time.Since(start))
		}
		if !on["goes"] {
			break
		}
		if time.Since(start) > ttl+500*time.Millisecond {
			t.Fatalf("dead instance's user still online after %v (TTL %v)", time.Since(start), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("offline %v after the kill (TTL %v)", time.Since(start).Round(time.Millisecond), ttl)
	time.Sleep(2 * ttl) // several heartbeats
	if on, _ := live.Online(ctx, []string{"stays"}); !on["stays"] {
		t.Fatal("heartbeat did not keep the live instance's user online")
	}
	// The first socket after expiry is a transition again.
	if online, err := live.Connect(ctx, "goes"); err != nil || !online {
		t.Fatalf("connect after expiry: %v, %v", online, err)
	}
}

// Close withdraws the instance's claims at once rather than after the TTL.
func TestRedisCloseWithdraws(t *testing.T) {
	client, prefix := redistest.Client(t)
	a := NewRedis(client, RedisOptions{Prefix: prefix})
	b := NewRedis(client, RedisOptions{Prefix: prefix})
	defer b.Close()
	ctx := context.Background()
	if _, err := a.Connect(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if on, err := b.Online(ctx, []string{"u"}); err != nil || on["u"] {
		t.Fatalf("online after close: %v, %v", on, err)
	}
}

// Redis losing its data (a restart without persistence) is healed by the next
// heartbeat; while Redis is down, Online answers from local sockets.
func TestRedisHeartbeatReclaimsAfterRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	client := redisClient(t, srv.URL())
	const ttl = 600 * time.Millisecond
	a := NewRedis(client, RedisOptions{TTL: ttl})
	defer a.Close()
	b := NewRedis(client, RedisOptions{TTL: ttl})
	defer b.Close()
	ctx := context.Background()
	if _, err := a.Connect(ctx, "u"); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	if on, err := a.Online(ctx, []string{"u", "v"}); err != nil || !on["u"] || on["v"] {
		t.Fatalf("online from local sockets with redis down: %v, %v", on, err)
	}
	if _, err := a.Connect(ctx, "w"); err == nil {
		t.Fatal("connect with redis down: no error")
	}
	srv.Restart(t)

	start := time.Now()
	for {
		on, err := b.Online(ctx, []string{"u", "w"})
		if err == nil && on["u"] && on["w"] {
			break
		}
		if time.Since(start) > 2*ttl+time.Second {
			t.Fatalf("not reclaimed %v after redis restarted: %v, %v", time.Since(start), on, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("reclaimed %v after redis restarted", time.Since(start).Round(time.Millisecond))
}

func TestRedisOnlineManyUsers(t *testing.T) {
	client, prefix := redistest.Client(t)
	a := NewRedis(client, RedisOptions{Prefix: prefix})
	defer a.Close()
	ctx := context.Background()
	ids := make([]string, 2*scriptBatch+3)
	for i := range ids {
		ids[i] = "u" + string(rune('a'+i%26)) + time.Duration(i).String()
		if i%2 == 0 {
			if _, err := a.Connect(ctx, ids[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	on, err := a.Online(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if on[id] != (i%2 == 0) {
			t.Fatalf("%s online %v", id, on[id])
		}
	}
	if err := a.beat(ctx); err != nil {
		t.Fatalf("heartbeat of %d users: %v", len(ids)/2, err)
	}
}
