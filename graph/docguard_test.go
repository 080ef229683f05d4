package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/qchattest/gqlbomb"
)

// apolloIntrospectionQuery is graphql-js getIntrospectionQuery with every
// option on (descriptions, specifiedByURL, isRepeatable, schema description,
// deprecated input values), what Apollo Sandbox and Rover send.
var apolloIntrospectionQuery = `query IntrospectionQuery {
  __schema {
    description
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type {
  kind name
  ` + ofTypes9 + `
}`

// ofTypes9 is graphql-js v16's TypeRef: nine levels of ofType.
var ofTypes9 = strings.Repeat("ofType { kind name ", 9) + strings.Repeat("}", 9)

// realDocuments are what clients really send: the web app's queries, the
// SDK's operations and the introspection queries of GraphiQL and Apollo.
func realDocuments(t *testing.T) map[string]string {
	t.Helper()
	docs := map[string]string{
		"app room query":           appQuery,
		"app sidebar":              sidebarQuery,
		"graphiql introspection":   introspectionQuery,
		"apollo introspection":     apolloIntrospectionQuery,
		"type lookup":              `{ __type(name: "User") { name fields { name type { name kind ofType { name kind } } } } }`,
		"fragments and __typename": `{ me { __typename ...U ...U2 } } fragment U on User { __typename id username } fragment U2 on User { __typename id publicKey { __typename id } }`,
	}
	// The SDK's operations file holds every operation with its fragments.
	sdk, err := os.ReadFile("../client/operations.graphql")
	if err != nil {
		t.Fatal(err)
	}
	docs["sdk operations"] = string(sdk)
	return docs
}

func TestDocumentLimitsPassRealDocuments(t *testing.T) {
	schema := limitsSchema().Schema()
	for name, q := range realDocuments(t) {
		t.Run(name, func(t *testing.T) {
			doc, err := parser.ParseQuery(&ast.Source{Input: q})
			if err != nil {
				t.Fatal(err)
			}
			if errs := validator.Validate(schema, doc); len(errs) > 0 {
				t.Fatalf("not valid against the schema: %v", errs)
			}
			if gerr := checkDocument(q, DocumentLimits{}.withDefaults()); gerr != nil {
				t.Fatalf("refused: %v", gerr)
			}
		})
	}
}

func TestDocumentLimits(t *testing.T) {
	tests := []struct {
		name    string
		limits  DocumentLimits
		query   string
		wantErr string
		code    string
	}{
		{name: "tokens", limits: DocumentLimits{Tokens: 8}, query: "{ me { id username online createdAt } }", wantErr: "limit of 8 tokens"},
		{name: "tokens exact", limits: DocumentLimits{Tokens: 9}, query: "{ me { id username online } }"},
		{name: "syntax error left to gqlgen", query: "{ me { id "},
		{name: "fields expanded", limits: DocumentLimits{Fields: 4, SameName: -1}, query: "{ me { ...U ...U } } fragment U on User { id username }", wantErr: "limit of 4 fields", code: apierr.CodeComplexityLimit},
		{name: "fields at limit", limits: DocumentLimits{Fields: 5, SameName: -1}, query: "{ me { ...U ...U } } fragment U on User { a: id }"},
		{name: "expansions", limits: DocumentLimits{Expansions: 6, SameName: -1}, query: "{ me { ...A } } fragment A on User { ...B ...B } fragment B on User { ...C ...C } fragment C on User { ... on User { id } }", wantErr: "limit of 6 inline fragments and fragment spreads"},
		{name: "fields in one set", limits: DocumentLimits{SelectionFields: 3}, query: "{ me { a: id ... on User { b: id ...U } } } fragment U on User { c: id d: id }", wantErr: "limit of 3 fields in one selection set"},
		{name: "same key", limits: DocumentLimits{SameName: 2}, query: "{ me { id id id } }", wantErr: `limit of 2 fields answering the same response key ("id")`},
		{name: "same key across fields", limits: DocumentLimits{SameName: 2}, query: "{ me { publicKey { key } } me { publicKey { key } } me: me { publicKey { id } } }", wantErr: `("me")`},
		{name: "same key beneath", limits: DocumentLimits{SameName: 2}, query: "{ me { publicKey { key key } } me { publicKey { key } } }", wantErr: `("key")`},
		{name: "same key through fragments", limits: DocumentLimits{SameName: 2}, query: "{ me { ...U ... on User { id } } } fragment U on User { id ...V } fragment V on User { id }", wantErr: `("id")`},
		{name: "aliases are other keys", limits: DocumentLimits{SameName: 1}, query: "{ me { a: id b: id id } }"},
		{name: "fragment definitions", limits: DocumentLimits{Fragments: 1}, query: "{ me { ...A ...B } } fragment A on User { id } fragment B on User { id }", wantErr: "limit of 1 fragment definitions"},
		{name: "spreads", limits: DocumentLimits{Spreads: 2}, query: "{ me { ...A ...A ...A } } fragment A on User { id }", wantErr: "limit of 2 fragment spreads"},
		{name: "directives", limits: DocumentLimits{Directives: 2}, query: "{ me @skip(if: false) { id @include(if: true) ...A @skip(if: false) } } fragment A on User { id }", wantErr: "limit of 2 directives"},
		{name: "variables", limits: DocumentLimits{Variables: 1}, query: "query($a: ID!, $b: ID!) { user(id: $a) { id } b: user(id: $b) { id } }", wantErr: "limit of 1 variables"},
		{name: "nesting of fields", limits: DocumentLimits{Nesting: 2}, query: "{ me { publicKey { key } } }", wantErr: "limit of 2 levels of nesting"},
		{name: "nesting of inline fragments", limits: DocumentLimits{Nesting: 3}, query: "{ me { ... on User { ... on User { ... on User { id } } } } }", wantErr: "levels of nesting"},
		{name: "nesting of a fragment chain", limits: DocumentLimits{Nesting: 4}, query: "{ me { ...A } } fragment A on User { ...B } fragment B on User { ...C } fragment C on User { ...D } fragment D on User { id }", wantErr: "levels of nesting"},
		{name: "nesting of a reused fragment", limits: DocumentLimits{Nesting: 4}, query: "{ me { ...A publicKey { ... on PublicKey { ...K } } } } fragment A on User { ...K2 } fragment K2 on User { id } fragment K on PublicKey { ... on PublicKey { key } }", wantErr: "levels of nesting"},
		{name: "cycle is left to validation", query: "{ me { ...A } } fragment A on User { id ...B } fragment B on User { ...A }"},
		{name: "unknown fragment is left to validation", query: "{ me { ...Nope } }"},
		{name: "unused fragments count", limits: DocumentLimits{SelectionFields: 2}, query: "{ me { id } } fragment A on User { a: id b: id c: id }", wantErr: "fields in one selection set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gerr := checkDocument(tt.query, tt.limits.withDefaults())
			if tt.wantErr == "" {
				if gerr != nil {
					t.Fatalf("refused: %v", gerr)
				}
				return
			}
			if gerr == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(gerr.Message, tt.wantErr) {
				t.Errorf("message %q, want %q", gerr.Message, tt.wantErr)
			}
			want := tt.code
			if want == "" {
				want = "GRAPHQL_VALIDATION_FAILED"
			}
			if gerr.Extensions["code"] != want {
				t.Errorf("code %v, want %s", gerr.Extensions["code"], want)
			}
		})
	}
}

// TestDocumentLimitsBoundValidation finds, for every bomb shape, the largest
// input the default limits let through and checks that gqlparser validates
// it with bounded work. Allocations stand in for time (a timed test would
// depend on the machine): unbounded, the shapes at these sizes allocate
// hundreds of megabytes; run with QCHAT_MEASURE=1 for the times.
func TestDocumentLimitsBoundValidation(t *testing.T) {
	schema := limitsSchema().Schema()
	l := DocumentLimits{}.withDefaults()
	for _, sh := range gqlbomb.Shapes {
		t.Run(sh.Name, func(t *testing.T) {
			n := largestAccepted(sh, l)
			q := sh.Build(n)
			if gerr := checkDocument(sh.Build(n+1), l); gerr == nil && parses(sh.Build(n+1), l.Tokens) {
				t.Fatalf("n=%d accepted, yet not n=%d", n+1, n)
			}
			allocs := testing.AllocsPerRun(3, func() {
				doc, err := parser.ParseQuery(&ast.Source{Input: q})
				if err == nil {
					validator.Validate(schema, doc)
				}
			})
			t.Logf("largest accepted n=%d (%d bytes): %.0f allocations to parse and validate", n, len(q), allocs)
			if allocs > 100_000 {
				t.Errorf("%.0f allocations to validate n=%d", allocs, n)
			}
		})
	}
}

// A query in the parsed-document cache was checked and validated when it
// was stored: the guard does not parse it again.
func TestDocumentGuardSkipsCachedQueries(t *testing.T) {
	ctx := context.Background()
	cache := lru.New[*ast.QueryDocument](4)
	g := documentGuard{limits: DocumentLimits{Tokens: 3}.withDefaults(), cache: cache}
	q := "{ me { id } }"
	if err := g.MutateOperationParameters(ctx, &graphql.RawParams{Query: q}); err == nil {
		t.Fatal("uncached query over the limit accepted")
	}
	cache.Add(ctx, q, &ast.QueryDocument{})
	if err := g.MutateOperationParameters(ctx, &graphql.RawParams{Query: q}); err != nil {
		t.Fatalf("cached query checked again: %v", err)
	}
}

// The guard runs after APQ: a persisted bomb, sent by hash alone, meets the
// limits like a sent one instead of reaching validation.
func TestDocumentGuardAfterAPQ(t *testing.T) {
	h := NewHandler(HandlerConfig{Schema: limitsSchema(), Extensions: []graphql.HandlerExtension{APQ(DefaultAPQCacheBytes)}})
	h.AddTransport(transport.POST{})
	bomb := gqlbomb.Shapes[0].Build(50)
	sum := sha256.Sum256([]byte(bomb))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	for _, body := range []map[string]any{{"query": bomb, "extensions": ext}, {"extensions": ext}} {
		_, resp := post(t, h, body)
		if len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0].Message, "exceeds the limit of 32 fields answering the same response key") {
			t.Fatalf("%v: errors %v", body, resp.Errors)
		}
	}
}
