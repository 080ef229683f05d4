package server_test

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/explorer"
	"github.com/qchat/qchat/internal/qchattest"
)

var (
	// Every attribute that makes a browser fetch something, in any tag.
	pageRefRe = regexp.MustCompile(`(?is)\b(?:src|href|srcset|poster|data|action|formaction|manifest)\s*=\s*["']?([^"'\s>]+)`)
	// Every way a stylesheet loads something.
	cssURLRe    = regexp.MustCompile(`(?i)url\(\s*["']?([^"')]+)["']?\s*\)`)
	cssImportRe = regexp.MustCompile(`(?i)@import\s+["']([^"']+)["']`)
	// A source map comment makes developer tools fetch the map.
	sourceMapRe = regexp.MustCompile(`(?m)^\s*//[#@]\s*sourceMappingURL=(\S+)`)
)

// TestExplorerWorksOffline fetches the GraphiQL page through the real handler,
// then every file it references and every file those reference, and requires
// each to be served by the binary itself with its proper content type:
// nothing may come from another host, so the explorer works offline.
func TestExplorerWorksOffline(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	var page []byte
	for _, path := range []string{"/playground", "/playground/"} {
		resp, body := srv.Raw(t, "GET", path, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if page != nil && !bytes.Equal(body, page) {
			t.Errorf("GET %s serves another page than GET /playground", path)
		}
		page = body
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("GET %s: policy %q", path, csp)
		}
		for _, d := range strings.Split(csp, ";") {
			// The only host named is this server's own, for its websocket.
			if d = strings.TrimSpace(d); strings.Contains(d, "://") && d != "connect-src 'self' ws://"+strings.TrimPrefix(srv.URL, "http://") {
				t.Errorf("GET %s: policy allows another host: %q", path, d)
			}
		}
	}
	if !bytes.Contains(page, []byte("GraphiQL")) || !regexp.MustCompile(`<link rel="icon"[^>]*href="/`).Match(page) {
		t.Error("the page is not GraphiQL's, or has no favicon of its own")
	}

	seen := map[string]bool{}
	queue := references(t, "/playground", page, pageRefRe)
	scripts := 0
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		if seen[ref] {
			continue
		}
		seen[ref] = true
		resp, body := srv.Raw(t, "GET", ref, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", ref, resp.StatusCode)
			continue
		}
		ct := resp.Header.Get("Content-Type")
		if want := explorer.ContentType(ref); want == "" || ct != want {
			t.Errorf("GET %s: Content-Type %q, want %q", ref, ct, want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", ref)
		}
		switch {
		case strings.HasSuffix(ref, ".css"):
			queue = append(queue, references(t, ref, body, cssURLRe, cssImportRe)...)
		case strings.HasSuffix(ref, ".js"):
			scripts++
			queue = append(queue, references(t, ref, body, sourceMapRe)...)
		case strings.HasSuffix(ref, ".svg"):
			queue = append(queue, references(t, ref, body, regexp.MustCompile(`(?i)\bhref\s*=\s*["']([^"']+)`))...)
		}
	}
	if scripts < 4 || len(seen) < 7 { // react, react-dom, graphiql, ours; two stylesheets, the icon
		t.Errorf("only %d files (%d scripts) reached from the page: %v", len(seen), scripts, seen)
	}
}

// references lists what body, served at base, makes a browser fetch, as
// paths on this server; an inline data: URL fetches nothing. Any reference
// to another host fails the test.
func references(t *testing.T, base string, body []byte, res ...*regexp.Regexp) []string {
	t.Helper()
	baseURL := &url.URL{Scheme: "http", Host: "qchat.test", Path: base}
	var out []string
	for _, re := range res {
		for _, m := range re.FindAllSubmatch(body, -1) {
			ref := string(m[1])
			if strings.HasPrefix(ref, "data:") || strings.HasPrefix(ref, "#") {
				continue
			}
			u, err := baseURL.Parse(ref)
			if err != nil || u.Host != baseURL.Host || u.Scheme != baseURL.Scheme {
				t.Errorf("%s references %q, which is not on this server", base, ref)
				continue
			}
			out = append(out, u.RequestURI())
		}
	}
	return out
}

// TestExplorerAssets covers the asset handler's edges: conditional requests,
// unknown names, the page itself, and production, where none of it exists.
func TestExplorerAssets(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	const js = explorer.AssetPrefix + "explorer.js"
	resp, _ := srv.Raw(t, "GET", js, nil, nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET %s: %d ETag %q Cache-Control %q", js, resp.StatusCode, etag, resp.Header.Get("Cache-Control"))
	}
	if resp, _ = srv.Raw(t, "GET", js, http.Header{"If-None-Match": {etag}}, nil); resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", resp.StatusCode)
	}
	for _, path := range []string{
		explorer.AssetPrefix + "index.html",
		explorer.AssetPrefix + "nope.js",
		explorer.AssetPrefix,
		explorer.AssetPrefix + "vendor",
		"/playground/explorer.js",
	} {
		if resp, _ := srv.Raw(t, "GET", path, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}

	prod := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.Env, c.TrustProxy, c.Introspection = "production", "loopback", false
	}})
	for _, path := range []string{"/playground", "/playground/", js} {
		if resp, _ := prod.Raw(t, "GET", path, http.Header{"X-Forwarded-Proto": {"https"}}, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("production GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
