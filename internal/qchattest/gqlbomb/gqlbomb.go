// Package gqlbomb builds GraphQL documents made to be expensive to validate:
// the shapes that make gqlparser's rules (overlapping fields above all) do
// quadratic or worse work. The graph limits, the handler tests and the HTTP
// fuzz target share them. It imports nothing of QChat.
package gqlbomb

import (
	"fmt"
	"math"
	"strings"
)

// Shape is one kind of bomb; Build(n) makes it with about n repetitions
// (fields, fragments, levels): the document grows linearly with n, so a
// caller can grow it step by step up to a body limit.
type Shape struct {
	Name  string
	Build func(n int) string
}

// Shapes are every kind of bomb, each valid against QChat's schema apart
// from its size (or deliberately conflicting, where that is the attack).
var Shapes = []Shape{
	{"same field repeated", func(n int) string { return "{ me { " + repeat("id ", n) + "} }" }},
	{"aliases", func(n int) string { return "{ me { " + numbered("a%d: id ", n) + "} }" }},
	{"conflicting aliases", func(n int) string {
		return "{ me { " + repeat("x: id x: username ", (n+1)/2) + "} }"
	}},
	{"same alias on root fields", func(n int) string { return "{ " + repeat("x: me { id } ", n) + "}" }},
	{"fragment chain", fragmentChain},
	{"fragment spread repeatedly", func(n int) string {
		return "{ me { " + repeat("...F ", n) + "} } fragment F on User { id username }"
	}},
	{"many fragments spread once each", func(n int) string {
		var b strings.Builder
		b.WriteString("{ me { ")
		for i := range n {
			fmt.Fprintf(&b, "...F%d ", i)
		}
		b.WriteString("} }")
		for i := range n {
			fmt.Fprintf(&b, " fragment F%d on User { id }", i)
		}
		return b.String()
	}},
	{"nested inline fragments", func(n int) string {
		// graphql-php's attack (200 outer inline fragments of 100 inner
		// ones each at n = 20,000): outer × outer/2 ≈ n, all the same field.
		outer := max(int(math.Sqrt(float64(2*n))), 1)
		inner := repeat("... on User { id } ", max(outer/2, 1))
		return "{ me { " + repeat("... on User { "+inner+"} ", outer) + "} }"
	}},
	{"deep inline fragments", func(n int) string {
		return "{ me { " + repeat("... on User { ", n) + "id" + repeat(" }", n) + " } }"
	}},
	{"directives", func(n int) string {
		return "{ me { id " + repeat("@skip(if: false) ", n) + "} }"
	}},
	{"same field with selections", func(n int) string {
		return "{ " + repeat("me { ...F } ", n) + "} fragment F on User { id publicKey { key } }"
	}},
	{"same field with fields and spread", func(n int) string {
		return "{ " + repeat("me { id ...F } ", n) + "} fragment F on User { id username }"
	}},
	{"same field ten times, wide", func(n int) string {
		// As many merges as the same-name limit allows, each of n/10
		// distinct sub-fields: every pair of the ten compares them all.
		return "{ " + repeat("me { "+numbered("a%d: id ", max(n/10, 1))+"} ", 10) + "}"
	}},
	{"repeated at every level", func(n int) string {
		// Each pair of same-named fields has its sub-selections compared
		// pair by pair: r^2 at every level, multiplied down five levels,
		// with r^5 ≈ n.
		r := max(int(math.Pow(float64(n), 0.2)), 1)
		q := repeat("id ", r)
		for _, f := range []string{"node", "edges", "messages(first: 1)"} {
			q = repeat(f+" { "+q+"} ", r)
		}
		return `{ ` + repeat(`room(id: "r") { `+q+"} ", r) + "}"
	}},
	{"repeated at every level through fragments", func(n int) string {
		return `{ ` + repeat(`room(id: "r") { ...R } `, n) + "}" +
			" fragment R on Room { " + repeat("messages(first: 1) { ...C } ", n) + "}" +
			" fragment C on MessageConnection { " + repeat("edges { ...E } ", n) + "}" +
			" fragment E on MessageEdge { " + repeat("node { ...M } ", n) + "}" +
			" fragment M on Message { " + repeat("id ", n) + "}"
	}},
	{"deep nesting", func(n int) string {
		// room → messages → edges → node → room → …
		return `{ room(id: "r") { ` + repeat("messages(first: 1) { edges { node { room { ", n) +
			"id" + repeat(" } } } }", n) + " } }"
	}},
	{"deep list argument", func(n int) string {
		return "{ users(ids: " + repeat("[", n) + `"a"` + repeat("]", n) + ") { id } }"
	}},
	{"many variables", func(n int) string {
		var b strings.Builder
		b.WriteString("query(")
		for i := range n {
			fmt.Fprintf(&b, "$v%d: ID ", i)
		}
		b.WriteString(") { me { id } }")
		return b.String()
	}},
	{"many operations", func(n int) string { return numbered("query Q%d { me { id } } ", n) }},
}

// fragmentChain is `{ me { ...F0 } } fragment F0 on User { id ...F1 } …`,
// the 142 KB, two-minute input of issue 14 at n = 4000.
func fragmentChain(n int) string {
	var b strings.Builder
	b.WriteString("{ me { ...F0 } }")
	for i := range n {
		fmt.Fprintf(&b, " fragment F%d on User { id", i)
		if i+1 < n {
			fmt.Fprintf(&b, " ...F%d", i+1)
		}
		b.WriteString(" }")
	}
	return b.String()
}

func repeat(s string, n int) string { return strings.Repeat(s, max(n, 0)) }

func numbered(format string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, format, i)
	}
	return b.String()
}
