// Package archtest enforces the direction of the project's imports: server →
// graph → resolvers → domain (internal/chat) → db / broker / presence, with
// nothing reaching back up, and a Go SDK that imports no server package. Its
// test lists the real imports with `go list` and fails on a violation.
package archtest

import (
	"fmt"
	"slices"
	"strings"
)

// Module is the project's module path.
const Module = "github.com/qchat/qchat"

// Layers are the layered packages, top first, relative to Module ("" is the
// main package).
var Layers = [][]string{
	{"", "internal/app"}, // main and the one start-up path it shares with the tests
	{"internal/server"},
	{"graph"},
	{"resolvers"},
	{"internal/chat"},
	{"db", "internal/broker", "internal/presence"},
}

// Inverted are the upward imports gqlgen's design asks for: the resolvers
// implement the interfaces generated in graph (ResolverRoot and one per
// type), so resolvers import graph although graph's handler calls them.
// graph itself never imports resolvers or the domain.
var Inverted = [][2]string{{"resolvers", "graph"}}

// Wiring packages build the whole application (tests' harnesses): they may
// import any layer.
var Wiring = []string{"internal/qchattest", "e2e"}

// SDK packages are what a client program links: they may import nothing of
// the project but each other and pqcrypto.
var SDK = []string{"client", "cmd/qchat", "cmd/qchat-load", "pqcrypto"}

// Package is a package and every project package it depends on, directly or
// not, both relative to Module.
type Package struct {
	Path string
	Deps []string
}

// Rel returns a full import path relative to Module, and whether it is one
// of the project's.
func Rel(path string) (string, bool) {
	if path == Module {
		return "", true
	}
	rest, ok := strings.CutPrefix(path, Module+"/")
	return rest, ok
}

func layerOf(p string) int {
	for i, l := range Layers {
		if slices.Contains(l, p) {
			return i
		}
	}
	return -1
}

func under(p string, roots []string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// Violations lists the imports that break the order.
func Violations(pkgs []Package) []string {
	var out []string
	for _, p := range pkgs {
		own := layerOf(p.Path)
		for _, d := range p.Deps {
			dl := layerOf(d)
			switch {
			case under(p.Path, SDK) && !under(d, SDK):
				out = append(out, fmt.Sprintf("%q (the SDK) imports the server's %q", p.Path, d))
			case dl < 0 || dl == len(Layers)-1:
				// Not layered, or the bottom layer: anyone may import it.
			case slices.Contains(Inverted, [2]string{p.Path, d}):
			case own >= 0 && dl < own:
				out = append(out, fmt.Sprintf("%q imports %q, a layer above it", p.Path, d))
			case own < 0 && !under(p.Path, Wiring) && p.Path != "":
				out = append(out, fmt.Sprintf("%q (outside the layers) imports %q", p.Path, d))
			}
		}
	}
	return out
}
