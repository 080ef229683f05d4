// Package presence tracks which users hold at least one live connection.
package presence

import "sync"

// Tracker counts connections per user. Connect and Disconnect report the
// transitions (first connection, last disconnection) that are worth announcing.
type Tracker interface {
	Connect(userID string) (cameOnline bool)
	Disconnect(userID string) (wentOffline bool)
	Online(userID string) bool
	Count() int
}

var _ Tracker = (*Memory)(nil)

// Memory tracks the connections of one process.
type Memory struct {
	mu    sync.Mutex
	conns map[string]int
}

// NewMemory returns an empty tracker.
func NewMemory() *Memory { return &Memory{conns: map[string]int{}} }

// Connect implements Tracker.
func (m *Memory) Connect(userID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns[userID]++
	return m.conns[userID] == 1
}

// Disconnect implements Tracker.
func (m *Memory) Disconnect(userID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.conns[userID]
	switch {
	case n <= 0:
		return false
	case n == 1:
		delete(m.conns, userID)
		return true
	default:
		m.conns[userID] = n - 1
		return false
	}
}

// Online implements Tracker.
func (m *Memory) Online(userID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conns[userID] > 0
}

// Count is the number of connections.
func (m *Memory) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.conns {
		n += c
	}
	return n
}
