package server_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/internal/qchattest"
)

// The test server is built by app.New like the real one, so what production
// wires is what the tests exercise: here the metrics observer and the
// broker's counters, which the test server used to leave out.
func TestTestServerIsWiredLikeProduction(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	in := qchattest.Seal(t, uuid.NewString(), alice, "", bob.ID, "hello", alice, bob)
	srv.MustDo(t, alice.Token, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id } }`, map[string]any{"in": in}, nil)

	resp, body := srv.Raw(t, "GET", "/metrics", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		"qchat_messages_sent_total 1",     // the resolvers' observer
		"qchat_events_published_total",    // the broker's counters
		"qchat_db_connections_open",       // the store's pool
		`qchat_graphql_operations_total{`, // the GraphQL extension
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
