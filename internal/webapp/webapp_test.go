package webapp

import (
	"crypto/tls"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

const page = `<!doctype html><html><head><script type="module" crossorigin src="/assets/index-abc.js"></script></head><body><div id="root"></div></body></html>`

func TestNewRefusesWhatThePolicyBlocks(t *testing.T) {
	for name, html := range map[string]string{
		"inline script":   `<html><script>alert(1)</script></html>`,
		"inline module":   `<html><script type="module">import "/x.js"</script></html>`,
		"style element":   `<html><style>body{}</style></html>`,
		"style attribute": `<html><body style="color:red"></body></html>`,
	} {
		if _, err := New(fstest.MapFS{"index.html": {Data: []byte(html)}}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(fstest.MapFS{}); err == nil || !strings.Contains(err.Error(), "make web") {
		t.Errorf("no index.html: %v", err)
	}
	if _, err := New(fstest.MapFS{"index.html": {Data: []byte(page)}}); err != nil {
		t.Errorf("a page with an external module script: %v", err)
	}
}

func TestServe(t *testing.T) {
	h, err := New(fstest.MapFS{
		"index.html":       {Data: []byte(page)},
		"favicon.svg":      {Data: []byte("<svg/>")},
		"assets/index.js":  {Data: []byte("console.log(1)")},
		"assets/index.css": {Data: []byte("body{}")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, host, proto   string
		status              int
		typ, cache, connect string
	}{
		{"/", "chat.example", "", 200, "text/html; charset=utf-8", "no-cache", "connect-src 'self' ws://chat.example;"},
		{"/room/abc", "chat.example", "https", 200, "text/html; charset=utf-8", "no-cache", "connect-src 'self' wss://chat.example;"},
		{"/assets/index.js", "127.0.0.1:8080", "", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "connect-src 'self' ws://127.0.0.1:8080;"},
		{"/assets/index.css", "[::1]:8080", "", 200, "text/css; charset=utf-8", "public, max-age=31536000, immutable", "connect-src 'self' ws://[::1]:8080;"},
		{"/favicon.svg", "chat.example", "", 200, "image/svg+xml", "no-cache", ""},
		{"/assets/gone.js", "chat.example", "", 404, "", "", ""},
		{"/index.html", "chat.example", "", 404, "", "", ""},
		{"/../../etc/passwd.txt", "chat.example", "", 404, "", "", ""},
		// A Host that could smuggle a source into the policy is left out of it.
		{"/", "evil.example; script-src *", "", 200, "text/html; charset=utf-8", "no-cache", "connect-src 'self'; object-src"},
	} {
		r := httptest.NewRequest("GET", "http://x"+c.path, nil)
		r.Host = c.host
		if c.proto == "https" {
			r.TLS = &tls.ConnectionState{} // what clientip.IsHTTPS reads without a proxy
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		res := w.Result()
		if res.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, res.StatusCode, c.status)
			continue
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "*") {
			t.Errorf("GET %s: policy %q", c.path, csp)
		}
		if c.status != 200 {
			continue
		}
		if got := res.Header.Get("Content-Type"); got != c.typ {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.typ)
		}
		if got := res.Header.Get("Cache-Control"); got != c.cache {
			t.Errorf("GET %s: Cache-Control %q, want %q", c.path, got, c.cache)
		}
		if c.connect != "" && !strings.Contains(csp, c.connect) {
			t.Errorf("GET %s: policy %q lacks %q", c.path, csp, c.connect)
		}
	}
}
