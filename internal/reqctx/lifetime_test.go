package reqctx

import (
	"context"
	"slices"
	"testing"
)

func TestLifetime(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime bool
		detach   bool
		// ran is what has run when the handler has returned; all is after end.
		ran, all []string
	}{
		{"no lifetime", false, false, []string{"inner", "outer"}, []string{"inner", "outer"}},
		{"not detached", true, false, []string{"inner", "outer"}, []string{"inner", "outer"}},
		{"detached", true, true, nil, []string{"inner", "outer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.lifetime {
				ctx = WithLifetime(ctx)
			}
			var ran []string
			var end func()
			// Two middlewares around a handler, each acting at the end.
			func() {
				func() {
					if tc.detach {
						var ok bool
						if end, ok = Detach(ctx); !ok {
							t.Fatal("Detach refused")
						}
						if _, again := Detach(ctx); again {
							t.Fatal("Detach accepted twice")
						}
					}
					AtEnd(ctx, func() { ran = append(ran, "inner") })
				}()
				AtEnd(ctx, func() { ran = append(ran, "outer") })
			}()
			if !slices.Equal(ran, tc.ran) {
				t.Fatalf("after the handler: %v, want %v", ran, tc.ran)
			}
			if end != nil {
				end()
				end() // once
			}
			if !slices.Equal(ran, tc.all) {
				t.Fatalf("at the end: %v, want %v", ran, tc.all)
			}
			if !tc.lifetime {
				if _, ok := Detach(ctx); ok {
					t.Fatal("Detach without a lifetime")
				}
			}
		})
	}
}
