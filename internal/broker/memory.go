package broker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

var _ Broker = (*Memory)(nil)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("broker closed")

// Memory is the in-process broker.
type Memory struct {
	buffer int

	mu     sync.RWMutex
	topics map[string]map[sink]struct{}
	closed bool

	published atomic.Uint64
	dropped   atomic.Uint64
}

// sink is one subscription as Publish sees it.
type sink interface {
	// send queues ev without blocking; false: not delivered (the
	// subscription has ended, or ends now for falling behind).
	send(ev *Event) bool
	// close ends the subscription (its context ended, or the broker closed).
	close()
}

// subscriber is a subscription read through a channel (Subscribe).
type subscriber struct {
	mu     sync.Mutex
	ch     chan *Event
	closed bool
	// dropped is told when the subscriber falls behind (see OnDrop).
	dropped func()
}

type dropHookKey struct{}

// OnDrop returns a context whose subscriptions call fn when the broker drops
// them for falling behind, just before their channel closes, so that the
// layer serving the subscription can tell its client why it ended (an end
// through ctx or Close does not call fn). fn runs inside Publish: it must be
// quick and must not publish.
func OnDrop(ctx context.Context, fn func()) context.Context {
	return context.WithValue(ctx, dropHookKey{}, fn)
}

// close ends the subscriber's channel once.
func (s *subscriber) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	s.mu.Unlock()
}

// send delivers without blocking; a full buffer ends the subscription.
func (s *subscriber) send(ev *Event) (delivered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	select {
	case s.ch <- ev:
		return true
	default:
		s.closed = true
		if s.dropped != nil {
			s.dropped()
		}
		close(s.ch)
		return false
	}
}

// NewMemory returns an in-process broker whose subscribers buffer up to buffer
// events (default 256).
func NewMemory(buffer int) *Memory {
	if buffer <= 0 {
		buffer = 256
	}
	return &Memory{buffer: buffer, topics: map[string]map[sink]struct{}{}}
}

// Publish implements Broker.
func (m *Memory) Publish(_ context.Context, topics []string, ev *Event) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	for _, t := range topics {
		for s := range m.topics[t] {
			if s.send(ev) {
				m.published.Add(1)
			} else {
				m.dropped.Add(1)
			}
		}
	}
	return nil
}

// Subscribe implements Broker.
func (m *Memory) Subscribe(ctx context.Context, topic string) (<-chan *Event, error) {
	s := &subscriber{ch: make(chan *Event, m.buffer)}
	s.dropped, _ = ctx.Value(dropHookKey{}).(func())
	if err := m.add(ctx, topic, s); err != nil {
		return nil, err
	}
	return s.ch, nil
}

// SubscribeFunc implements Broker.
func (m *Memory) SubscribeFunc(ctx context.Context, topic string, deliver func(*Event) bool, end func()) error {
	s := &funcSubscriber{limit: m.buffer, deliver: deliver, end: end}
	s.dropped, _ = ctx.Value(dropHookKey{}).(func())
	return m.add(ctx, topic, s)
}

// add files s under topic until ctx ends.
func (m *Memory) add(ctx context.Context, topic string, s sink) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	subs := m.topics[topic]
	if subs == nil {
		subs = map[sink]struct{}{}
		m.topics[topic] = subs
	}
	subs[s] = struct{}{}
	m.mu.Unlock()

	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		if subs := m.topics[topic]; subs != nil {
			delete(subs, s)
			if len(subs) == 0 {
				delete(m.topics, topic)
			}
		}
		m.mu.Unlock()
		s.close()
	})
	return nil
}

// funcSubscriber is a subscription served by calls (SubscribeFunc). Its
// events wait in a queue that grows as they come, up to limit, and a
// goroutine runs only while some wait: most subscribers are idle, and
// hold neither a buffer of limit events nor a goroutine parked on one.
type funcSubscriber struct {
	limit   int
	deliver func(*Event) bool
	end     func()
	dropped func() // see OnDrop

	mu      sync.Mutex
	queue   []*Event // waiting events, oldest first, from head
	head    int
	running bool // a goroutine delivers (or ends)
	closed  bool // no more events are queued; end follows the waiting ones
	ended   bool // end has been called or is about to be
}

// keptQueue is the largest queue kept for the next events once empty.
const keptQueue = 16

func (s *funcSubscriber) send(ev *Event) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	delivered := len(s.queue)-s.head < s.limit
	if delivered {
		if len(s.queue) == cap(s.queue) && s.head > 0 {
			// Full of delivered slots: move the waiting ones down
			// rather than growing.
			n := copy(s.queue, s.queue[s.head:])
			clear(s.queue[n:])
			s.queue, s.head = s.queue[:n], 0
		}
		s.queue = append(s.queue, ev)
	} else {
		// Fallen behind: the waiting events are still delivered, then
		// the subscription ends, as a closed channel's buffer is read.
		s.closed = true
		if s.dropped != nil {
			s.dropped()
		}
	}
	start := s.startLocked()
	s.mu.Unlock()
	if start {
		go s.run()
	}
	return delivered
}

// close ends the subscription; waiting events are not delivered.
func (s *funcSubscriber) close() {
	s.mu.Lock()
	s.closed = true
	clear(s.queue)
	s.queue, s.head = nil, 0
	start := s.startLocked()
	s.mu.Unlock()
	if start {
		go s.run()
	}
}

// startLocked reports whether a goroutine must start to deliver or end.
func (s *funcSubscriber) startLocked() bool {
	if s.running || s.ended {
		return false
	}
	s.running = true
	return true
}

// run delivers the waiting events, and ends the subscription once it is
// closed and nothing waits.
func (s *funcSubscriber) run() {
	for {
		s.mu.Lock()
		if s.head == len(s.queue) {
			if cap(s.queue) > keptQueue {
				s.queue = nil
			}
			s.queue, s.head = s.queue[:0], 0
			s.running = false
			end := s.closed && !s.ended
			s.ended = s.ended || end
			s.mu.Unlock()
			if end {
				s.end()
			}
			return
		}
		ev := s.queue[s.head]
		s.queue[s.head] = nil
		s.head++
		s.mu.Unlock()
		if !s.deliver(ev) {
			s.mu.Lock()
			s.closed = true
			clear(s.queue)
			s.queue, s.head = nil, 0
			s.mu.Unlock()
		}
	}
}

// Stats reports deliveries and drops since start.
func (m *Memory) Stats() (delivered, dropped uint64) { return m.published.Load(), m.dropped.Load() }

// Subscribers counts the live subscriptions.
func (m *Memory) Subscribers() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, subs := range m.topics {
		n += len(subs)
	}
	return n
}

// Close ends every subscription.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, subs := range m.topics {
		for s := range subs {
			s.close()
		}
	}
	m.topics = map[string]map[sink]struct{}{}
	return nil
}
