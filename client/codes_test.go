package client_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/apierr"
)

// TestCodesAreTheServers proves that the SDK's Code constants are exactly the
// server's contract codes: the SDK cannot import the server (it is public), so
// the list is repeated, and a code added, renamed or removed on either side
// fails here. The constants are read from the source, so a new one in
// client.go counts without this test naming it.
func TestCodesAreTheServers(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "client.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sdk []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Fatalf("%s is not a string literal", name.Name)
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			sdk = append(sdk, v)
		}
		return true
	})
	server := slices.Clone(apierr.Codes)
	slices.Sort(sdk)
	slices.Sort(server)
	if !slices.Equal(sdk, server) {
		t.Errorf("client codes %v\nserver codes %v", sdk, server)
	}
}
