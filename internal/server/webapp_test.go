package server_test

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
)

var appAssetRe = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`)

// TestWebAppRoutes: the embedded app is at / with its own policy, every client
// route falls back to its page, hashed assets are cached for good and a
// missing one is a 404; other methods and the API keep their routes; WEB_APP
// off leaves / to the API's 404.
func TestWebAppRoutes(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	host := strings.TrimPrefix(srv.URL, "http://")
	resp, page := srv.Raw(t, "GET", "/", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || !bytes.Contains(page, []byte(`<div id="root">`)) {
		t.Fatalf("GET /: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self';", "style-src 'self';", "connect-src 'self' ws://" + host + ";", "frame-ancestors 'none'", "img-src 'self' blob: data:"} {
		if !strings.Contains(csp, want) {
			t.Errorf("policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("policy %q allows unsafe sources", csp)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("page Cache-Control %q", cc)
	}
	for _, route := range []string{"/room/0193a4b2-0000-7000-8000-000000000000", "/dm/bob", "/register", "/join"} {
		resp, body := srv.Raw(t, "GET", route, nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, page) {
			t.Errorf("GET %s: %d, same page %v", route, resp.StatusCode, bytes.Equal(body, page))
		}
	}
	assets := appAssetRe.FindAllSubmatch(page, -1)
	if len(assets) < 2 {
		t.Fatalf("page names %d assets, want a script and a stylesheet", len(assets))
	}
	for _, m := range assets {
		resp, body := srv.Raw(t, "GET", string(m[1]), nil, nil)
		if resp.StatusCode != http.StatusOK || len(body) == 0 || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: %d, Cache-Control %q", m[1], resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") && !strings.HasPrefix(ct, "text/css") {
			t.Errorf("GET %s: Content-Type %q", m[1], ct)
		}
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/assets/index-missing.js", http.StatusNotFound},
		{"GET", "/index.html", http.StatusNotFound},
		{"POST", "/", http.StatusNotFound},
		{"GET", "/playground", http.StatusOK},
		{"GET", "/health/live", http.StatusOK},
		{"GET", "/debug/pprof/", http.StatusNotFound},
		{"GET", "/graphql/x", http.StatusNotFound},
		{"GET", "/health/nope", http.StatusNotFound},
		{"GET", "/metricsx", http.StatusNotFound},
	} {
		if resp, _ := srv.Raw(t, c.method, c.path, nil, nil); resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}

	off := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) { c.WebApp = false }})
	for _, p := range []string{"/", "/room/x", string(assets[0][1])} {
		if resp, _ := off.Raw(t, "GET", p, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("WEB_APP=false: GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}
