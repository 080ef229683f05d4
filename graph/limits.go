package graph

import (
	"context"
	"fmt"
	"math"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/maypok86/otter/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/models"
)

// Defaults of the operation guards. A client query of the web app stays far
// below each; they exist to refuse operations built to be expensive.
const (
	// DefaultComplexityLimit: the web client's room query (50 messages with
	// sender and key, a page of 50 members with their keys) costs about 1600,
	// its sidebar (50 conversations with room or user and the last message)
	// about 1150.
	DefaultComplexityLimit = 2000
	// DefaultDepthLimit: the deepest app query (myRooms → messages → edges →
	// node → sender → publicKey → key) is 7 levels.
	DefaultDepthLimit = 12
	// DefaultAliasLimit bounds fields requested under another name, the tool
	// of alias amplification (one request asking for login 1000 times).
	DefaultAliasLimit = 30
	// DefaultRootFieldLimit bounds the top-level fields of one operation,
	// which gqlgen resolves in parallel.
	DefaultRootFieldLimit = 20
	// DefaultAPQCacheBytes bounds the persisted-query cache by the size of the
	// queries, not their number: a count bound would let 1 MiB queries fill
	// gigabytes.
	DefaultAPQCacheBytes = 8 << 20

	// DefaultPageSize is the weight of a paginated list when `first` is not
	// given, the schema's own default for most of them.
	DefaultPageSize = 50
)

// SetComplexity fills the cost functions of the list fields, which gqlgen
// otherwise counts as a single object: a paginated list costs its page size
// times its selection, a list of ids its length times its selection, and a
// plain list the most items it can hold (the caps in models) times. Call it
// on the Config given to NewExecutableSchema, before ComplexityLimit is used.
func SetComplexity(c *ComplexityRoot) {
	// page prices a connection by first, or by the field's default (def)
	// when first is null; a first the resolver refuses still costs what it
	// asks for, so that a huge one is refused here.
	page := func(def int) func(child int, first *int, _ *string) int {
		return func(child int, first *int, _ *string) int {
			n := def
			if first != nil {
				n = *first
			}
			return listCost(child, n)
		}
	}
	capped := func(n int) func(child int) int {
		return func(child int) int { return listCost(child, n) }
	}

	c.Room.Messages = page(DefaultPageSize)
	c.Query.DirectMessages = func(child int, _ string, first *int, after *string) int {
		return page(DefaultPageSize)(child, first, after)
	}
	c.Query.Users = func(child int, ids []string) int { return listCost(child, len(ids)) }
	c.Mutation.MarkRead = func(child int, ids []string) int { return listCost(child, len(ids)) }

	c.Query.MyRooms = capped(models.MaxListedRooms)
	c.Room.Members = capped(models.MaxRoomMembers)
	c.Room.Documents = capped(models.MaxListedDocuments)
	c.User.Keys = capped(models.MaxListedKeys)
	c.Query.MyRoomsConnection = page(DefaultPageSize)
	c.Room.MembersConnection = page(models.MaxPageSize)
	c.Room.DocumentsConnection = page(DefaultPageSize)
	c.User.KeysConnection = page(20)
	c.Query.Conversations = page(DefaultPageSize)
}

// listCost is 1 for the field plus n times its selection (at least 1 each, so
// a list of scalars still costs by its length), saturating instead of
// overflowing into a small number.
func listCost(child, n int) int {
	n = max(n, 1)
	child = max(child, 1)
	if child > (math.MaxInt-1)/n {
		return math.MaxInt
	}
	return 1 + child*n
}

// ComplexityLimit rejects, before execution, operations whose cost (see
// SetComplexity) exceeds limit, with COMPLEXITY_LIMIT_EXCEEDED. limit <= 0
// disables it.
//
// It wraps gqlgen's extension.ComplexityLimit, whose calculation walks every
// fragment spread anew: a document of nested fragments that each spread the
// next twice costs 2^n steps to price. So the operation's size is first
// measured with memoised fragments; a field count alone over limit rejects it
// at once, since every field but __typename costs at least 1.
//
// __typename costs nothing: it is answered from the type without a
// resolver, and Apollo Client adds it to every selection set, which would
// otherwise make an Apollo app's query cost up to half again what the same
// query costs from any other client.
func ComplexityLimit(limit int) graphql.HandlerExtension {
	return &complexityLimit{limit: limit}
}

type complexityLimit struct {
	limit int
	inner *extension.ComplexityLimit
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = (*complexityLimit)(nil)

func (c *complexityLimit) ExtensionName() string { return "ComplexityLimit" }

func (c *complexityLimit) Validate(es graphql.ExecutableSchema) error {
	free := map[string]struct{}{}
	for name, def := range es.Schema().Types {
		switch def.Kind {
		case ast.Object, ast.Interface, ast.Union:
			free[name+".__typename"] = struct{}{}
		}
	}
	c.inner = extension.FixedComplexityLimit(c.limit, complexity.WithIgnoreFields(free))
	if err := c.inner.Validate(es); err != nil {
		return fmt.Errorf("complexity limit: %w", err)
	}
	return nil
}

func (c *complexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if c.limit <= 0 {
		return nil
	}
	if s := shapeOf(opCtx); s.fields > c.limit {
		return limitError(fmt.Sprintf("operation has complexity of at least %d, which exceeds the limit of %d", s.fields, c.limit))
	}
	return c.inner.MutateOperationContext(ctx, opCtx)
}

// DepthLimit rejects operations nested deeper than limit fields, before
// execution, with COMPLEXITY_LIMIT_EXCEEDED. Fragments add no depth of their
// own; introspection (__schema, __type) is not counted, as its type
// references nest by design and it is off in production. limit <= 0 disables
// it.
func DepthLimit(limit int) graphql.HandlerExtension {
	return guard{name: "DepthLimit", limit: limit, measure: func(s shape) (int, string) {
		return s.depth, "operation has depth %d, which exceeds the limit of %d"
	}}
}

// AliasLimit rejects operations with more than limit aliased fields (an alias
// other than the field's own name), counting every place a fragment is spread.
// limit <= 0 disables it.
func AliasLimit(limit int) graphql.HandlerExtension {
	return guard{name: "AliasLimit", limit: limit, measure: func(s shape) (int, string) {
		return s.aliases, "operation has %d aliases, which exceeds the limit of %d"
	}}
}

// RootFieldLimit rejects operations with more than limit top-level fields.
// limit <= 0 disables it. (Batched requests — a JSON array of operations — are
// refused by gqlgen's transports already, so one request is one operation.)
func RootFieldLimit(limit int) graphql.HandlerExtension {
	return guard{name: "RootFieldLimit", limit: limit, measure: func(s shape) (int, string) {
		return s.rootFields, "operation has %d top-level fields, which exceeds the limit of %d"
	}}
}

// guard is a limit on one measure of the operation's shape.
type guard struct {
	name    string
	limit   int
	measure func(shape) (value int, format string)
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = guard{}

func (g guard) ExtensionName() string                   { return g.name }
func (g guard) Validate(graphql.ExecutableSchema) error { return nil }

func (g guard) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if g.limit <= 0 {
		return nil
	}
	if v, format := g.measure(shapeOf(opCtx)); v > g.limit {
		return limitError(fmt.Sprintf(format, v, g.limit))
	}
	return nil
}

func limitError(msg string) *gqlerror.Error {
	return AsGQL(apierr.New(apierr.CodeComplexityLimit, msg, nil))
}

// APQ enables automatic persisted queries (Apollo's hash-instead-of-query
// protocol) with a cache bounded to maxBytes of query text (<= 0:
// DefaultAPQCacheBytes); least useful queries are evicted first. A query is
// stored only under its own SHA-256, so no client can make another's hash run
// a different query. Persisted queries meet the same guards as sent ones.
func APQ(maxBytes int) graphql.HandlerExtension {
	if maxBytes <= 0 {
		maxBytes = DefaultAPQCacheBytes
	}
	return apq{extension.AutomaticPersistedQuery{Cache: newQueryCache(uint64(maxBytes))}}
}

// apq gives gqlgen's protocol errors (hash mismatch, bad version) the code
// BAD_USER_INPUT: without a code the error presenter would take them for
// internal errors. PERSISTED_QUERY_NOT_FOUND, which Apollo clients act on,
// keeps its own.
type apq struct {
	extension.AutomaticPersistedQuery
}

func (a apq) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	err := a.AutomaticPersistedQuery.MutateOperationParameters(ctx, params)
	if err != nil {
		if _, ok := err.Extensions["code"]; !ok {
			errcode.Set(err, apierr.CodeBadUserInput)
		}
	}
	return err
}

// queryCache is a graphql.Cache[string] weighted by size. Maintenance runs on
// the caller's goroutine, so the cache starts no goroutine of its own.
type queryCache struct {
	c *otter.Cache[string, string]
}

var _ graphql.Cache[string] = queryCache{}

func newQueryCache(maxBytes uint64) queryCache {
	return queryCache{c: otter.Must(&otter.Options[string, string]{
		MaximumWeight: maxBytes,
		Weigher: func(k, v string) uint32 {
			return uint32(min(len(k)+len(v), math.MaxUint32))
		},
		Executor: func(fn func()) { fn() },
	})}
}

func (q queryCache) Get(_ context.Context, key string) (string, bool) { return q.c.GetIfPresent(key) }
func (q queryCache) Add(_ context.Context, key, value string)         { q.c.Set(key, value) }

// shape is what the guards measure of an operation, with every fragment
// spread expanded where it is used.
type shape struct {
	depth      int // deepest field nesting
	aliases    int // fields with an alias other than their name
	fields     int // fields in all, introspection subtrees left out
	rootFields int // fields at the top level
}

const shapeStatsKey = "qchat.OperationShape"

// shapeOf measures the operation once per request; the guards share it
// through the operation's stats.
func shapeOf(opCtx *graphql.OperationContext) shape {
	if s, ok := opCtx.Stats.GetExtension(shapeStatsKey).(shape); ok {
		return s
	}
	op := opCtx.Operation
	if op == nil && opCtx.Doc != nil {
		op = opCtx.Doc.Operations.ForName(opCtx.OperationName)
	}
	var s shape
	if op != nil {
		m := measurer{doc: opCtx.Doc, fragments: map[string]*shape{}}
		s = m.selectionSet(op.SelectionSet)
	}
	opCtx.Stats.SetExtension(shapeStatsKey, s)
	return s
}

// measurer walks a selection set. Each fragment is measured once and reused
// wherever it is spread, so the walk is linear in the document even when the
// expanded operation is exponentially large (the sums saturate).
type measurer struct {
	doc       *ast.QueryDocument
	fragments map[string]*shape
}

func (m *measurer) selectionSet(set ast.SelectionSet) shape {
	var s shape
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			s.rootFields = satAdd(s.rootFields, 1)
			if sel.Alias != "" && sel.Alias != sel.Name {
				s.aliases = satAdd(s.aliases, 1)
			}
			switch sel.Name {
			case "__schema", "__type":
				s.depth = max(s.depth, 1)
				continue
			case "__typename":
				// Free in the complexity limit (see ComplexityLimit), so not
				// counted by its prefilter either.
				s.depth = max(s.depth, 1)
				continue
			}
			child := m.selectionSet(sel.SelectionSet)
			s.depth = max(s.depth, child.depth+1)
			s.aliases = satAdd(s.aliases, child.aliases)
			s.fields = satAdd(s.fields, satAdd(child.fields, 1))
		case *ast.InlineFragment:
			s = merge(s, m.selectionSet(sel.SelectionSet))
		case *ast.FragmentSpread:
			s = merge(s, m.fragment(sel))
		}
	}
	return s
}

func (m *measurer) fragment(spread *ast.FragmentSpread) shape {
	if f, ok := m.fragments[spread.Name]; ok {
		// While a fragment is being measured its entry is empty, so a cycle
		// (which validation has already refused) counts as nothing and the
		// walk stays finite regardless.
		return *f
	}
	def := spread.Definition
	if m.doc != nil {
		if d := m.doc.Fragments.ForName(spread.Name); d != nil {
			def = d
		}
	}
	f := &shape{}
	m.fragments[spread.Name] = f
	if def != nil {
		*f = m.selectionSet(def.SelectionSet)
	}
	return *f
}

// merge adds the selections of a fragment to those of its enclosing set:
// side by side, so depths take the maximum and counts add up.
func merge(a, b shape) shape {
	return shape{
		depth:      max(a.depth, b.depth),
		aliases:    satAdd(a.aliases, b.aliases),
		fields:     satAdd(a.fields, b.fields),
		rootFields: satAdd(a.rootFields, b.rootFields),
	}
}

func satAdd(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}
