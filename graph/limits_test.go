package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/models"
)

// limitsSchema is the real schema with SetComplexity's cost functions and no
// resolvers: executing anything would panic, which the handler tests use to
// prove that rejected operations never run.
func limitsSchema() graphql.ExecutableSchema {
	cfg := Config{}
	SetComplexity(&cfg.Complexity)
	return NewExecutableSchema(cfg)
}

// opContext parses and validates query against the real schema, as gqlgen
// does before the operation-context mutators run.
func opContext(t *testing.T, es graphql.ExecutableSchema, query string, vars map[string]any) *graphql.OperationContext {
	t.Helper()
	doc, errs := gqlparser.LoadQuery(es.Schema(), query)
	if len(errs) > 0 {
		t.Fatalf("query does not validate: %v", errs)
	}
	op := doc.Operations.ForName("")
	return &graphql.OperationContext{RawQuery: query, Doc: doc, Operation: op, Variables: vars}
}

// appQuery is what the web client asks when it opens a room.
const appQuery = `query Room($id: ID!) {
  room(id: $id) {
    id name isGroup memberCount myRole
    membersConnection(first: 50) {
      pageInfo { hasNextPage endCursor }
      edges { node { role user { id username online publicKey { id key fingerprint } } } }
    }
    messages(first: 50) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node {
        id ciphertext nonce createdAt deleted
        sender { id username }
        myKey { keyId kemCiphertext wrappedKey }
      } }
    }
  }
}`

const sidebarQuery = `{
  me { id username }
  conversations(first: 50) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      unreadCount lastActivityAt
      room { id name isGroup memberCount }
      user { id username online }
      lastMessage { id createdAt sender { id username } }
    } }
  }
}`

// attackQuery is issue 14's: every member of every room with their keys.
const attackQuery = `{ myRooms { members { user { id username publicKey { key } } } } }`

// introspectionQuery is graphql-js getIntrospectionQuery(), what GraphiQL sends.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

func TestShape(t *testing.T) {
	es := limitsSchema()
	tests := []struct {
		name  string
		query string
		want  shape
	}{
		{name: "flat", query: `{ me { id } }`, want: shape{depth: 2, fields: 2, rootFields: 1}},
		{name: "app query", query: appQuery, want: shape{depth: 7, fields: 40, rootFields: 1}},
		{name: "alias equal to name is not an alias", query: `{ me: me { id: id } }`, want: shape{depth: 2, fields: 2, rootFields: 1}},
		{name: "aliases", query: `{ a: me { id } b: me { x: id } }`, want: shape{depth: 2, aliases: 3, fields: 4, rootFields: 2}},
		{name: "inline fragment adds no depth", query: `{ me { ... on User { id publicKey { key } } } }`, want: shape{depth: 3, fields: 4, rootFields: 1}},
		{
			name:  "fragments counted where spread",
			query: `{ a: me { ...U } b: me { ...U } } fragment U on User { x: id y: username publicKey { key } }`,
			want:  shape{depth: 3, aliases: 6, fields: 10, rootFields: 2},
		},
		{
			name:  "root fields through fragments",
			query: `{ ...Q ... on Query { me { id } } } fragment Q on Query { a: me { id } b: me { id } }`,
			want:  shape{depth: 2, aliases: 2, fields: 6, rootFields: 3},
		},
		{name: "typename is free", query: `{ __typename me { __typename } }`, want: shape{depth: 2, fields: 1, rootFields: 2}},
		{name: "introspection not counted", query: introspectionQuery, want: shape{depth: 1, rootFields: 1}},
		{name: "type lookup not counted", query: `{ t: __type(name: "User") { fields { type { ofType { ofType { name } } } } } }`, want: shape{depth: 1, aliases: 1, rootFields: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := shapeOf(opContext(t, es, tt.query, nil))
			if got != tt.want {
				t.Errorf("shape = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fragmentBomb is a valid document whose expansion has 2^n fields: each
// fragment spreads the next one twice.
func fragmentBomb(n int) string {
	var b strings.Builder
	b.WriteString("{ me { ...F0 } }\n")
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on User { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on User { a: id }\n", n)
	return b.String()
}

func TestShapeFragmentBomb(t *testing.T) {
	es := limitsSchema()
	start := time.Now()
	s := shapeOf(opContext(t, es, fragmentBomb(70), nil))
	if s.fields != math.MaxInt || s.aliases != math.MaxInt {
		t.Errorf("counts should saturate: %+v", s)
	}
	if s.depth != 2 {
		t.Errorf("depth %d", s.depth)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("measuring took %v", d)
	}
}

func TestSetComplexity(t *testing.T) {
	es := limitsSchema()
	ext := ComplexityLimit(math.MaxInt - 1)
	if err := ext.Validate(es); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		query string
		vars  map[string]any
		want  int
	}{
		// messages: 1 + first × (edges 1 + node 1 + id 1) = 1 + n×3; room 1; id 1.
		{name: "messages default page", query: `{ room(id: "r") { id messages { edges { node { id } } } } }`, want: 1 + 1 + (1 + 50*3)},
		{name: "messages first 10", query: `{ room(id: "r") { messages(first: 10) { edges { node { id } } } } }`, want: 1 + (1 + 10*3)},
		{name: "messages first from variable", query: `query($n: Int) { room(id: "r") { messages(first: $n) { edges { node { id } } } } }`, vars: map[string]any{"n": 20}, want: 1 + (1 + 20*3)},
		{name: "messages first 0 still costs one", query: `{ room(id: "r") { messages(first: 0) { edges { node { id } } } } }`, want: 1 + (1 + 1*3)},
		{name: "direct messages", query: `{ directMessages(withUserId: "u", first: 30) { edges { node { id ciphertext } } } }`, want: 1 + 30*4},
		{name: "users by ids", query: `{ users(ids: ["a","b","c","d"]) { id username } }`, want: 1 + 4*2},
		// __typename, which Apollo adds to every selection set, is free.
		{name: "typename free", query: `{ __typename room(id: "r") { __typename id messages(first: 10) { __typename edges { __typename node { __typename id } } } } }`, want: 1 + 1 + (1 + 10*3)},
		// Plain lists cost their cap, connections their page.
		{name: "myRooms capped", query: `{ myRooms { id } }`, want: 1 + models.MaxListedRooms*1},
		{name: "members capped", query: `{ room(id: "r") { members { role } } }`, want: 1 + (1 + models.MaxRoomMembers*1)},
		{name: "documents capped", query: `{ room(id: "r") { documents { id name } } }`, want: 1 + (1 + models.MaxListedDocuments*2)},
		{name: "keys capped", query: `{ me { keys { id } } }`, want: 1 + (1 + models.MaxListedKeys*1)},
		{name: "markRead by ids", query: `mutation { markRead(messageIds: ["a","b","c"]) }`, want: 1 + 3},
		{name: "nested lists multiply", query: `{ myRooms { messages(first: 5) { edges { node { id } } } } }`, want: 1 + models.MaxListedRooms*(1+5*3)},
		// edges 1 + node 1 + id 1 per item.
		{name: "myRoomsConnection default", query: `{ myRoomsConnection { edges { node { id } } } }`, want: 1 + 50*3},
		{name: "membersConnection default", query: `{ room(id: "r") { membersConnection { edges { node { role } } } } }`, want: 1 + (1 + 100*3)},
		{name: "membersConnection first 7", query: `{ room(id: "r") { membersConnection(first: 7) { edges { node { role } } } } }`, want: 1 + (1 + 7*3)},
		{name: "documentsConnection default", query: `{ room(id: "r") { documentsConnection { edges { node { id } } } } }`, want: 1 + (1 + 50*3)},
		{name: "keysConnection default", query: `{ me { keysConnection { edges { node { id } } } } }`, want: 1 + (1 + 20*3)},
		{name: "conversations first 10", query: `{ conversations(first: 10) { edges { node { unreadCount } } } }`, want: 1 + 10*3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opCtx := opContext(t, es, tt.query, tt.vars)
			if err := ext.(graphql.OperationContextMutator).MutateOperationContext(context.Background(), opCtx); err != nil {
				t.Fatal(err)
			}
			stats := extension.GetComplexityStats(graphql.WithOperationContext(context.Background(), opCtx))
			if stats == nil || stats.Complexity != tt.want {
				t.Errorf("complexity stats %+v, want %d", stats, tt.want)
			}
		})
	}
}

func TestListCost(t *testing.T) {
	tests := []struct{ child, n, want int }{
		{3, 50, 151},
		{0, 4, 5},
		{3, 0, 4},
		{3, -5, 4},
		{math.MaxInt / 2, 3, math.MaxInt},
		{2, math.MaxInt, math.MaxInt},
	}
	for _, tt := range tests {
		if got := listCost(tt.child, tt.n); got != tt.want {
			t.Errorf("listCost(%d, %d) = %d, want %d", tt.child, tt.n, got, tt.want)
		}
	}
}

func manyAliases(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, " a%d: me { id }", i)
	}
	b.WriteString(" }")
	return b.String()
}

func deepQuery(roomLevels int) string {
	// room → messages → edges → node → room → …: 4 levels per repetition.
	q := "id"
	for range roomLevels {
		q = "messages(first: 1) { edges { node { room { " + q + " } } } }"
	}
	return "{ room(id: \"r\") { " + q + " } }"
}

func TestGuards(t *testing.T) {
	es := limitsSchema()
	tests := []struct {
		name    string
		ext     graphql.HandlerExtension
		query   string
		wantErr string
	}{
		{name: "depth app query", ext: DepthLimit(DefaultDepthLimit), query: appQuery},
		{name: "depth sidebar", ext: DepthLimit(DefaultDepthLimit), query: sidebarQuery},
		{name: "depth introspection", ext: DepthLimit(DefaultDepthLimit), query: introspectionQuery},
		{name: "depth at limit", ext: DepthLimit(10), query: deepQuery(2)}, // room + 2×4 + id = 10
		{name: "depth over limit", ext: DepthLimit(9), query: deepQuery(2), wantErr: "operation has depth 10, which exceeds the limit of 9"},
		{name: "depth through fragments", ext: DepthLimit(3), query: `{ me { ...A } } fragment A on User { publicKey { ... on PublicKey { key } } }`},
		{name: "depth through fragments over", ext: DepthLimit(2), query: `{ me { ...A } } fragment A on User { publicKey { ... on PublicKey { key } } }`, wantErr: "depth 3"},
		{name: "depth disabled", ext: DepthLimit(0), query: deepQuery(10)},
		{name: "aliases at limit", ext: AliasLimit(DefaultAliasLimit), query: manyAliases(DefaultAliasLimit)},
		{name: "aliases over limit", ext: AliasLimit(DefaultAliasLimit), query: manyAliases(DefaultAliasLimit + 1), wantErr: "operation has 31 aliases, which exceeds the limit of 30"},
		{name: "aliases multiplied by spreads", ext: AliasLimit(5), query: `{ a: me { ...U } b: me { ...U } } fragment U on User { x: id y: username }`, wantErr: "6 aliases"},
		{name: "alias amplification of login", ext: AliasLimit(DefaultAliasLimit), query: loginAmplification(100), wantErr: "100 aliases"},
		{name: "aliases disabled", ext: AliasLimit(-1), query: manyAliases(100)},
		{name: "root fields at limit", ext: RootFieldLimit(DefaultRootFieldLimit), query: manyAliases(DefaultRootFieldLimit)},
		{name: "root fields over limit", ext: RootFieldLimit(DefaultRootFieldLimit), query: manyAliases(DefaultRootFieldLimit + 1), wantErr: "operation has 21 top-level fields, which exceeds the limit of 20"},
		{name: "complexity app query", ext: ComplexityLimit(DefaultComplexityLimit), query: appQuery},
		{name: "complexity sidebar", ext: ComplexityLimit(DefaultComplexityLimit), query: sidebarQuery},
		{name: "complexity introspection", ext: ComplexityLimit(DefaultComplexityLimit), query: introspectionQuery},
		{name: "complexity big page", ext: ComplexityLimit(DefaultComplexityLimit), query: `{ room(id: "r") { messages(first: 1000) { edges { node { id } } } } }`, wantErr: "operation has complexity 3002, which exceeds the limit of 2000"},
		{name: "complexity members of every room", ext: ComplexityLimit(DefaultComplexityLimit), query: attackQuery, wantErr: "exceeds the limit of 2000"},
		{name: "complexity rooms with full pages", ext: ComplexityLimit(DefaultComplexityLimit), query: `{ myRooms { messages { edges { node { id ciphertext sender { id } } } } } }`, wantErr: "exceeds the limit of 2000"},
		{name: "complexity fragment bomb rejected early", ext: ComplexityLimit(DefaultComplexityLimit), query: fragmentBomb(70), wantErr: fmt.Sprintf("complexity of at least %d", math.MaxInt)},
		{name: "complexity disabled", ext: ComplexityLimit(0), query: `{ room(id: "r") { messages(first: 100000) { edges { node { id } } } } }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.ext.Validate(es); err != nil {
				t.Fatal(err)
			}
			opCtx := opContext(t, es, tt.query, nil)
			gerr := tt.ext.(graphql.OperationContextMutator).MutateOperationContext(context.Background(), opCtx)
			if tt.wantErr == "" {
				if gerr != nil {
					t.Fatalf("rejected: %v", gerr)
				}
				if stats := extension.GetComplexityStats(graphql.WithOperationContext(context.Background(), opCtx)); stats != nil {
					t.Logf("complexity %d of %d", stats.Complexity, stats.ComplexityLimit)
				}
				return
			}
			if gerr == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(gerr.Message, tt.wantErr) {
				t.Errorf("message %q, want %q", gerr.Message, tt.wantErr)
			}
			if gerr.Extensions["code"] != apierr.CodeComplexityLimit {
				t.Errorf("code %v", gerr.Extensions["code"])
			}
		})
	}
}

func loginAmplification(n int) string {
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range n {
		fmt.Fprintf(&b, ` l%d: login(username: "alice", password: "guess%d") { token }`, i, i)
	}
	b.WriteString(" }")
	return b.String()
}

// gqlHandler is gqlgen's server over the real schema with the guards in the
// order the lead wires them, and a recover func that records execution.
func gqlHandler(t *testing.T) (http.Handler, *atomic.Int32) {
	t.Helper()
	var executed atomic.Int32
	srv := handler.New(limitsSchema())
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		executed.Add(1) // a resolver ran (and panicked on the nil resolver root)
		return fmt.Errorf("panic: %v", p)
	})
	srv.SetErrorPresenter(ErrorPresenter(slog.New(slog.DiscardHandler)))
	srv.Use(APQ(DefaultAPQCacheBytes))
	srv.Use(RootFieldLimit(DefaultRootFieldLimit))
	srv.Use(DepthLimit(DefaultDepthLimit))
	srv.Use(AliasLimit(DefaultAliasLimit))
	srv.Use(ComplexityLimit(DefaultComplexityLimit))
	return srv, &executed
}

type gqlResponse struct {
	Data   json.RawMessage
	Errors gqlerror.List
}

func post(t *testing.T, h http.Handler, body map[string]any) (int, gqlResponse) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(raw)))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var resp gqlResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response %q: %v", w.Body, err)
	}
	return w.Code, resp
}

func TestLimitsRejectBeforeExecution(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		wantCode string
		wantExec bool
	}{
		{name: "allowed query executes", query: `{ me { id } }`, wantExec: true},
		{name: "complexity", query: `{ room(id: "r") { messages(first: 5000) { edges { node { id } } } } }`, wantCode: apierr.CodeComplexityLimit},
		{name: "depth", query: deepQuery(3), wantCode: apierr.CodeComplexityLimit},
		{name: "aliases", query: loginAmplification(31), wantCode: apierr.CodeComplexityLimit},
		{name: "root fields", query: manyAliases(21), wantCode: apierr.CodeComplexityLimit},
		{name: "fragment bomb", query: fragmentBomb(60), wantCode: apierr.CodeComplexityLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, executed := gqlHandler(t)
			_, resp := post(t, h, map[string]any{"query": tt.query})
			if got := executed.Load() > 0; got != tt.wantExec {
				t.Fatalf("executed = %v; errors %v", got, resp.Errors)
			}
			if tt.wantCode == "" {
				return
			}
			if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != tt.wantCode {
				t.Fatalf("errors %v", resp.Errors)
			}
			if string(resp.Data) != "" && string(resp.Data) != "null" {
				t.Errorf("data %s", resp.Data)
			}
		})
	}
}

func TestAPQ(t *testing.T) {
	h, executed := gqlHandler(t)
	query := `{ me { id } }`
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}

	_, resp := post(t, h, map[string]any{"extensions": ext})
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("unknown hash: %v", resp.Errors)
	}
	if executed.Load() != 0 {
		t.Fatal("executed without a query")
	}

	_, resp = post(t, h, map[string]any{"query": `{ me { username } }`, "extensions": ext})
	if len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0].Message, "hash does not match") ||
		resp.Errors[0].Extensions["code"] != apierr.CodeBadUserInput {
		t.Fatalf("mismatched hash: %v", resp.Errors)
	}
	_, resp = post(t, h, map[string]any{"query": query, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 2, "sha256Hash": hash}}})
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != apierr.CodeBadUserInput {
		t.Fatalf("unsupported version: %v", resp.Errors)
	}

	post(t, h, map[string]any{"query": query, "extensions": ext})
	if executed.Load() != 1 {
		t.Fatalf("registering query executed %d times", executed.Load())
	}
	post(t, h, map[string]any{"extensions": ext})
	if executed.Load() != 2 {
		t.Fatal("persisted query not found on second use")
	}

	// A persisted query still meets the guards.
	big := `{ room(id: "r") { messages(first: 5000) { edges { node { id } } } } }`
	bigSum := sha256.Sum256([]byte(big))
	bigExt := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(bigSum[:])}}
	_, resp = post(t, h, map[string]any{"query": big, "extensions": bigExt})
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != apierr.CodeComplexityLimit {
		t.Fatalf("errors %v", resp.Errors)
	}
	_, resp = post(t, h, map[string]any{"extensions": bigExt})
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != apierr.CodeComplexityLimit {
		t.Fatalf("persisted: errors %v", resp.Errors)
	}
}

func TestQueryCacheBounded(t *testing.T) {
	c := newQueryCache(10 << 10)
	ctx := context.Background()
	q := strings.Repeat("x", 1000)
	for i := range 200 {
		c.Add(ctx, fmt.Sprint(i), q)
	}
	c.c.CleanUp()
	if w := c.c.WeightedSize(); w > 10<<10 {
		t.Fatalf("cache weighs %d bytes, bound is %d", w, 10<<10)
	}
	if _, ok := c.Get(ctx, "199"); !ok {
		// Not required by the bound, but a fresh entry should normally survive.
		t.Log("latest entry was evicted")
	}
	c.Add(ctx, "big", strings.Repeat("y", 20<<10))
	c.c.CleanUp()
	if _, ok := c.Get(ctx, "big"); ok {
		t.Error("entry larger than the whole cache kept")
	}
}
