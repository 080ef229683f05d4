package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/qchat/qchat/internal/config"
)

// What one qchat CLI command costs in signed-in requests, counted through the
// real server's request log (qchat-server at LOG_LEVEL=debug, one command at
// a time): send = myRooms + me + roomMembers + sendMessage; history = 2 ×
// myRooms + roomMessages; upload = myRooms + me + roomMembers +
// uploadDocument + roomMembers + sendMessage; listen = 5 subscriptions on its
// socket at start, then one markRead per message it shows. (The websocket
// upgrade, register and login carry no session: they count per IP.)
const (
	cliSend         = 4
	cliHistory      = 3
	cliUpload       = 6
	cliListenStart  = 5
	cliPerShownRead = 1
	webHistoryPage  = 1
)

// The default user bucket never refuses a busy person: the tests walk a fake
// clock through their request patterns, so they do not depend on speed.
func TestDefaultsFitAChatUser(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// start is spent at once at the beginning; then perSecond every
		// second for seconds.
		start, perSecond, seconds int
	}{
		// Sending every second for ten minutes while listening to a room
		// where nine others also send every second (600 messages a minute).
		{"CLI: a message a second in a room of ten busy people", cliListenStart, cliSend + 9*cliPerShownRead, 600},
		// A web client pulling 500 pages of history (25,000 messages) at
		// once, then chatting at the same pace.
		{"web: 500 history pages at once, then chatting", 500 * webHistoryPage, cliSend + 9*cliPerShownRead, 600},
		// A script uploading 50 files back to back, then sending every second.
		{"CLI: 50 uploads at once, then a message a second", 50*cliUpload + cliHistory, cliSend, 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			b := NewMemoryBucket(cfg.UserRateLimitRate, cfg.UserRateLimitBurst, clock.Now)
			spend := func(n int, at int) {
				for i := range n {
					if res, _ := b.Take(context.Background(), "user"); !res.Allowed {
						t.Fatalf("request %d at second %d refused: %+v", i+1, at, res)
					}
				}
			}
			spend(tt.start, 0)
			for s := 1; s <= tt.seconds; s++ {
				clock.Advance(time.Second)
				spend(tt.perSecond, s)
			}
		})
	}
}

// The default bucket still stops a client far above a person's pace: one
// making 100 requests a second is refused within seconds.
func TestDefaultsStopAFlood(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	b := NewMemoryBucket(cfg.UserRateLimitRate, cfg.UserRateLimitBurst, clock.Now)
	for ms := 0; ms < 60_000; ms += 10 {
		if res, _ := b.Take(context.Background(), "user"); !res.Allowed {
			if ms > 10_000 {
				t.Fatalf("first refusal after %d ms, want within 10 s", ms)
			}
			return
		}
		clock.Advance(10 * time.Millisecond)
	}
	t.Fatal("100 requests a second for a minute were all allowed")
}
