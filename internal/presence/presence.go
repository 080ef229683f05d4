// Package presence tracks which users hold at least one live connection,
// across every instance when the tracker is shared.
package presence

import (
	"context"
	"sync"
)

// Tracker counts connections per user. Connect and Disconnect report the
// transitions (first connection anywhere, last disconnection anywhere) that
// are worth announcing.
type Tracker interface {
	Connect(ctx context.Context, userID string) (cameOnline bool, err error)
	Disconnect(ctx context.Context, userID string) (wentOffline bool, err error)
	// Online reports, for each of userIDs, whether it is online.
	Online(ctx context.Context, userIDs []string) (map[string]bool, error)
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
func (m *Memory) Connect(_ context.Context, userID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns[userID]++
	return m.conns[userID] == 1, nil
}

// Disconnect implements Tracker.
func (m *Memory) Disconnect(_ context.Context, userID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.conns[userID]
	switch {
	case n <= 0:
		return false, nil
	case n == 1:
		delete(m.conns, userID)
		return true, nil
	default:
		m.conns[userID] = n - 1
		return false, nil
	}
}

// Online implements Tracker.
func (m *Memory) Online(_ context.Context, userIDs []string) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]bool, len(userIDs))
	for _, id := range userIDs {
		out[id] = m.conns[id] > 0
	}
	return out, nil
}
