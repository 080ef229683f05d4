// Package metrics defines QChat's Prometheus metrics on a registry that
// internal/app owns, and the hooks that feed them: HTTP middleware, a gqlgen extension, and
// calls from the websocket transport, the resolvers and the rate limiter.
package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/internal/observability/internal/respwriter"
	"github.com/qchat/qchat/internal/reqctx"
)

const namespace = "qchat"

// Label bounds: operation names come from clients, and every distinct label
// value is a time series kept in memory until the process exits.
const (
	maxOperationNames = 200
	maxErrorCodes     = 50
	maxLimiters       = 20
	other             = "other"
)

// Metrics holds QChat's collectors.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	httpRequests  *prometheus.CounterVec
	operations    *prometheus.CounterVec
	opDuration    *prometheus.HistogramVec
	gqlErrors     *prometheus.CounterVec
	websockets    prometheus.Gauge
	subscriptions prometheus.Gauge
	messagesSent  prometheus.Counter
	rateLimited   *prometheus.CounterVec

	// conns and subs mirror the two gauges for Active: a Prometheus gauge
	// cannot be read back outside tests.
	conns, subs atomic.Int64

	opNames  *bounded
	codes    *bounded
	limiters *bounded
}

// New registers QChat's metrics, and the Go runtime and process collectors, on
// reg. It panics if reg already holds any of them, which is a wiring mistake.
func New(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		reg: reg,
		now: time.Now,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests served, by method and status code.",
		}, []string{"method", "code"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "graphql_operations_total",
			Help: "GraphQL operations started, by operation name and type.",
		}, []string{"operation", "type"}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "graphql_operation_duration_seconds",
			Help:    "Time to answer a query or mutation, by operation name and type (subscriptions are not timed).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation", "type"}),
		gqlErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "graphql_errors_total",
			Help: "GraphQL errors returned to clients, by extensions.code.",
		}, []string{"code"}),
		websockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "websocket_connections",
			Help: "Open, accepted websocket connections.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "subscriptions_active",
			Help: "Running GraphQL subscriptions.",
		}),
		messagesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_sent_total",
			Help: "Messages accepted by sendMessage.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limit_rejections_total",
			Help: "Requests refused by a rate limiter, by limiter.",
		}, []string{"limiter"}),
		opNames:  newBounded(maxOperationNames),
		codes:    newBounded(maxErrorCodes),
		limiters: newBounded(maxLimiters),
	}
	reg.MustRegister(
		m.httpRequests, m.operations, m.opDuration, m.gqlErrors,
		m.websockets, m.subscriptions, m.messagesSent, m.rateLimited,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// WebsocketOpened counts an accepted websocket; call it from the transport's
// init function once the socket is authenticated.
func (m *Metrics) WebsocketOpened() { m.conns.Add(1); m.websockets.Inc() }

// WebsocketClosed undoes WebsocketOpened; call it from the close function.
func (m *Metrics) WebsocketClosed() { m.conns.Add(-1); m.websockets.Dec() }

// SubscriptionStarted counts a running subscription.
func (m *Metrics) SubscriptionStarted() { m.subs.Add(1); m.subscriptions.Inc() }

// SubscriptionEnded undoes SubscriptionStarted.
func (m *Metrics) SubscriptionEnded() { m.subs.Add(-1); m.subscriptions.Dec() }

// Active reports open websockets and running subscriptions; it fits
// health.Config.Websockets.
func (m *Metrics) Active() (conns, subs int) { return int(m.conns.Load()), int(m.subs.Load()) }

// MessageSent counts a message stored by sendMessage.
func (m *Metrics) MessageSent() { m.messagesSent.Inc() }

// RateLimited counts a rejection by the named limiter (e.g. "login", "send").
func (m *Metrics) RateLimited(limiter string) {
	m.rateLimited.WithLabelValues(m.limiters.label(limiter)).Inc()
}

// RegisterDBStats exports the connection pool's statistics, read at scrape
// time from stats (db.Store.Stats).
func (m *Metrics) RegisterDBStats(stats func() sql.DBStats) error {
	if err := m.reg.Register(newDBCollector(stats)); err != nil {
		return fmt.Errorf("register database pool metrics: %w", err)
	}
	return nil
}

// RegisterBrokerStats exports the broker's delivered and dropped event
// counts, read at scrape time from stats (broker.Memory.Stats). They are
// counters the broker already keeps, so they are read rather than mirrored.
func (m *Metrics) RegisterBrokerStats(stats func() (delivered, dropped uint64)) error {
	published := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace, Name: "events_published_total",
		Help: "Events the broker delivered to a subscriber.",
	}, func() float64 { d, _ := stats(); return float64(d) })
	dropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace, Name: "events_dropped_total",
		Help: "Events the broker dropped because a subscriber's queue was full.",
	}, func() float64 { _, d := stats(); return float64(d) })
	for _, c := range []prometheus.Collector{published, dropped} {
		if err := m.reg.Register(c); err != nil {
			return fmt.Errorf("register broker metrics: %w", err)
		}
	}
	return nil
}

// HTTPMiddleware counts requests by method and status. A websocket is
// counted when it closes, with status 101.
func (m *Metrics) HTTPMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := respwriter.New(w)
		next.ServeHTTP(rec, r)
		counter := m.httpRequests.WithLabelValues(method(r.Method), strconv.Itoa(rec.Status()))
		if rec.Upgraded() {
			// A websocket served after its handler returned ends later.
			reqctx.AtEnd(r.Context(), counter.Inc)
			return
		}
		counter.Inc()
	})
}

// method bounds the method label: any client can send any token as a method.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodHead, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// GraphQLExtension returns the gqlgen extension that counts operations by
// name and type, times queries and mutations, and counts errors by code.
func (m *Metrics) GraphQLExtension() graphql.HandlerExtension { return gqlExtension{m} }

type gqlExtension struct{ m *Metrics }

var (
	_ graphql.HandlerExtension     = gqlExtension{}
	_ graphql.OperationInterceptor = gqlExtension{}
	_ graphql.ResponseInterceptor  = gqlExtension{}
)

// dispatchedKey marks the contexts of operations that InterceptOperation
// counts, so that InterceptResponse counts only the errors of requests that
// never became an operation (parse and validation failures).
type dispatchedKey struct{}

func (gqlExtension) ExtensionName() string                   { return "Metrics" }
func (gqlExtension) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation counts the operation and wraps its response stream: every
// response of a dispatched operation passes there, including the ones gqlgen
// returns without running the response interceptors (errors raised when a
// subscription starts).
func (e gqlExtension) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	name, typ := "anonymous", "unknown"
	if opCtx := graphql.GetOperationContext(ctx); opCtx.Operation != nil {
		if opCtx.Operation.Name != "" {
			name = opCtx.Operation.Name
		}
		typ = string(opCtx.Operation.Operation)
	}
	name = e.m.opNames.label(name)
	e.m.operations.WithLabelValues(name, typ).Inc()
	start := e.m.now()
	responses := next(context.WithValue(ctx, dispatchedKey{}, true))
	timed := typ == "subscription"
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if !timed {
			// A query or mutation executes when its first response is asked for.
			timed = true
			e.m.opDuration.WithLabelValues(name, typ).Observe(e.m.now().Sub(start).Seconds())
		}
		if resp != nil {
			e.m.countErrors(resp.Errors)
		}
		return resp
	}
}

// InterceptResponse counts the errors of requests rejected before dispatch.
func (e gqlExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil && ctx.Value(dispatchedKey{}) == nil {
		e.m.countErrors(resp.Errors)
	}
	return resp
}

func (m *Metrics) countErrors(errs gqlerror.List) {
	for _, err := range errs {
		code := "UNKNOWN"
		if c, ok := err.Extensions["code"].(string); ok && c != "" {
			code = c
		}
		m.gqlErrors.WithLabelValues(m.codes.label(code)).Inc()
	}
}

// bounded admits the first max distinct label values and maps every later one
// to "other".
type bounded struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

func newBounded(max int) *bounded { return &bounded{max: max, seen: map[string]struct{}{}} }

func (b *bounded) label(v string) string {
	b.mu.RLock()
	_, ok := b.seen[v]
	b.mu.RUnlock()
	if ok {
		return v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return other
	}
	b.seen[v] = struct{}{}
	return v
}

// dbCollector reads the pool statistics at scrape time.
type dbCollector struct {
	stats                                  func() sql.DBStats
	open, inUse, idle, waitCount, waitTime *prometheus.Desc
}

func newDBCollector(stats func() sql.DBStats) *dbCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "db", name), help, nil, nil)
	}
	return &dbCollector{
		stats:     stats,
		open:      d("connections_open", "Open database connections, in use or idle."),
		inUse:     d("connections_in_use", "Database connections in use."),
		idle:      d("connections_idle", "Idle database connections."),
		waitCount: d("wait_count_total", "Times a query waited for a free connection."),
		waitTime:  d("wait_duration_seconds_total", "Time spent waiting for a free connection."),
	}
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.inUse, c.idle, c.waitCount, c.waitTime} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.OpenConnections))
	ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(c.waitCount, prometheus.CounterValue, float64(s.WaitCount))
	ch <- prometheus.MustNewConstMetric(c.waitTime, prometheus.CounterValue, s.WaitDuration.Seconds())
}
