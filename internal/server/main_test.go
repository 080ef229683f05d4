package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test of this package runs real servers and websockets: none may leave a
// goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives until its DB is closed at cleanup.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		// net/http's idle keep-alive connections of http.DefaultClient.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}
