package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// historyStateVersion changes whenever historyState changes meaning; a file
// of another version is refused rather than half understood.
const historyStateVersion = 1

// historyState is what --history-state keeps between runs: enough to log
// the history room's members back in and page through the same room, so
// that a seed that took minutes can be measured again and again (against a
// restarted or newer server on the same database). It holds passwords,
// hence mode 0600.
type historyState struct {
	Version  int          `json:"version"`
	Created  time.Time    `json:"created"`
	RunID    string       `json:"runId"` // the run that seeded, for the reader
	RoomID   string       `json:"roomId"`
	Messages int          `json:"messages"` // in the room
	Filler   int          `json:"filler"`   // in the other rooms
	Members  []credential `json:"members"`
}

type credential struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// readHistoryState reads and checks a state file. A missing file is an
// error that wraps fs.ErrNotExist, so that the caller seeds; every other
// failure names the file.
func readHistoryState(path string) (*historyState, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--history-state %s: %w", path, err)
	}
	var st historyState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("--history-state %s: not a history state file: %w", path, err)
	}
	switch {
	case st.Version != historyStateVersion:
		return nil, fmt.Errorf("--history-state %s: format version %d, this tool reads version %d (seed again into a new file)",
			path, st.Version, historyStateVersion)
	case st.RoomID == "" || len(st.Members) == 0 || st.Messages < 1:
		return nil, fmt.Errorf("--history-state %s: incomplete (no room id, members or messages)", path)
	}
	return &st, nil
}

// stateWriter writes a state file through a temporary file in the same
// directory, created before seeding: an unwritable path fails at once,
// not after minutes of seeding, and FILE never exists half written.
type stateWriter struct {
	path string
	tmp  *os.File
}

func createHistoryState(path string) (*stateWriter, error) {
	// CreateTemp makes the file 0600, before any password is in it.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("--history-state %s: cannot write it: %w", path, err)
	}
	return &stateWriter{path: path, tmp: tmp}, nil
}

// commit writes st and moves it into place.
func (w *stateWriter) commit(st *historyState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.tmp.Write(append(b, '\n'))
	err = errors.Join(err, w.tmp.Chmod(0o600), w.tmp.Sync(), w.tmp.Close())
	if err == nil {
		err = os.Rename(w.tmp.Name(), w.path)
	}
	if err != nil {
		return fmt.Errorf("--history-state %s: %w", w.path, err)
	}
	w.tmp = nil
	return nil
}

// abort removes the temporary file unless commit moved it into place.
func (w *stateWriter) abort() {
	if w.tmp != nil {
		_ = w.tmp.Close()
		_ = os.Remove(w.tmp.Name())
	}
}
