package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

// conversation is a room or a direct conversation under load: who it is
// sealed for (fetched from the server once, not per message), who sends the
// readiness probe, and how many subscribed sockets receive each message.
type conversation struct {
	conv       client.Conversation
	first      *user // a member, who sends the probe
	recipients []pqcrypto.Recipient
	receivers  int
}

// sender is one sending worker: a user posting into one conversation, with
// the envelopes sealed for it before the clock started.
type sender struct {
	u    *user
	conv *conversation
	pool chan prepared
	api  *client.Client // u.api, or its websocket with --send-over ws
}

// prepared is a sealed and signed message waiting to be sent.
type prepared struct {
	id  string
	env *pqcrypto.SignedEnvelope
}

// plaintext carries the message id so that a sample of deliveries can be
// opened and checked; 128 bytes, a typical chat line.
func plaintext(id string) []byte {
	b := make([]byte, 128)
	copy(b, "qchat-load "+id+" ")
	for i := len("qchat-load ") + len(id) + 1; i < len(b); i++ {
		b[i] = 'x'
	}
	return b
}

// seal seals and signs one message as every client must (envelope v2):
// the signature is client CPU (ML-DSA-65, about a third of a millisecond),
// spent before the clock starts for the pre-sealed pool.
func seal(u *user, conv *conversation) (prepared, error) {
	id := client.NewID()
	env, err := pqcrypto.SealSigned(nil, u.ik, pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: id, SenderID: u.id, ConversationID: conv.conv.ID()},
		plaintext(id), conv.recipients)
	if err != nil {
		return prepared{}, fmt.Errorf("seal: %w", err)
	}
	return prepared{id: id, env: env}, nil
}

func (conv *conversation) input(p prepared) client.SendMessageInput {
	w := p.env.Wire()
	keys := make([]client.RecipientKeyInput, len(w.Keys))
	for i, k := range w.Keys {
		keys[i] = client.RecipientKeyInput{UserId: k.UserID, KeyId: k.KeyID, KemCiphertext: k.KEMCiphertext, WrappedKey: k.WrappedKey}
	}
	in := client.SendMessageInput{Id: p.id, Ciphertext: w.Ciphertext, Nonce: w.Nonce, Keys: keys}
	in.SetSignature(w.Signature)
	if conv.conv.RoomID != "" {
		in.RoomId = &conv.conv.RoomID
	} else {
		in.RecipientId = &conv.conv.UserID
	}
	return in
}

// fetchRecipients asks the server once per conversation for the keys to
// seal for, as a real client would before its first message.
func fetchRecipients(ctx context.Context, convs []*conversation, workers int) error {
	return parallel(ctx, len(convs), workers, func(ctx context.Context, i int) error {
		rs, err := convs[i].first.api.Recipients(ctx, convs[i].conv)
		convs[i].recipients = rs
		return err
	})
}

// sendRec is what the tool remembers of a sent message until its
// deliveries arrive; latency is computed by id, without decrypting.
type sendRec struct {
	at       time.Time
	expect   int32
	got      atomic.Int32
	measured bool
}

// traffic is one messaging run: senders, subscribed sockets, and the
// figures they produce.
type traffic struct {
	c    *cluster
	w    window
	errs *errorCounts

	sent       sync.Map // message id → *sendRec
	sendLat    recorder
	deliverLat recorder
	accepted   atomic.Int64 // measured sends the server accepted
	expected   atomic.Int64 // deliveries those sends should cause
	delivered  atomic.Int64 // measured deliveries that arrived
	dups       atomic.Int64
	unknown    atomic.Int64
	inline     atomic.Int64
	missed     atomic.Int64 // pacing slots no sender was free for
	issued     atomic.Int64 // measured sends started, for --requests
	seconds    float64      // measured time
	received   atomic.Int64
	opened     atomic.Int64
	openFailed atomic.Int64
	openEvery  int64
}

func newTraffic(c *cluster) *traffic {
	t := &traffic{c: c, errs: newErrorCounts(c)}
	if c.o.OpenSample > 0 {
		t.openEvery = max(1, int64(math.Round(1/c.o.OpenSample)))
	}
	return t
}

// subscribe opens u's socket with messageAdded (of one room, or every
// conversation when roomID is ""). ready closes at the first message.
func (t *traffic) subscribe(ctx context.Context, u *user, roomID string) (<-chan struct{}, error) {
	events, err := u.sock.Subscribe(ctx, client.MessagesAdded(roomID))
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", u.name, err)
	}
	ready := make(chan struct{})
	go func() {
		first := true
		kr := u.keyring()
		for ev := range events {
			now := time.Now()
			switch ev.Kind {
			case client.EventMessage:
				if first {
					close(ready)
					first = false
				}
				t.deliver(ev.Message, kr, now)
			case client.EventError:
				if ctx.Err() == nil {
					t.errs.add(ev.Err)
				}
			}
		}
	}()
	return ready, nil
}

// errUnsigned: a message of this run that opened without a verified
// signature, which every message of the load tool has.
var errUnsigned = errors.New("not signed")

func (t *traffic) deliver(m *client.Message, kr client.Keyring, now time.Time) {
	v, ok := t.sent.Load(m.Id)
	if !ok {
		t.unknown.Add(1)
		return
	}
	rec := v.(*sendRec)
	if rec.got.Add(1) > rec.expect {
		t.dups.Add(1)
		return
	}
	if rec.measured {
		t.delivered.Add(1)
		t.deliverLat.add(now.Sub(rec.at))
	}
	if t.openEvery > 0 && t.received.Add(1)%t.openEvery == 0 {
		var senders []*pqcrypto.IdentityPublicKey
		if k := t.c.identity(m.Sender.Id); k != nil {
			senders = append(senders, k)
		}
		pt, signed, err := client.OpenMessage(m, kr, senders)
		if !signed {
			err = errors.Join(err, errUnsigned)
		}
		if err != nil || !bytes.Contains(pt, []byte(m.Id)) {
			t.openFailed.Add(1)
		} else {
			t.opened.Add(1)
		}
	}
}

// subscribeAll opens one socket per user and waits until each has received
// a probe message in every conversation, so that no measured message is
// sent before the server has registered the subscriptions.
func (t *traffic) subscribeAll(ctx context.Context, users []*user, roomOf func(*user) string, convs []*conversation) error {
	readies := make([]<-chan struct{}, len(users))
	// The sockets live on ctx, not on parallel's context, which ends when
	// the last one is open.
	err := parallel(ctx, len(users), 64, func(_ context.Context, i int) error {
		r, err := t.subscribe(ctx, users[i], roomOf(users[i]))
		readies[i] = r
		return err
	})
	if err != nil {
		return err
	}
	// A subscription is live only once the server has processed it, which
	// the protocol does not acknowledge: probe every conversation until
	// every socket has seen a message (probes are never measured).
	members := map[*conversation][]int{}
	for i, u := range users {
		for _, conv := range convs {
			if conv.conv.RoomID == roomOf(u) && (conv.conv.RoomID != "" || conv.first == u || conv.conv.UserID == u.id) {
				members[conv] = append(members[conv], i)
			}
		}
	}
	isReady := func(i int) bool {
		select {
		case <-readies[i]:
			return true
		default:
			return false
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		waiting := 0
		for _, conv := range convs {
			ready := true
			for _, i := range members[conv] {
				ready = ready && isReady(i)
			}
			if ready {
				continue
			}
			waiting++
			p, err := seal(conv.first, conv)
			if err != nil {
				return err
			}
			t.sent.Store(p.id, &sendRec{at: time.Now(), expect: int32(conv.receivers)})
			if _, err := conv.first.api.SendMessageRaw(ctx, conv.input(p)); err != nil {
				return fmt.Errorf("probe message: %w", err)
			}
		}
		if waiting == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d conversations still have sockets that got no probe message after 30s", waiting)
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// connectSenders gives every sender its way to send: the user's HTTP
// client, or with --send-over ws a websocket of its own that carries its
// mutations. The sockets close when ctx ends.
func (t *traffic) connectSenders(ctx context.Context, senders []*sender) error {
	if t.c.o.SendOver != "ws" {
		for _, s := range senders {
			s.api = s.u.api
		}
		return nil
	}
	// The sockets live on ctx, not on parallel's context, which ends when
	// the last one is open.
	return parallel(ctx, len(senders), 16, func(_ context.Context, i int) error {
		api, err := senders[i].u.api.OverWebsocket(ctx)
		if err != nil {
			return fmt.Errorf("sender %s: %w", senders[i].u.name, err)
		}
		senders[i].api = api
		context.AfterFunc(ctx, func() { _ = api.Close() })
		return nil
	})
}

// preseal seals envelopes for the senders before the clock starts, so that
// the run measures the server rather than the tool's KEM encapsulations
// (one per recipient and message). It stops at the target or the budget.
func (t *traffic) preseal(ctx context.Context, senders []*sender) (*sealInfo, error) {
	o := t.c.o
	secs := (o.warmup() + o.duration()).Seconds()
	target := o.Preseal
	if target < 0 {
		switch {
		case o.counted():
			// The measured messages, what the warm-up sends at --rate, and
			// one per sender in flight when the count is reached.
			target = o.Requests + int(math.Ceil(o.Rate*o.warmup().Seconds()*1.1)) + len(senders)
		case o.Rate > 0:
			target = int(math.Ceil(o.Rate*secs*1.1)) + len(senders)
		default:
			target = int(5000 * secs)
		}
		// Keep the pool under about 1 GiB: a recipient's share is ~1.1 KB.
		per := 300 + 1150*len(senders[0].conv.recipients)
		target = min(target, (1<<30)/per)
	}
	perSender := (target + len(senders) - 1) / max(len(senders), 1)
	for _, s := range senders {
		s.pool = make(chan prepared, perSender)
	}
	info := &sealInfo{Recipients: len(senders[0].conv.recipients)}
	if target == 0 {
		return info, nil
	}
	start := time.Now()
	budget := start.Add(time.Duration(o.PresealBudget))
	var next, done atomic.Int64
	err := parallel(ctx, runtime.GOMAXPROCS(0), runtime.GOMAXPROCS(0), func(ctx context.Context, _ int) error {
		for ctx.Err() == nil && time.Now().Before(budget) {
			j := int(next.Add(1)) - 1
			if j >= perSender*len(senders) || j >= target {
				return nil
			}
			s := senders[j%len(senders)]
			p, err := seal(s.u, s.conv)
			if err != nil {
				return err
			}
			s.pool <- p
			done.Add(1)
		}
		return nil
	})
	info.Presealed = int(done.Load())
	info.Seconds = round3(time.Since(start).Seconds())
	if info.Seconds > 0 {
		info.PerSecond = round1(float64(info.Presealed) / info.Seconds)
	}
	t.c.logf("pre-sealed %d envelopes for %d recipients each in %.1fs", info.Presealed, info.Recipients, info.Seconds)
	return info, err
}

// pace hands out one token per message at rate per second until the
// window ends; a token no sender is free for is counted as missed.
func (t *traffic) pace(ctx context.Context, rate float64, buffer int) <-chan struct{} {
	ch := make(chan struct{}, buffer)
	go func() {
		defer close(ch)
		start := time.Now()
		tick := time.NewTicker(max(time.Duration(float64(time.Second)/rate), time.Millisecond))
		defer tick.Stop()
		issued := 0
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if !now.Before(t.w.to) || t.countReached() {
					return
				}
				for due := int(now.Sub(start).Seconds() * rate); issued < due; issued++ {
					select {
					case ch <- struct{}{}:
					default:
						if t.w.measured(now) {
							t.missed.Add(1)
						}
					}
				}
			}
		}
	}()
	return ch
}

// send runs the senders from now through the warm-up and the measured
// time, then waits up to --drain for the deliveries still on their way.
func (t *traffic) send(ctx context.Context, senders []*sender, s *sampler) {
	o := t.c.o
	t.w = o.window()
	var tokens <-chan struct{}
	if o.Rate > 0 {
		tokens = t.pace(ctx, o.Rate, max(16, len(senders)))
	}
	var wg sync.WaitGroup
	for _, snd := range senders {
		wg.Go(func() {
			for ctx.Err() == nil && !t.w.over() {
				if tokens != nil {
					if _, ok := <-tokens; !ok {
						return
					}
				}
				if !t.sendOne(ctx, snd) {
					return
				}
			}
		})
	}
	waitUntil(t.w.from, ctx.Done())
	s.begin()
	if o.counted() {
		wg.Wait()
	} else {
		waitUntil(t.w.to, ctx.Done())
	}
	s.end()
	wg.Wait()
	t.seconds = o.duration().Seconds()
	if o.counted() {
		t.seconds = time.Since(t.w.from).Seconds()
	}
	deadline := time.Now().Add(time.Duration(o.Drain))
	for ctx.Err() == nil && time.Now().Before(deadline) && t.delivered.Load() < t.expected.Load() {
		time.Sleep(20 * time.Millisecond)
	}
}

// countReached says whether --requests measured sends have started.
func (t *traffic) countReached() bool {
	return t.c.o.counted() && t.issued.Load() >= int64(t.c.o.Requests)
}

// sendOne sends one message; false means the sender is done (--requests
// measured messages have been started).
func (t *traffic) sendOne(ctx context.Context, s *sender) bool {
	measured := t.w.measured(time.Now())
	if t.c.o.counted() && measured && t.issued.Add(1) > int64(t.c.o.Requests) {
		return false
	}
	var p prepared
	select {
	case p = <-s.pool:
	default:
		var err error
		if p, err = seal(s.u, s.conv); err != nil {
			t.errs.add(err)
			return true
		}
		t.inline.Add(1)
	}
	in := s.conv.input(p)
	rec := &sendRec{at: time.Now(), expect: int32(s.conv.receivers)}
	rec.measured = measured
	t.sent.Store(p.id, rec)
	_, err := s.api.SendMessageRaw(ctx, in)
	d := time.Since(rec.at)
	if err != nil {
		t.sent.Delete(p.id)
		if ctx.Err() == nil {
			t.errs.add(err)
		}
		return true
	}
	if rec.measured {
		t.accepted.Add(1)
		t.expected.Add(int64(rec.expect))
		t.sendLat.add(d)
	}
	return true
}

// fill puts the run's figures into res.
func (t *traffic) fill(res *result) {
	o := t.c.o
	res.Unit = "messages"
	res.Seconds = t.seconds
	res.OK = t.accepted.Load()
	res.PerSecond = round1(float64(res.OK) / res.Seconds)
	res.TargetRate = o.Rate
	res.Latency = t.sendLat.summary()
	d := &delivery{
		Expected: t.expected.Load(), Delivered: t.delivered.Load(), Duplicates: t.dups.Load(), Unknown: t.unknown.Load(),
		Latency: t.deliverLat.summary(), Opened: t.opened.Load(), OpenFailed: t.openFailed.Load(),
	}
	d.Dropped = max(0, d.Expected-d.Delivered)
	res.Delivery = d
	res.Errors, res.ErrorCount = t.errs.snapshot()
	if res.Seal != nil {
		res.Seal.Inline = t.inline.Load()
		if res.Seal.Inline > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("the pre-sealed pool ran out: %d messages were sealed while sending, so the tool's sealing shared the CPU with the server", res.Seal.Inline))
		}
	}
	if m := t.missed.Load(); m > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d messages of the target rate were not sent: every sender was busy (raise --senders)", m))
	}
	if d.OpenFailed > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d sampled messages did not open", d.OpenFailed))
	}
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
