package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return New(reg), reg
}

// schema is a tiny executable schema standing in for the generated one: the
// field "fail" adds an error with code FORBIDDEN.
func schema() graphql.ExecutableSchema {
	s := gqlparser.MustLoadSchema(&ast.Source{Input: `
		type Query { hello: String fail: String }
		type Mutation { send: String }
	`})
	return &graphql.ExecutableSchemaMock{
		SchemaFunc: func() *ast.Schema { return s },
		ComplexityFunc: func(context.Context, string, string, int, map[string]any) (int, bool) {
			return 1, false
		},
		ExecFunc: func(ctx context.Context) graphql.ResponseHandler {
			op := graphql.GetOperationContext(ctx).Operation
			for _, sel := range op.SelectionSet {
				if f, ok := sel.(*ast.Field); ok && f.Name == "fail" {
					graphql.AddError(ctx, &gqlerror.Error{Message: "no", Extensions: map[string]any{"code": "FORBIDDEN"}})
				}
			}
			return graphql.OneShot(&graphql.Response{Data: []byte(`{"hello":"hi"}`)})
		},
	}
}

func post(t *testing.T, h http.Handler, body string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code >= 500 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

func TestGraphQLExtension(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		op     []string // operation, type
		errors map[string]float64
	}{
		{"named query", `{"query":"query Hello { hello }"}`, []string{"Hello", "query"}, nil},
		{"anonymous query", `{"query":"{ hello }"}`, []string{"anonymous", "query"}, nil},
		{"mutation", `{"query":"mutation Send { send }"}`, []string{"Send", "mutation"}, nil},
		{"resolver error counted once", `{"query":"query Fail { fail }"}`, []string{"Fail", "query"}, map[string]float64{"FORBIDDEN": 1}},
		{"parse error", `{"query":"query {"}`, nil, map[string]float64{"GRAPHQL_PARSE_FAILED": 1}},
		{"validation error", `{"query":"{ nope }"}`, nil, map[string]float64{"GRAPHQL_VALIDATION_FAILED": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newTestMetrics(t)
			now := time.Unix(0, 0)
			m.now = func() time.Time { now = now.Add(20 * time.Millisecond); return now }
			srv := handler.New(schema())
			srv.AddTransport(transport.POST{})
			srv.Use(m.GraphQLExtension())
			post(t, srv, tt.body)

			if tt.op != nil {
				if got := testutil.ToFloat64(m.operations.WithLabelValues(tt.op...)); got != 1 {
					t.Errorf("operations%v = %v, want 1", tt.op, got)
				}
				if got := testutil.CollectAndCount(m.opDuration); got != 1 {
					t.Errorf("duration series = %d, want 1", got)
				}
			} else if got := testutil.CollectAndCount(m.operations); got != 0 {
				t.Errorf("operation counted for a rejected request: %d", got)
			}
			if got := testutil.CollectAndCount(m.gqlErrors); got != len(tt.errors) {
				t.Errorf("error series = %d, want %d", got, len(tt.errors))
			}
			for code, want := range tt.errors {
				if got := testutil.ToFloat64(m.gqlErrors.WithLabelValues(code)); got != want {
					t.Errorf("errors{code=%s} = %v, want %v", code, got, want)
				}
			}
		})
	}
}

func TestOperationDuration(t *testing.T) {
	m, _ := newTestMetrics(t)
	now := time.Unix(0, 0)
	m.now = func() time.Time { now = now.Add(300 * time.Millisecond); return now }
	srv := handler.New(schema())
	srv.AddTransport(transport.POST{})
	srv.Use(m.GraphQLExtension())
	post(t, srv, `{"query":"query Hello { hello }"}`)
	want := `
# HELP qchat_graphql_operation_duration_seconds Time to answer a query or mutation, by operation name and type (subscriptions are not timed).
# TYPE qchat_graphql_operation_duration_seconds histogram
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="0.001"} 0
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="0.0025"} 0
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="0.005"} 0
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="0.01"} 0
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="0.025"} 0
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="0.05"} 0
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="0.1"} 0
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="0.25"} 0
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="0.5"} 1
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="1"} 1
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="2.5"} 1
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="5"} 1
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="10"} 1
qchat_graphql_operation_duration_seconds_bucket{operation="Hello",type="query",le="+Inf"} 1
qchat_graphql_operation_duration_seconds_sum{operation="Hello",type="query"} 0.3
qchat_graphql_operation_duration_seconds_count{operation="Hello",type="query"} 1
`
	if err := testutil.CollectAndCompare(m.opDuration, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestOperationNamesAreBounded(t *testing.T) {
	m, _ := newTestMetrics(t)
	srv := handler.New(schema())
	srv.AddTransport(transport.POST{})
	srv.Use(m.GraphQLExtension())
	for i := range maxOperationNames + 5 {
		post(t, srv, fmt.Sprintf(`{"query":"query Op%d { hello }"}`, i))
	}
	post(t, srv, `{"query":"query Op0 { hello }"}`) // an admitted name stays itself
	if got := testutil.CollectAndCount(m.operations); got != maxOperationNames+1 {
		t.Fatalf("series = %d, want %d", got, maxOperationNames+1)
	}
	if got := testutil.ToFloat64(m.operations.WithLabelValues(other, "query")); got != 5 {
		t.Fatalf("other = %v, want 5", got)
	}
	if got := testutil.ToFloat64(m.operations.WithLabelValues("Op0", "query")); got != 2 {
		t.Fatalf("Op0 = %v, want 2", got)
	}
}

func TestHTTPMiddleware(t *testing.T) {
	tests := []struct {
		method string
		status int
		labels []string
	}{
		{http.MethodGet, http.StatusOK, []string{"GET", "200"}},
		{http.MethodPost, http.StatusTeapot, []string{"POST", "418"}},
		{"BREW", http.StatusMethodNotAllowed, []string{"OTHER", "405"}},
		{http.MethodGet, http.StatusSwitchingProtocols, []string{"GET", "101"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.labels, "_"), func(t *testing.T) {
			m, _ := newTestMetrics(t)
			h := m.HTTPMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, "/x", nil))
			if got := testutil.ToFloat64(m.httpRequests.WithLabelValues(tt.labels...)); got != 1 {
				t.Fatalf("requests%v = %v", tt.labels, got)
			}
		})
	}
}

func TestCallsAndGauges(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.WebsocketOpened()
	m.WebsocketOpened()
	m.WebsocketClosed()
	m.SubscriptionStarted()
	m.MessageSent()
	m.MessageSent()
	m.RateLimited("login")
	m.RateLimited("login")
	m.RateLimited("send")
	if conns, subs := m.Active(); conns != 1 || subs != 1 {
		t.Fatalf("Active() = %d, %d; want 1, 1", conns, subs)
	}
	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"websockets", m.websockets, 1},
		{"subscriptions", m.subscriptions, 1},
		{"messages", m.messagesSent, 2},
		{"login limiter", m.rateLimited.WithLabelValues("login"), 2},
		{"send limiter", m.rateLimited.WithLabelValues("send"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testutil.ToFloat64(tt.c); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRegisteredStatsAndHandler(t *testing.T) {
	m, reg := newTestMetrics(t)
	if err := m.RegisterDBStats(func() sql.DBStats {
		return sql.DBStats{OpenConnections: 5, InUse: 3, Idle: 2, WaitCount: 7, WaitDuration: 1500 * time.Millisecond}
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterBrokerStats(func() (uint64, uint64) { return 42, 3 }); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterBrokerStats(func() (uint64, uint64) { return 0, 0 }); err == nil {
		t.Fatal("registering twice must fail")
	}
	want := `
# HELP qchat_db_connections_in_use Database connections in use.
# TYPE qchat_db_connections_in_use gauge
qchat_db_connections_in_use 3
# HELP qchat_db_wait_duration_seconds_total Time spent waiting for a free connection.
# TYPE qchat_db_wait_duration_seconds_total counter
qchat_db_wait_duration_seconds_total 1.5
# HELP qchat_events_dropped_total Events the broker dropped because a subscriber's queue was full.
# TYPE qchat_events_dropped_total counter
qchat_events_dropped_total 3
# HELP qchat_events_published_total Events the broker delivered to a subscriber.
# TYPE qchat_events_published_total counter
qchat_events_published_total 42
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"qchat_db_connections_in_use", "qchat_db_wait_duration_seconds_total",
		"qchat_events_published_total", "qchat_events_dropped_total"); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"qchat_db_connections_open 5", "go_goroutines", "qchat_events_published_total 42"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("exposition lacks %q", name)
		}
	}
	srv.CloseClientConnections()
}
