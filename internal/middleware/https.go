package middleware

import (
	"net"
	"net/http"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/clientip"
)

// HTTPSRedirect sends plain-HTTP requests to the same URL over HTTPS when
// enabled (production). Whether a request is plain comes from clientip, i.e.
// from X-Forwarded-Proto only when a trusted proxy wrote it; unrolled/secure's
// own redirect is not used because it believes that header from anyone.
//
// GET and HEAD get 301, which browsers and caches remember; other methods get
// 308 so that a client retrying the POST keeps its method and body. exempt
// (may be nil) names paths that must answer over plain HTTP, such as health
// probes that a load balancer sends straight to the instance.
func HTTPSRedirect(enabled bool, exempt func(path string) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if !enabled {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if clientip.IsHTTPS(r) || (exempt != nil && exempt(r.URL.Path)) {
				next.ServeHTTP(w, r)
				return
			}
			if r.Host == "" {
				writeError(w, http.StatusBadRequest, "HTTPS required", map[string]any{"code": apierr.CodeBadUserInput})
				return
			}
			status := http.StatusPermanentRedirect
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				status = http.StatusMovedPermanently
			}
			target := "https://" + httpsHost(r.Host) + r.URL.RequestURI()
			http.Redirect(w, r, target, status)
		})
	}
}

// httpsHost drops an explicit :80, which would point the HTTPS URL at the
// plain-HTTP port; any other port is kept, as the operator chose it.
func httpsHost(host string) string {
	if h, port, err := net.SplitHostPort(host); err == nil && port == "80" {
		if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
			return "[" + h + "]"
		}
		return h
	}
	return host
}
