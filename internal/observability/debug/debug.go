// Package debug serves Go's runtime profiles (net/http/pprof) on a listener of
// their own, as ardanlabs/service does: an operator reaches them on a private
// address, and they never share the public API's port, middleware or limits.
package debug

import (
	"net/http"
	"net/http/pprof"
)

// Handler returns the /debug/pprof/ endpoints on a fresh mux, so nothing is
// registered on http.DefaultServeMux.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
