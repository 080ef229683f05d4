package middleware

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"

	"github.com/unrolled/secure"

	"github.com/qchat/qchat/internal/clientip"
)

// APIContentSecurityPolicy is the policy of every API response: JSON needs no
// script, style or frame, so anything a browser might be tricked into rendering
// from it is confined to our own origin and cannot be framed.
const APIContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"

// hstsSeconds is one year, the minimum browsers' preload lists accept.
const hstsSeconds = 365 * 24 * 60 * 60

// SecurityHeaders sets the browser-facing protections on every response:
// the API's Content-Security-Policy, X-Frame-Options DENY, X-Content-Type-Options
// nosniff and Referrer-Policy strict-origin-when-cross-origin; in production
// also Strict-Transport-Security for a year including subdomains.
//
// HSTS is sent on every production response rather than only on those that
// unrolled/secure itself recognises as HTTPS: behind a TLS-terminating proxy it
// would see plain HTTP, and its proxy-header check trusts any client. Browsers
// ignore HSTS received over plain HTTP (RFC 6797 §8.1), and HTTPSRedirect
// already turns plain requests away in production, so nothing is lost.
func SecurityHeaders(production bool) func(http.Handler) http.Handler {
	opts := secure.Options{
		ContentSecurityPolicy: APIContentSecurityPolicy,
		FrameDeny:             true,
		ContentTypeNosniff:    true,
		ReferrerPolicy:        "strict-origin-when-cross-origin",
	}
	if production {
		opts.STSSeconds = hstsSeconds
		opts.STSIncludeSubdomains = true
		opts.ForceSTSHeader = true
	}
	return secure.New(opts).Handler
}

var (
	scriptTagRe = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script\s*>`)
	styleTagRe  = regexp.MustCompile(`(?is)<style\b[^>]*>(.*?)</style\s*>`)
	linkTagRe   = regexp.MustCompile(`(?is)<link\b([^>]*)>`)
	attrRe      = regexp.MustCompile(`(?is)\b(src|href|rel)\s*=\s*"([^"]*)"`)
	hostRe      = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)
)

// PlaygroundCSP wraps the GraphiQL page (internal/explorer) with a
// Content-Security-Policy that allows exactly what the page loads.
//
// The policy is derived from the page itself, rendered once here: scripts and
// stylesheets must come from this origin (a path such as /playground/assets/x.js),
// which the policy allows as 'self'; an inline script is allowed by its
// SHA-256 hash alone, so an injected script runs nowhere. A page that loads
// anything from another host is an error: the explorer must work offline and
// in an air-gapped deployment. 'self' admits no script an attacker controls:
// every other response of this origin is JSON or an attachment download, sent
// with X-Content-Type-Options: nosniff and a type browsers refuse to run.
// Inline styles stay allowed ('unsafe-inline' in style-src only): GraphiQL's
// components insert style elements at run time, and a style cannot run code.
// connect-src is the page's own origin, spelled out for websockets too, which
// some browsers do not include in 'self'.
//
// The page must be static (the same for every request); an error says it is
// not, or that it has no script at all.
func PlaygroundCSP(page http.Handler) (http.Handler, error) {
	first, err := renderPage(page)
	if err != nil {
		return nil, err
	}
	second, err := renderPage(page)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(first, second) {
		return nil, errors.New("playground CSP: page differs between requests, inline hashes would not hold")
	}
	base, err := playgroundPolicy(first)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		policy := base
		if hostRe.MatchString(r.Host) {
			scheme := "ws://"
			if clientip.IsHTTPS(r) {
				scheme = "wss://"
			}
			policy = strings.Replace(policy, "connect-src 'self'", "connect-src 'self' "+scheme+r.Host, 1)
		}
		w.Header().Set("Content-Security-Policy", policy)
		page.ServeHTTP(w, r)
	}), nil
}

// playgroundPolicy builds the policy for a rendered page.
func playgroundPolicy(page []byte) (string, error) {
	var scripts, styles []string
	for _, m := range scriptTagRe.FindAllSubmatch(page, -1) {
		attrs := attributes(m[1])
		if src, ok := attrs["src"]; ok {
			if !sameOrigin(src) {
				return "", fmt.Errorf("playground CSP: script %q is not served by this origin", src)
			}
			scripts = appendSource(scripts, "'self'")
			continue
		}
		scripts = appendSource(scripts, hashSource(m[2]))
	}
	if len(scripts) == 0 {
		return "", errors.New("playground CSP: page has no script")
	}
	styles = append(styles, "'unsafe-inline'")
	for _, m := range linkTagRe.FindAllSubmatch(page, -1) {
		attrs := attributes(m[1])
		if strings.EqualFold(attrs["rel"], "stylesheet") && attrs["href"] != "" {
			if !sameOrigin(attrs["href"]) {
				return "", fmt.Errorf("playground CSP: stylesheet %q is not served by this origin", attrs["href"])
			}
			styles = appendSource(styles, "'self'")
		}
	}
	for _, src := range append(scripts, styles...) {
		if strings.ContainsAny(src, "; ,\r\n") {
			return "", fmt.Errorf("playground CSP: source %q cannot be written into a policy", src)
		}
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src " + strings.Join(scripts, " "),
		"style-src " + strings.Join(styles, " "),
		"connect-src 'self'",
		"img-src 'self' data:",
		"font-src 'self' data:",
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"form-action 'none'",
		"object-src 'none'",
	}, "; "), nil
}

// sameOrigin reports whether a page reference is an absolute path on the
// page's own origin: "/x", not "//host/x", "https://host/x" or a relative
// path (which would change meaning between / and /playground).
func sameOrigin(ref string) bool {
	return strings.HasPrefix(ref, "/") && !strings.HasPrefix(ref, "//") && !strings.Contains(ref, "\\")
}

func attributes(tag []byte) map[string]string {
	attrs := map[string]string{}
	for _, a := range attrRe.FindAllSubmatch(tag, -1) {
		attrs[strings.ToLower(string(a[1]))] = html.UnescapeString(string(a[2]))
	}
	return attrs
}

func hashSource(inline []byte) string {
	sum := sha256.Sum256(inline)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func appendSource(list []string, src string) []string {
	for _, s := range list {
		if s == src {
			return list
		}
	}
	return append(list, src)
}

// renderPage serves one GET / to page and returns the body.
func renderPage(page http.Handler) ([]byte, error) {
	r, err := http.NewRequest(http.MethodGet, "/", nil)
	if err != nil {
		return nil, fmt.Errorf("playground CSP: %w", err)
	}
	w := &bufferWriter{header: http.Header{}}
	page.ServeHTTP(w, r)
	if w.status != 0 && w.status != http.StatusOK {
		return nil, fmt.Errorf("playground CSP: page answered %d", w.status)
	}
	return w.body.Bytes(), nil
}

// bufferWriter collects a response in memory. (httptest.ResponseRecorder would
// do, but importing httptest registers a command-line flag in the server.)
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }

func (b *bufferWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}
