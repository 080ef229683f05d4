package db_test

import (
	"crypto/rand"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
)

// BenchmarkInsertDirectMessage writes direct messages straight into the
// store, 16 senders at once in 16 conversations as qchat-load's dm scenario
// sends them, with its sizes (a 128-byte line, an ML-KEM-768 ciphertext and a
// wrapped key per recipient, sender included). It reports the process's CPU
// per message (cpu-µs/msg), the figure issue 15 budgets, next to wall time.
// Message ids are random (v4) or time-ordered (v7) UUIDs: a random id lands
// on a random leaf page of both primary-key indexes, a v7 one on the last.
func BenchmarkInsertDirectMessage(b *testing.B) {
	for _, ids := range []struct {
		name string
		new  func() string
	}{
		{"v4", uuid.NewString},
		{"v7", func() string { return uuid.Must(uuid.NewV7()).String() }},
	} {
		b.Run("sqlite/ids="+ids.name, func(b *testing.B) {
			s := qchattest.NewSQLite(b)
			benchInsertDirect(b, s, ids.new, 0)
		})
	}
	// On PostgreSQL the figure is QChat's side only (the driver, the
	// batching): the database's own CPU is another process's.
	b.Run("postgres/ids=v7", func(b *testing.B) {
		s := qchattest.NewPostgres(b)
		benchInsertDirect(b, s, func() string { return uuid.Must(uuid.NewV7()).String() }, 0)
	})
	// A room message of 10 carries 10 keys: its rows, not its indexes, are
	// most of what a batch writes.
	b.Run("sqlite/ids=v7/keys=10", func(b *testing.B) {
		s := qchattest.NewSQLite(b)
		benchInsertDirect(b, s, func() string { return uuid.Must(uuid.NewV7()).String() }, 8)
	})
}

// benchInsertDirect sends from each of 16 pairs of users; each message has a
// key for both and for extra more users.
func benchInsertDirect(b *testing.B, s *db.Store, newID func() string, extra int) {
	const pairs = 16
	type pair struct {
		from, to *models.User
		conv     string
	}
	ps := make([]pair, pairs)
	for i := range ps {
		from := seedUser(b, s, "from"+uuid.NewString()[:8])
		to := seedUser(b, s, "to"+uuid.NewString()[:8])
		ps[i] = pair{from, to, db.DirectConversation(from.ID, to.ID)}
	}
	random := func(n int) []byte {
		p := make([]byte, n)
		_, _ = rand.Read(p)
		return p
	}
	cipher, kem, wrapped := random(128+16), random(1088), random(40)
	others := make([]*models.User, extra)
	for i := range others {
		others[i] = seedUser(b, s, "other"+uuid.NewString()[:8])
	}
	var next atomic.Int64
	b.SetParallelism(pairs / 2) // GOMAXPROCS 2: 16 goroutines
	b.ReportAllocs()
	start := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := ps[next.Add(1)%pairs]
		for pb.Next() {
			id := newID()
			to := p.to.ID
			m := &models.Message{ID: id, Conversation: p.conv, SenderID: p.from.ID, RecipientID: &to,
				CipherBytes: cipher, NonceBytes: random(12), ContentHash: random(32), CreatedAt: models.Now()}
			keys := []*models.RecipientKey{
				{MessageID: id, UserID: p.to.ID, KeyID: p.to.CurrentKeyID, KEMBytes: kem, WrappedBytes: wrapped},
				{MessageID: id, UserID: p.from.ID, KeyID: p.from.CurrentKeyID, KEMBytes: kem, WrappedBytes: wrapped},
			}
			for _, o := range others {
				keys = append(keys, &models.RecipientKey{MessageID: id, UserID: o.ID, KeyID: o.CurrentKeyID, KEMBytes: kem, WrappedBytes: wrapped})
			}
			if _, _, err := s.InsertMessage(b.Context(), m, keys); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// cpuTime is the process's user and system CPU so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
