package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/middleware"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/pqcrypto"
)

// Server-path benchmarks: every operation goes through the real handler over
// loopback HTTP, as a client's would. Run with `make bench`.

func forEachBenchDB(b *testing.B, fn func(b *testing.B, store *db.Store)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, qchattest.NewSQLite(b)) })
	b.Run("postgres", func(b *testing.B) { fn(b, qchattest.NewPostgres(b)) })
}

// poster sends prepared GraphQL bodies over one keep-alive connection.
type poster struct {
	url    string
	token  string
	hc     *http.Client
	header http.Header // extra request headers
}

func newPoster(srv *qchattest.Server, token string) *poster {
	return &poster{url: srv.URL + "/graphql", token: token, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

func (p *poster) post(b *testing.B, body []byte) []byte {
	req, _ := http.NewRequest(http.MethodPost, p.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.token)
	for k, v := range p.header {
		req.Header[k] = v
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"errors"`)) {
		b.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	return out
}

// BenchmarkMe is the cheapest authenticated query: the fixed cost per request.
func BenchmarkMe(b *testing.B) {
	srv := qchattest.NewServer(b, qchattest.NewSQLite(b))
	u := srv.Register(b, "alice")
	p := newPoster(srv, u.Token)
	body := qchattest.GraphQLBody(`{ me { id } }`, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.post(b, body)
		}
	})
}

// BenchmarkSendMessage posts sealed messages into a room of 2, 10 and 50
// members (10: issue 15's room row), and as direct messages (dm: its first
// row). Envelopes are sealed before the timer: the benchmark measures the
// server, not the client's encryption.
func BenchmarkSendMessage(b *testing.B) {
	forEachBenchDB(b, func(b *testing.B, store *db.Store) {
		// dmPoster registers a pair and seals b.N direct messages from the
		// first to the second.
		dmPoster := func(b *testing.B) (*poster, [][]byte) {
			srv := qchattest.NewServer(b, store)
			alice := srv.Register(b, "dm_a_"+uuid.NewString()[:8])
			bob := srv.Register(b, "dm_b_"+uuid.NewString()[:8])
			return newPoster(srv, alice.Token), sealedBodies(b, []*qchattest.User{alice, bob}, "", b.N)
		}
		b.Run("dm", func(b *testing.B) {
			p, bodies := dmPoster(b)
			b.ReportAllocs()
			cpu := startCPU(b)
			for i := range b.N {
				p.post(b, bodies[i])
			}
			cpu.report(b)
		})
		// 16 senders at once, as qchat-load's dm: concurrent inserts share
		// a batch (one transaction) on both databases.
		b.Run("dm/parallel", func(b *testing.B) {
			p, bodies := dmPoster(b)
			b.ReportAllocs()
			b.SetParallelism(8)
			cpu := startCPU(b)
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.post(b, bodies[int(n.Add(1)-1)])
				}
			})
			cpu.report(b)
		})
		for _, size := range []int{2, 10, 50} {
			b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
				srv, users, roomID := benchRoom(b, store, size)
				bodies := sealedBodies(b, users, roomID, b.N)
				p := newPoster(srv, users[0].Token)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					p.post(b, bodies[i])
				}
			})
			b.Run(fmt.Sprintf("members=%d/parallel", size), func(b *testing.B) {
				srv, users, roomID := benchRoom(b, store, size)
				bodies := sealedBodies(b, users, roomID, b.N)
				p := newPoster(srv, users[0].Token)
				b.ReportAllocs()
				b.SetParallelism(8) // 16 concurrent senders on 2 CPUs
				b.ResetTimer()
				var n atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						p.post(b, bodies[int(n.Add(1)-1)])
					}
				})
			})
		}
	})
}

// cpuClock measures the process's CPU (user and system) over a benchmark's
// loop, reported as cpu-µs/op next to wall time: on PostgreSQL the
// database's CPU is another process's, and wall time includes waiting for
// its commits. The figure covers the client's side of each request too.
type cpuClock time.Duration

func startCPU(b *testing.B) cpuClock {
	b.ResetTimer()
	return cpuClock(processCPU(b))
}

func (c cpuClock) report(b *testing.B) {
	b.StopTimer()
	b.ReportMetric(float64((processCPU(b)-time.Duration(c)).Microseconds())/float64(b.N), "cpu-µs/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRoom starts a server over store with a room of size fresh members.
func benchRoom(b *testing.B, store *db.Store, size int) (*qchattest.Server, []*qchattest.User, string) {
	b.Helper()
	srv := qchattest.NewServer(b, store)
	users := make([]*qchattest.User, size)
	ids := make([]string, 0, size)
	for i := range users {
		users[i] = srv.Register(b, fmt.Sprintf("u%d_%d_%s", size, i, uuid.NewString()[:8]))
		if i > 0 {
			ids = append(ids, users[i].ID)
		}
	}
	var room struct{ CreateRoom struct{ ID string } }
	srv.MustDo(b, users[0].Token, `mutation($in: CreateRoomInput!) { createRoom(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"name": "bench", "memberIds": ids}}, &room)
	return srv, users, room.CreateRoom.ID
}

// sealedBodies makes n sendMessage bodies for the room (or, with roomID "",
// direct messages from users[0] to users[1]), each with its own id and
// signed (version 2) for it. The envelope is sealed once: the server cannot
// tell an envelope sealed for one id from another, but the signature covers
// the id, so each body is signed afresh, before the timer (the benchmark
// measures the server, not the client's sealing or signing).
func sealedBodies(b *testing.B, users []*qchattest.User, roomID string, n int) [][]byte {
	b.Helper()
	recipientID := ""
	if roomID == "" {
		recipientID = users[1].ID
	}
	in := qchattest.Seal(b, uuid.NewString(), users[0], roomID, recipientID, "benchmark message", users...)
	env, err := pqcrypto.ValidateWire(pqcrypto.WireEnvelope{Ciphertext: in["ciphertext"].(string), Nonce: in["nonce"].(string), Keys: wireKeysOf(in)},
		func(string) (pqcrypto.Algorithm, bool) { return pqcrypto.MLKEM768, true })
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		id := client.NewID() // time-ordered, as the SDK's and the load tool's
		sig, err := pqcrypto.SignEnvelope(users[0].IK, pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: id, SenderID: users[0].ID, ConversationID: roomID + recipientID}, env)
		if err != nil {
			b.Fatal(err)
		}
		in["id"], in["signature"] = id, pqcrypto.EncodeB64(sig)
		out[i] = qchattest.GraphQLBody(`mutation($in: SendMessageInput!) { sendMessage(input: $in) { id } }`, map[string]any{"in": in})
	}
	return out
}

// BenchmarkRoomMessages reads pages of 50 messages, as a client scrolling back.
func BenchmarkRoomMessages(b *testing.B) {
	forEachBenchDB(b, func(b *testing.B, store *db.Store) {
		srv := qchattest.NewServer(b, store)
		alice := srv.Register(b, "alice_"+uuid.NewString()[:8])
		bob := srv.Register(b, "bob_"+uuid.NewString()[:8])
		var room struct{ CreateRoom struct{ ID string } }
		srv.MustDo(b, alice.Token, `mutation($in: CreateRoomInput!) { createRoom(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"name": "history", "memberIds": []string{bob.ID}}}, &room)
		for range 200 {
			in := qchattest.Seal(b, uuid.NewString(), alice, room.CreateRoom.ID, "", "history", alice, bob)
			srv.MustDo(b, alice.Token, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id } }`, map[string]any{"in": in}, nil)
		}
		// %s is the root field's directive: none for the history fast
		// path (graph/history.go), which a page with these fields takes,
		// or @include(if: true), which takes gqlgen's executor.
		const query = `query($r: ID!) { room(id: $r) %s { messages(first: 50) { edges { cursor node { id ciphertext nonce createdAt sender { id } myKey { keyId kemCiphertext wrappedKey } } } pageInfo { hasNextPage endCursor } } } }`
		vars := map[string]any{"r": room.CreateRoom.ID}
		// gzip is the server's compression (and the client's
		// decompression, in the same process); identity is the same page
		// asked for with x-no-compression, so the difference is what gzip
		// costs a page; executor is identity through gqlgen's executor.
		for _, enc := range []string{"gzip", "identity", "executor"} {
			b.Run(enc, func(b *testing.B) {
				p := newPoster(srv, bob.Token)
				body := qchattest.GraphQLBody(fmt.Sprintf(query, ""), vars)
				if enc != "gzip" {
					p.header = http.Header{middleware.NoCompressionHeader: {"1"}}
				}
				if enc == "executor" {
					body = qchattest.GraphQLBody(fmt.Sprintf(query, "@include(if: true)"), vars)
				}
				b.ReportAllocs()
				var page []byte
				before := graph.HistoryPages()
				for b.Loop() {
					page = p.post(b, body)
				}
				if fast := graph.HistoryPages() > before; fast != (enc != "executor") {
					b.Fatalf("%s: history fast path taken: %v", enc, fast)
				}
				b.ReportMetric(float64(len(page)), "JSON-bytes/page")
			})
		}
	})
}
