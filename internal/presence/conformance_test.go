package presence

import (
	"context"
	"testing"

	"github.com/qchat/qchat/internal/qchattest/redistest"
)

// trackerFactory makes two trackers of one implementation that share their
// state, as two instances would: the same value for Memory, two instances
// on one Redis prefix for Redis.
type trackerFactory struct {
	name string
	make func(t *testing.T) (a, b Tracker)
}

func trackerFactories() []trackerFactory {
	return []trackerFactory{
		{"memory", func(*testing.T) (Tracker, Tracker) {
			m := NewMemory()
			return m, m
		}},
		{"redis", func(t *testing.T) (Tracker, Tracker) {
			client, prefix := redistest.Client(t)
			a := NewRedis(client, RedisOptions{Prefix: prefix, InstanceID: "a"})
			b := NewRedis(client, RedisOptions{Prefix: prefix, InstanceID: "b"})
			t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
			return a, b
		}},
	}
}

// The transitions are global: the first connection anywhere brings a user
// online, the last one anywhere takes it offline, every instance sees the
// same, and every implementation answers alike.
func TestTrackerConformance(t *testing.T) {
	for _, f := range trackerFactories() {
		t.Run(f.name, func(t *testing.T) {
			a, b := f.make(t)
			ctx := context.Background()
			connect := func(tr Tracker, user string) func() (bool, error) {
				return func() (bool, error) { return tr.Connect(ctx, user) }
			}
			disconnect := func(tr Tracker, user string) func() (bool, error) {
				return func() (bool, error) { return tr.Disconnect(ctx, user) }
			}
			online := func(want map[string]bool) {
				t.Helper()
				for name, tr := range map[string]Tracker{"a": a, "b": b} {
					ids := make([]string, 0, len(want))
					for id := range want {
						ids = append(ids, id)
					}
					got, err := tr.Online(ctx, ids)
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != len(want) {
						t.Fatalf("instance %s: online %v, want %v", name, got, want)
					}
					for id, w := range want {
						if got[id] != w {
							t.Fatalf("instance %s: online %v, want %v", name, got, want)
						}
					}
				}
			}
			online(map[string]bool{"u": false, "v": false})
			for _, s := range []struct {
				name string
				do   func() (bool, error)
				want bool
			}{
				{"first connection on a", connect(a, "u"), true},
				{"second connection on a", connect(a, "u"), false},
				{"first connection on b", connect(b, "u"), false},
				{"another user is independent", connect(b, "v"), true},
				{"one of a's closes", disconnect(a, "u"), false},
				{"b's closes", disconnect(b, "u"), false},
				{"the last one closes", disconnect(a, "u"), true},
				{"a disconnect without a connection", disconnect(a, "u"), false},
				{"back on b", connect(b, "u"), true},
			} {
				got, err := s.do()
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if got != s.want {
					t.Fatalf("%s: transition %v, want %v", s.name, got, s.want)
				}
			}
			online(map[string]bool{"u": true, "v": true, "nobody": false})
			if off, err := b.Disconnect(ctx, "v"); err != nil || !off {
				t.Fatalf("v's last disconnect: %v %v", off, err)
			}
			online(map[string]bool{"u": true, "v": false})
			if got, err := a.Online(ctx, nil); err != nil || len(got) != 0 {
				t.Fatalf("online of nobody: %v %v", got, err)
			}
		})
	}
}
