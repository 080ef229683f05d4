// Package testenv decides whether tests that need an outside service
// (PostgreSQL, Redis) run: the service's URL variable set means yes, unset
// means skip, except under CI=true where a missing service fails the test.
// It imports nothing of QChat, so any package's tests can use it.
package testenv

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// skipped remembers the services already announced by this test binary,
// that is in one package's run. It is the only mutable package state, kept
// because the summary line must be printed once per binary whichever test
// skips first.
var (
	mu      sync.Mutex
	skipped = map[string]bool{}
)

// Stderr is where the summary lines go; tests of this package replace it.
var Stderr io.Writer = os.Stderr

// Service returns the value of variable, the URL of service. When it is
// empty the test is skipped (failed under CI=true), and the first such skip
// of the package prints one line to stderr, so that a run without -v still
// says which services were not tested:
//
//	qchat: PostgreSQL tests skipped: QCHAT_TEST_POSTGRES_URL is not set
func Service(t testing.TB, service, variable string) string {
	t.Helper()
	u := os.Getenv(variable)
	if u != "" {
		return u
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set; CI must test %s", variable, service)
	}
	Skip(t, service, variable+" is not set")
	return ""
}

// Skip skips t because service is unavailable for reason, printing the
// package's summary line for service the first time.
func Skip(t testing.TB, service, reason string) {
	t.Helper()
	line := fmt.Sprintf("qchat: %s tests skipped: %s", service, reason)
	mu.Lock()
	first := !skipped[service]
	skipped[service] = true
	mu.Unlock()
	if first {
		fmt.Fprintln(Stderr, line)
	}
	t.Skip(line)
}
