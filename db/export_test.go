package db

// SetBeforeCommit makes s's message writers call fn with each batch's size
// before writing it; fn may block to hold a writer. Set it before the first
// message is inserted.
func SetBeforeCommit(s *Store, fn func(n int)) { s.writer.beforeCommit = fn }

// QueuedInserts is how many messages wait for a writer.
func QueuedInserts(s *Store) int { return len(s.writer.reqs) }

// Writers is how many batches s writes at once.
func Writers(s *Store) int {
	if s.dialect == Postgres {
		return pgWriters
	}
	return 1
}
