package web

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/qchat/qchat/graph"
)

// pageSizeOf names, for each list operation of the library, its entry in
// PAGE_SIZE (lib/src/api/pages.ts), the page size it is priced at.
var pageSizeOf = map[string]string{
	"RoomMembers":    "recipients",
	"RoomMemberList": "members",
	"MyRooms":        "rooms",
	"RoomMessages":   "messages",
	"DirectMessages": "messages",
	"Conversations":  "conversations",
	"RoomDocuments":  "documents",
}

// pageSizes reads PAGE_SIZE from pages.ts, so that the sizes priced here are
// the ones the library documents.
func pageSizes(t *testing.T) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("lib", "src", "api", "pages.ts"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(\w+): (\d+),`).FindAllStringSubmatch(string(b), -1) {
		n, err := strconv.Atoi(m[2])
		if err != nil {
			t.Fatal(err)
		}
		out[m[1]] = n
	}
	return out
}

// TestOperationsWithinLimits prices every operation of the TypeScript library
// (lib/src/api/operations) with the server's own cost functions and guards'
// defaults, so that a query the library ships cannot be one the server
// refuses with COMPLEXITY_LIMIT_EXCEEDED. It needs no Node.js.
func TestOperationsWithinLimits(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("lib", "src", "api", "operations", "*.graphql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no operations found: %v", err)
	}
	var src strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.WriteString(withTypename(string(b)))
		src.WriteString("\n")
	}
	cfg := graph.Config{}
	graph.SetComplexity(&cfg.Complexity)
	es := graph.NewExecutableSchema(cfg)
	doc, errs := gqlparser.LoadQuery(es.Schema(), src.String())
	if len(errs) > 0 {
		t.Fatalf("the library's operations do not validate against graph/*.graphqls: %v", errs)
	}
	if len(doc.Operations) < 20 {
		t.Fatalf("found %d operations, expected the library's whole set", len(doc.Operations))
	}
	sizes := pageSizes(t)
	for _, op := range doc.Operations {
		vars := map[string]any{}
		for _, v := range op.VariableDefinitions {
			if v.Variable != "first" {
				continue
			}
			n, ok := sizes[pageSizeOf[op.Name]]
			if !ok {
				t.Fatalf("%s takes first: name its PAGE_SIZE entry in pageSizeOf", op.Name)
			}
			vars["first"] = n
		}
		cost := complexity.Calculate(context.Background(), es, op, vars)
		depth := depthOf(op.SelectionSet)
		t.Logf("%-16s cost %4d, depth %2d", op.Name, cost, depth)
		if cost > graph.DefaultComplexityLimit {
			t.Errorf("%s costs %d at first=%v, over the server's default limit %d", op.Name, cost, vars["first"], graph.DefaultComplexityLimit)
		}
		if depth > graph.DefaultDepthLimit {
			t.Errorf("%s is %d levels deep, over the server's default limit %d", op.Name, depth, graph.DefaultDepthLimit)
		}
	}
}

// withTypename adds __typename to every selection set but an operation's
// root, as Apollo Client does to every document it sends (its cache keys
// objects by type): the server prices the operation as sent. The operations'
// files are formatted with one opening brace per line end.
func withTypename(src string) string {
	var out strings.Builder
	for _, line := range strings.Split(src, "\n") {
		out.WriteString(line)
		out.WriteString("\n")
		t := strings.TrimSpace(line)
		if strings.HasSuffix(t, "{") && !strings.HasPrefix(t, "query ") && !strings.HasPrefix(t, "mutation ") && !strings.HasPrefix(t, "subscription ") {
			out.WriteString("__typename\n")
		}
	}
	return out.String()
}

// depthOf counts nested fields, fragments adding no level of their own, as
// the server's DepthLimit does.
func depthOf(set ast.SelectionSet) int {
	deepest := 0
	for _, s := range set {
		d := 0
		switch s := s.(type) {
		case *ast.Field:
			d = 1 + depthOf(s.SelectionSet)
		case *ast.FragmentSpread:
			d = depthOf(s.Definition.SelectionSet)
		case *ast.InlineFragment:
			d = depthOf(s.SelectionSet)
		}
		deepest = max(deepest, d)
	}
	return deepest
}
