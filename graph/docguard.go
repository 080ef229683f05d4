package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/qchat/qchat/internal/apierr"
)

// DocumentLimits bound the size of a query document before gqlparser
// validates it. Validation runs before any operation-context guard (depth,
// aliases, complexity) and costs more than linear time in some shapes: its
// "overlapping fields can be merged" rule compares every pair of fields that
// share a response name, across fragments and down their selections, so a
// 24 KB `{ me { id id id … } }` cost 40 s of CPU. Each limit caps one
// ingredient of those shapes; the defaults leave every query of the web app
// and the SDK, and the introspection queries of GraphiQL and Apollo, far
// below them. A zero field takes its default; a negative one disables that
// check (for tests).
type DocumentLimits struct {
	// Tokens caps the lexer tokens of the document (gqlparser's own
	// ParserTokenLimit), which bounds the parse itself and the work every
	// other count below can add up to.
	Tokens int
	// Fields caps the fields of the document with every fragment spread
	// expanded where it is used. Every field costs at least 1 in
	// the complexity limit, so an operation over DefaultComplexityLimit fields
	// could never run anyway.
	Fields int
	// Expansions caps the inline fragments and fragment spreads of the
	// document, each fragment counted where it is spread: fragments of
	// nothing but spreads add no field, yet expand all the same.
	Expansions int
	// SelectionFields caps the fields merged into one selection set,
	// counting those that inline fragments and fragment spreads bring in.
	SelectionFields int
	// SameName caps the fields merged into one key of the response: those of
	// a selection set sharing a response name, and beneath them the
	// same-named fields of their sub-selections. Validation compares each
	// pair of them, and each pair's sub-selections against each other.
	SameName int
	// Fragments caps fragment definitions; Spreads fragment spreads written
	// in the document; Directives directives written in the document.
	Fragments  int
	Spreads    int
	Directives int
	// Variables caps the variables of one operation: validation reports
	// each unused one, so thousands of them would be an error list thousands
	// long.
	Variables int
	// Nesting caps how deep selection sets nest, counting fields, inline
	// fragments and each step of a fragment chain alike.
	Nesting int
}

// Defaults of the document limits, chosen by measuring gqlparser's validation
// of the bomb shapes in internal/qchattest/gqlbomb on the real schema
// (QCHAT_MEASURE=1 go test -run TestMeasure ./graph): the largest input of
// every shape that passes them parses and validates in under 4 ms on one
// core, where unbounded the same shapes took seconds to minutes. The busiest
// legitimate documents stay well below every limit: Apollo's introspection
// query has 180 tokens, 226 expanded fields, 10 expansions, 9 fields in a
// set, 3 fragments, 8 spreads and 18 levels of nesting; the SDK's whole
// operations file (51 definitions, sent one operation at a time) 1,204
// tokens, 464 fields, 42 spreads and 11 fields in a set; a field is merged
// at most 3 times (__typename, asked for by fragments and their spreader).
// The same-name cap is 32, not the 10 that would suffice for our own
// clients: Apollo apps colocate fragments, each asking for id and
// __typename, and a screen may spread a dozen on one object; at 32 the
// worst accepted shape still validates in about 2.5 ms.
const (
	DefaultDocumentTokens     = 10_000
	DefaultDocumentFields     = DefaultComplexityLimit
	DefaultFragmentExpansions = 2000
	DefaultSelectionFields    = 200
	DefaultSameNameFields     = 32
	DefaultDocumentFragments  = 100
	DefaultDocumentSpreads    = 500
	DefaultDocumentDirectives = 100
	DefaultDocumentNesting    = 40
	DefaultDocumentVariables  = 100
)

func (l DocumentLimits) withDefaults() DocumentLimits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.Tokens, DefaultDocumentTokens)
	def(&l.Fields, DefaultDocumentFields)
	def(&l.Expansions, DefaultFragmentExpansions)
	def(&l.SelectionFields, DefaultSelectionFields)
	def(&l.SameName, DefaultSameNameFields)
	def(&l.Fragments, DefaultDocumentFragments)
	def(&l.Spreads, DefaultDocumentSpreads)
	def(&l.Directives, DefaultDocumentDirectives)
	def(&l.Nesting, DefaultDocumentNesting)
	def(&l.Variables, DefaultDocumentVariables)
	return l
}

// documentGuard is an OperationParameterMutator: gqlgen runs those before it
// parses and validates the query (executor.CreateOperationContext), in the
// order they were added, so it must come after APQ, which puts the query
// text in place. A query already in the handler's parsed-document cache was
// checked and validated before and is not parsed again here.
type documentGuard struct {
	limits DocumentLimits
	cache  graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = documentGuard{}

func (documentGuard) ExtensionName() string                   { return "DocumentLimits" }
func (documentGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (g documentGuard) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if params.Query == "" {
		return nil // gqlgen answers that itself
	}
	if g.cache != nil {
		if _, ok := g.cache.Get(ctx, params.Query); ok {
			return nil
		}
	}
	return checkDocument(params.Query, g.limits)
}

// checkDocument parses query within the token limit and measures it. A parse
// error is left for gqlgen to report (it parses again, with the same limit),
// so the client sees the usual GRAPHQL_PARSE_FAILED.
func checkDocument(query string, l DocumentLimits) *gqlerror.Error {
	src := &ast.Source{Input: query}
	doc, err := parser.ParseQueryWithTokenLimit(src, max(l.Tokens, 0))
	if err != nil {
		if l.Tokens > 0 && tooManyTokens(src, l.Tokens) {
			return docLimitError("tokens", l.Tokens)
		}
		return nil
	}
	return measureDocument(doc, l)
}

// tooManyTokens tells the token limit from other parse errors, which gqlgen
// reports itself, without relying on the wording of the parser's message.
func tooManyTokens(src *ast.Source, limit int) bool {
	lex := lexer.New(src)
	for range limit + 1 {
		tok, err := lex.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			return false
		}
	}
	return true
}

// measureDocument walks doc in two passes, each stopping at the first limit
// exceeded. The first summarises each fragment once and reuses the summary
// wherever it is spread, so it costs the document's size whatever the
// expanded operation would be; it bounds the expanded operation. The second
// walks the operations expanded, which that bound now makes cheap, merging
// fields by response path as the "overlapping fields" rule does.
func measureDocument(doc *ast.QueryDocument, l DocumentLimits) *gqlerror.Error {
	w := docWalker{l: l, byName: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)), frags: map[string]*setSummary{}}
	if over(l.Fragments, len(doc.Fragments)) {
		return w.fail("fragment definitions", l.Fragments)
	}
	for _, f := range doc.Fragments {
		w.byName[f.Name] = f
		if err := w.directives(f.Directives); err != nil {
			return err
		}
	}
	for _, op := range doc.Operations {
		if err := w.directives(op.Directives); err != nil {
			return err
		}
		if over(l.Variables, len(op.VariableDefinitions)) {
			return w.fail("variables in one operation", l.Variables)
		}
		for _, v := range op.VariableDefinitions {
			if err := w.directives(v.Directives); err != nil {
				return err
			}
		}
		s, err := w.set(op.SelectionSet, 1)
		if err != nil {
			return err
		}
		w.fields = satAdd(w.fields, s.fields)
		w.expansions = satAdd(w.expansions, s.expansions)
		if over(w.l.Fields, w.fields) {
			return w.fail(expandedFields, w.l.Fields)
		}
		if over(w.l.Expansions, w.expansions) {
			return w.fail(expansions, w.l.Expansions)
		}
	}
	// Fragments no operation spreads are validated too.
	for _, f := range doc.Fragments {
		if _, err := w.fragment(f.Name, 1); err != nil {
			return err
		}
	}
	if w.l.SameName <= 0 {
		return nil
	}
	for _, op := range doc.Operations {
		if err := w.merge(op.SelectionSet, &responseNode{}); err != nil {
			return err
		}
	}
	return nil
}

// setSummary is what a selection set contributes where it is merged into an
// enclosing one.
type setSummary struct {
	direct     int // fields merged into the set itself, through fragments
	fields     int // fields beneath it, expanded (saturating)
	expansions int // inline fragments and spreads beneath it, expanded
	nesting    int
}

type docWalker struct {
	l           DocumentLimits
	byName      map[string]*ast.FragmentDefinition
	frags       map[string]*setSummary
	fields      int // of the operations walked, expanded
	expansions  int
	spreads     int
	nDirectives int
}

const (
	expandedFields = "fields (each fragment counted where it is spread)"
	expansions     = "inline fragments and fragment spreads (each fragment counted where it is spread)"
)

func over(limit, v int) bool { return limit > 0 && v > limit }

// fail reports the first limit exceeded. The walk stops there, so the
// message names the limit rather than a total it never finished counting.
func (w *docWalker) fail(what string, limit int) *gqlerror.Error { return docLimitError(what, limit) }

func docLimitError(what string, limit int) *gqlerror.Error {
	err := gqlerror.Errorf("query document exceeds the limit of %d %s", limit, what)
	code := errcode.ValidationFailed
	if what == expandedFields {
		// Every field costs at least 1, so no operation this large could
		// meet the complexity limit.
		code = apierr.CodeComplexityLimit
	}
	errcode.Set(err, code)
	return err
}

func (w *docWalker) directives(list ast.DirectiveList) *gqlerror.Error {
	w.nDirectives += len(list)
	if over(w.l.Directives, w.nDirectives) {
		return w.fail("directives", w.l.Directives)
	}
	return nil
}

// set summarises a selection set at the given nesting and checks the limits
// that apply to it.
func (w *docWalker) set(set ast.SelectionSet, nesting int) (*setSummary, *gqlerror.Error) {
	if over(w.l.Nesting, nesting) {
		return nil, w.fail("levels of nesting", w.l.Nesting)
	}
	s := &setSummary{nesting: nesting}
	for _, sel := range set {
		var inner *setSummary
		var err *gqlerror.Error
		switch sel := sel.(type) {
		case *ast.Field:
			if err := w.directives(sel.Directives); err != nil {
				return nil, err
			}
			s.direct++
			s.fields = satAdd(s.fields, 1)
			if len(sel.SelectionSet) > 0 {
				sub, err := w.set(sel.SelectionSet, nesting+1)
				if err != nil {
					return nil, err
				}
				s.fields = satAdd(s.fields, sub.fields)
				s.expansions = satAdd(s.expansions, sub.expansions)
				s.nesting = max(s.nesting, sub.nesting)
			}
		case *ast.InlineFragment:
			if err := w.directives(sel.Directives); err != nil {
				return nil, err
			}
			inner, err = w.set(sel.SelectionSet, nesting+1)
		case *ast.FragmentSpread:
			if err := w.directives(sel.Directives); err != nil {
				return nil, err
			}
			w.spreads++
			if over(w.l.Spreads, w.spreads) {
				return nil, w.fail("fragment spreads", w.l.Spreads)
			}
			inner, err = w.fragment(sel.Name, nesting+1)
		}
		if err != nil {
			return nil, err
		}
		if inner != nil { // nil: an unknown fragment, which validation reports
			s.direct += inner.direct
			s.fields = satAdd(s.fields, inner.fields)
			s.expansions = satAdd(s.expansions, satAdd(inner.expansions, 1))
			s.nesting = max(s.nesting, inner.nesting)
		}
		switch {
		case over(w.l.SelectionFields, s.direct):
			return nil, w.fail("fields in one selection set (fragments included)", w.l.SelectionFields)
		case over(w.l.Fields, s.fields):
			return nil, w.fail(expandedFields, w.l.Fields)
		case over(w.l.Expansions, s.expansions):
			return nil, w.fail(expansions, w.l.Expansions)
		}
	}
	return s, nil
}

// fragment summarises a fragment once; nesting is where it is spread. A
// fragment's summary is measured from its own top, as its depth below a
// spread is the same wherever it is spread.
func (w *docWalker) fragment(name string, nesting int) (*setSummary, *gqlerror.Error) {
	s, ok := w.frags[name]
	if !ok {
		def := w.byName[name]
		if def == nil {
			return nil, nil
		}
		// A cycle (which validation refuses) meets this empty entry and stops.
		w.frags[name] = &setSummary{}
		var err *gqlerror.Error
		if s, err = w.set(def.SelectionSet, 1); err != nil {
			return nil, err
		}
		w.frags[name] = s
	}
	c := *s
	c.nesting += nesting - 1
	if over(w.l.Nesting, c.nesting) {
		return nil, w.fail("levels of nesting", w.l.Nesting)
	}
	return &c, nil
}

// responseNode is one key of the response, with the fields merged into it.
type responseNode struct {
	fields   int
	children map[string]*responseNode
}

// merge walks set expanded, as the response would be built, and counts the
// fields merged into each response key. Validation compares every pair of
// such fields, and every pair of their sub-fields in turn, so the work grows
// with the square of these counts down the levels: n same-named fields
// nested five deep is n^10 comparisons. The first pass bounded the expanded
// walk by Fields and Expansions; the spreads seen on the way down stop a cycle.
func (w *docWalker) merge(set ast.SelectionSet, at *responseNode) *gqlerror.Error {
	return w.mergeInto(set, at, map[string]bool{})
}

func (w *docWalker) mergeInto(set ast.SelectionSet, at *responseNode, spreading map[string]bool) *gqlerror.Error {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			key := sel.Alias
			if key == "" {
				key = sel.Name
			}
			if at.children == nil {
				at.children = map[string]*responseNode{}
			}
			child := at.children[key]
			if child == nil {
				child = &responseNode{}
				at.children[key] = child
			}
			child.fields++
			if over(w.l.SameName, child.fields) {
				return w.fail(fmt.Sprintf("fields answering the same response key (%q)", key), w.l.SameName)
			}
			if err := w.mergeInto(sel.SelectionSet, child, spreading); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := w.mergeInto(sel.SelectionSet, at, spreading); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			def := w.byName[sel.Name]
			if def == nil || spreading[sel.Name] {
				continue
			}
			spreading[sel.Name] = true
			err := w.mergeInto(def.SelectionSet, at, spreading)
			delete(spreading, sel.Name)
			if err != nil {
				return err
			}
		}
	}
	return nil
}
