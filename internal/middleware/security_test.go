package middleware

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/explorer"
	"github.com/qchat/qchat/internal/reqctx"
)

func TestSecurityHeaders(t *testing.T) {
	tests := []struct {
		name       string
		production bool
		want       map[string]string
	}{
		{
			name:       "development",
			production: false,
			want: map[string]string{
				"Content-Security-Policy":   APIContentSecurityPolicy,
				"X-Frame-Options":           "DENY",
				"X-Content-Type-Options":    "nosniff",
				"Referrer-Policy":           "strict-origin-when-cross-origin",
				"Strict-Transport-Security": "",
			},
		},
		{
			name:       "production",
			production: true,
			want: map[string]string{
				"Content-Security-Policy":   APIContentSecurityPolicy,
				"X-Frame-Options":           "DENY",
				"X-Content-Type-Options":    "nosniff",
				"Referrer-Policy":           "strict-origin-when-cross-origin",
				"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := SecurityHeaders(tt.production)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "{}")
			}))
			// Plain HTTP as seen behind a TLS-terminating proxy: HSTS must still be sent in production.
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/graphql", nil))
			if w.Code != http.StatusOK || w.Body.String() != "{}" {
				t.Fatalf("response %d %q", w.Code, w.Body)
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPlaygroundCSP(t *testing.T) {
	ex, err := explorer.New()
	if err != nil {
		t.Fatal(err)
	}
	h, err := PlaygroundCSP(ex.Page())
	if err != nil {
		t.Fatal(err)
	}
	// The API policy is set outside and must be replaced, not merged.
	h = SecurityHeaders(true)(h)

	tests := []struct {
		name        string
		host        string
		https       bool
		wantConnect string
	}{
		{name: "http", host: "localhost:8080", wantConnect: "connect-src 'self' ws://localhost:8080"},
		{name: "https via trusted proxy", host: "chat.example.com", https: true, wantConnect: "connect-src 'self' wss://chat.example.com"},
		{name: "odd host is left out", host: "a;b", wantConnect: "connect-src 'self';"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Host = tt.host
			scheme := "http"
			if tt.https {
				scheme = "https"
			}
			r = r.WithContext(reqctx.WithClient(r.Context(), "203.0.113.1", scheme))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body := w.Body.String()
			csp := w.Header().Get("Content-Security-Policy")
			if w.Code != http.StatusOK || !strings.Contains(body, "graphiql") {
				t.Fatalf("page %d", w.Code)
			}
			if !strings.Contains(csp, tt.wantConnect) {
				t.Errorf("CSP %q lacks %q", csp, tt.wantConnect)
			}
			checkPlaygroundPolicy(t, csp, body)
			if w.Header().Get("X-Frame-Options") != "DENY" {
				t.Error("other security headers lost")
			}
		})
	}
}

// checkPlaygroundPolicy verifies the policy against the page independently of
// the implementation: every script and stylesheet comes from this origin and
// is allowed as 'self', the page has no inline script, and nothing broader is
// allowed.
func checkPlaygroundPolicy(t *testing.T, csp, body string) {
	t.Helper()
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	if got := directives["script-src"]; got != "'self'" {
		t.Errorf("script-src = %q, want 'self' alone", got)
	}
	if got := directives["style-src"]; got != "'unsafe-inline' 'self'" {
		t.Errorf("style-src = %q", got)
	}
	if directives["default-src"] != "'none'" || directives["frame-ancestors"] != "'none'" || directives["object-src"] != "'none'" {
		t.Errorf("base directives wrong: %q", csp)
	}

	scripts := regexp.MustCompile(`<script\b([^>]*)>`).FindAllStringSubmatch(body, -1)
	if len(scripts) < 4 { // react, react-dom, graphiql, the start-up script
		t.Fatalf("found %d scripts in the page", len(scripts))
	}
	for _, m := range scripts {
		src := regexp.MustCompile(`src="(/[^/"][^"]*)"`).FindStringSubmatch(m[1])
		if src == nil {
			t.Errorf("script without a same-origin src: <script%s>", m[1])
		}
	}
	if regexp.MustCompile(`(?s)<script[^>]*>\s*[^<\s]`).MatchString(body) {
		t.Error("page has an inline script")
	}
	if strings.Contains(body, "<style") {
		t.Error("page has an inline style element")
	}
}

func TestPlaygroundCSPErrors(t *testing.T) {
	n := 0
	tests := []struct {
		name string
		page http.HandlerFunc
	}{
		{name: "dynamic page", page: func(w http.ResponseWriter, r *http.Request) {
			n++
			_, _ = io.WriteString(w, "<script>var n = "+strings.Repeat("1", n)+"</script>")
		}},
		{name: "no script", page: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "<p>hello</p>")
		}},
		{name: "error status", page: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "nope", http.StatusInternalServerError)
		}},
		{name: "script from a CDN", page: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `<script src="https://cdn.example/a.js"></script>`)
		}},
		{name: "script from a protocol-relative URL", page: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `<script src="//cdn.example/a.js"></script>`)
		}},
		{name: "script by a backslashed path browsers read as a host", page: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `<script src="/\cdn.example/a.js"></script>`)
		}},
		{name: "script by a relative path", page: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `<script src="a.js"></script>`)
		}},
		{name: "stylesheet from a CDN", page: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `<link rel="stylesheet" href="https://cdn.example/a.css"><script src="/a.js"></script>`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := PlaygroundCSP(tt.page); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestPlaygroundPolicy(t *testing.T) {
	page := `<html><head><style>body{}</style>
<script src="/assets/a.js" integrity="x"></script>
<script SRC="/assets/b.js"></script>
<link rel="stylesheet" href="/assets/a.css?x=1&amp;y=2">
<link rel="icon" href="/assets/favicon.svg">
</head><body><script>alert(1)</script><script type="module">go()</script></body></html>`
	got, err := playgroundPolicy([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	want := "default-src 'none'; " +
		"script-src 'self' " + hashSource([]byte("alert(1)")) + " " + hashSource([]byte("go()")) + "; " +
		"style-src 'unsafe-inline' 'self'; " +
		"connect-src 'self'; img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'; " +
		"base-uri 'none'; form-action 'none'; object-src 'none'"
	if got != want {
		t.Errorf("policy\n got %s\nwant %s", got, want)
	}
}
