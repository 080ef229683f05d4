package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"testing"
)

// TestImportsRunOneWay checks the project's real imports (not its tests').
func TestImportsRunOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Deps", Module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel, ok := Rel(p.ImportPath)
		if !ok {
			continue
		}
		pkg := Package{Path: rel}
		for _, d := range p.Deps {
			if r, ok := Rel(d); ok {
				pkg.Deps = append(pkg.Deps, r)
			}
		}
		pkgs = append(pkgs, pkg)
	}
	// Every layered package exists: a rename must update the layers.
	for _, l := range Layers {
		for _, want := range l {
			if !slices.ContainsFunc(pkgs, func(p Package) bool { return p.Path == want }) {
				t.Errorf("layer package %q not found", want)
			}
		}
	}
	for _, v := range Violations(pkgs) {
		t.Error(v)
	}
}

// TestViolationsAreFound shows the check failing on each kind of wrong import.
func TestViolationsAreFound(t *testing.T) {
	tests := []struct {
		name string
		pkg  Package
		bad  bool
	}{
		{"resolvers import the server", Package{"resolvers", []string{"internal/server"}}, true},
		{"resolvers implement graph's interfaces", Package{"resolvers", []string{"graph"}}, false},
		{"the domain imports graph", Package{"internal/chat", []string{"graph"}}, true},
		{"the domain imports resolvers", Package{"internal/chat", []string{"resolvers"}}, true},
		{"db imports the domain", Package{"db", []string{"internal/chat"}}, true},
		{"the server imports graph", Package{"internal/server", []string{"graph", "resolvers"}}, false},
		{"resolvers import the domain and db", Package{"resolvers", []string{"internal/chat", "db", "models"}}, false},
		{"the middleware imports graph", Package{"internal/middleware", []string{"graph"}}, true},
		{"the middleware imports db", Package{"internal/middleware", []string{"db"}}, false},
		{"the test harness wires the server", Package{"internal/qchattest", []string{"internal/server"}}, false},
		{"start-up builds the server", Package{"internal/app", []string{"internal/server", "resolvers", "internal/chat"}}, false},
		{"the server imports start-up", Package{"internal/server", []string{"internal/app"}}, true},
		{"the SDK imports models", Package{"client", []string{"pqcrypto", "models"}}, true},
		{"the CLI imports the SDK", Package{"cmd/qchat", []string{"client", "pqcrypto"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(Violations([]Package{tt.pkg})) > 0; got != tt.bad {
				t.Errorf("violation = %v, want %v", got, tt.bad)
			}
		})
	}
}
