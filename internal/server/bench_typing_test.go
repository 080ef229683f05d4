package server_test

import (
	"testing"
	"time"

	"github.com/qchat/qchat/internal/qchattest"
)

// typingSub is the SDK's typing operation (client/generated.go).
const typingSub = `subscription typing($roomId: ID) { typing(roomId: $roomId) { user { ...UserRef } roomId recipientId isTyping } }
fragment UserRef on User { id username }`

// BenchmarkTypingDelivery has one member of a room of 101 report typing
// (setTyping) to the 100 others, each with a socket subscribed to typing,
// and waits for all 100 deliveries before the next report. ns/delivery is
// ns/op over 100, the mutation included; the subscribers' reading runs in
// the same process and is included too.
func BenchmarkTypingDelivery(b *testing.B) {
	const subscribers = 100
	srv, users, roomID := benchRoom(b, qchattest.NewSQLite(b), subscribers+1)
	subs := make([]*qchattest.Sub, subscribers)
	for i, u := range users[1:] {
		subs[i] = srv.Connect(b, qchattest.TransportWS, u.Token).Subscribe(typingSub, map[string]any{"roomId": roomID})
	}
	srv.WaitSubscribers(b, subscribers)
	p := newPoster(srv, users[0].Token)
	bodies := [][]byte{
		qchattest.GraphQLBody(`mutation($r: ID) { setTyping(roomId: $r, isTyping: true) }`, map[string]any{"r": roomID}),
		qchattest.GraphQLBody(`mutation($r: ID) { setTyping(roomId: $r, isTyping: false) }`, map[string]any{"r": roomID}),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.post(b, bodies[i%2])
		for _, s := range subs {
			if m, ok := s.Raw(b, 10*time.Second); !ok || m.Type != "next" {
				b.Fatalf("delivery: %s %s (received: %v)", m.Type, m.Payload, ok)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subscribers), "ns/delivery")
}
