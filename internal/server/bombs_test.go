package server_test

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/internal/qchattest/gqlbomb"
)

// bombAllocBound is what one refused bomb may allocate in the whole process,
// body and response included, at any size up to the 1 MiB body limit.
// Validated unbounded, the same documents allocate hundreds of megabytes
// (issue 14: a 740 KB fragment chain grew the heap by 250 MB).
const bombAllocBound = 16 << 20

// TestValidationBombsRefusedFlat sends every validation-bomb shape at
// growing sizes, without logging in, to the real handler in production
// configuration: each is refused before validation with a code naming a
// limit, and what it costs the server in allocations does not grow with its
// size. (Allocations, not times: the test must not depend on the machine.)
func TestValidationBombsRefusedFlat(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.Env, c.TrustProxy, c.Introspection = "production", "loopback", false
	}})
	header := withHeaders(jsonHeader, "X-Forwarded-Proto", "https")
	// At 500 these may still be small enough for the document limits and be
	// refused by validation itself (a wrong argument type, several operations
	// and no name), in microseconds.
	smallMayValidate := map[string]bool{"deep list argument": true, "many operations": true}
	for _, sh := range gqlbomb.Shapes {
		t.Run(sh.Name, func(t *testing.T) {
			for _, n := range []int{500, 5_000, 50_000, 500_000} {
				q := sh.Build(n)
				body := qchattest.GraphQLBody(q, nil)
				if len(body) > 1<<20 {
					break
				}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				resp, raw := srv.Raw(t, "POST", "/graphql", header, body)
				runtime.ReadMemStats(&after)
				var out qchattest.Response
				if err := json.Unmarshal(raw, &out); err != nil {
					t.Fatalf("n=%d: status %d, body %.200s", n, resp.StatusCode, raw)
				}
				code := out.Code()
				if code == "GRAPHQL_PARSE_FAILED" && strings.Contains(out.Errors[0].Message, "nesting depth") {
					// gqlparser's parser refuses over 1,000 levels itself.
					continue
				}
				if code != "GRAPHQL_VALIDATION_FAILED" && code != "COMPLEXITY_LIMIT_EXCEEDED" {
					t.Fatalf("n=%d (%d bytes): code %q, errors %.300v", n, len(body), code, out.Errors)
				}
				msg := out.Errors[0].Message
				if !strings.Contains(msg, "exceeds the limit of") && !(n == 500 && smallMayValidate[sh.Name]) {
					t.Fatalf("n=%d: refused by %q, not by a document limit", n, msg)
				}
				alloc := after.TotalAlloc - before.TotalAlloc
				t.Logf("n=%-6d %7d bytes: %5.1f MiB allocated, %s", n, len(body), float64(alloc)/(1<<20), msg)
				if alloc > bombAllocBound {
					t.Errorf("n=%d: %d MiB allocated to refuse it", n, alloc>>20)
				}
			}
		})
	}
}
