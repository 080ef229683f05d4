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
	topics map[string]map[*subscriber]struct{}
	closed bool

	published atomic.Uint64
	dropped   atomic.Uint64
}

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
	return &Memory{buffer: buffer, topics: map[string]map[*subscriber]struct{}{}}
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
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	subs := m.topics[topic]
	if subs == nil {
		subs = map[*subscriber]struct{}{}
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
	return s.ch, nil
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
	m.topics = map[string]map[*subscriber]struct{}{}
	return nil
}
