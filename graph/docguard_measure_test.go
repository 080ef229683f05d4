package graph

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/qchat/qchat/internal/qchattest/gqlbomb"
)

// largestAccepted finds the largest size of shape that the default
// document limits let through to validation, or 0.
func largestAccepted(sh gqlbomb.Shape, l DocumentLimits) int {
	accepted := func(n int) bool {
		q := sh.Build(n)
		return len(q) <= 1<<20 && checkDocument(q, l) == nil && parses(q, l.Tokens)
	}
	lo, hi := 0, 1
	for accepted(hi) {
		lo, hi = hi, hi*2
		if hi > 1<<20 {
			return lo
		}
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if accepted(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

func parses(q string, tokens int) bool {
	_, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q}, tokens)
	return err == nil
}

func TestMeasureBombs(t *testing.T) {
	if os.Getenv("QCHAT_MEASURE") == "" {
		t.Skip("QCHAT_MEASURE not set")
	}
	schema := limitsSchema().Schema()
	l := DocumentLimits{}.withDefaults()
	for _, sh := range gqlbomb.Shapes {
		n := largestAccepted(sh, l)
		q := sh.Build(n)
		best := time.Hour
		var nerr int
		for range 5 {
			start := time.Now()
			doc, err := parser.ParseQuery(&ast.Source{Input: q})
			if err == nil {
				nerr = len(validator.Validate(schema, doc))
			}
			best = min(best, time.Since(start))
		}
		t.Logf("%-42s largest accepted n=%-6d bytes=%-7d parse+validate=%-12v errs=%d", sh.Name, n, len(q), best, nerr)
	}
}

// TestMeasureRealDocuments prints, for each document clients really send,
// the smallest value of each limit that lets it through.
func TestMeasureRealDocuments(t *testing.T) {
	if os.Getenv("QCHAT_MEASURE") == "" {
		t.Skip("QCHAT_MEASURE not set")
	}
	knobs := map[string]func(*DocumentLimits) *int{
		"tokens":     func(l *DocumentLimits) *int { return &l.Tokens },
		"fields":     func(l *DocumentLimits) *int { return &l.Fields },
		"expansions": func(l *DocumentLimits) *int { return &l.Expansions },
		"setFields":  func(l *DocumentLimits) *int { return &l.SelectionFields },
		"sameName":   func(l *DocumentLimits) *int { return &l.SameName },
		"fragments":  func(l *DocumentLimits) *int { return &l.Fragments },
		"spreads":    func(l *DocumentLimits) *int { return &l.Spreads },
		"directives": func(l *DocumentLimits) *int { return &l.Directives },
		"nesting":    func(l *DocumentLimits) *int { return &l.Nesting },
		"variables":  func(l *DocumentLimits) *int { return &l.Variables },
	}
	for name, q := range realDocuments(t) {
		line := name + ":"
		for _, k := range []string{"tokens", "fields", "expansions", "setFields", "sameName", "fragments", "spreads", "directives", "nesting", "variables"} {
			v := 1
			for ; v < 1<<20; v++ {
				l := DocumentLimits{}.withDefaults()
				*knobs[k](&l) = v
				if checkDocument(q, l) == nil {
					break
				}
			}
			line += " " + k + "=" + strconv.Itoa(v)
		}
		t.Log(line)
	}
}
