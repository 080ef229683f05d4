// Package syncbuf is a bytes.Buffer that goroutines may write while a test
// reads it: a server's logs, a child process's stderr. It imports nothing of
// QChat, so the tests of any package (logging and dbhook included, which
// qchattest itself depends on) can use it.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe for concurrent Write and String.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Bytes returns a copy of what has been written.
func (s *Buffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// Take returns what has been written and empties the buffer, in one step.
func (s *Buffer) Take() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := bytes.Clone(s.b.Bytes())
	s.b.Reset()
	return out
}
