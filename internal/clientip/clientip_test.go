package clientip

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/qchat/qchat/internal/reqctx"
)

func TestParseTrustProxy(t *testing.T) {
	tests := []struct {
		spec      string
		trusted   []string
		untrusted []string
		wantErr   bool
	}{
		{spec: "", untrusted: []string{"127.0.0.1", "10.0.0.1", "::1"}},
		{spec: "  ,  ", untrusted: []string{"127.0.0.1"}},
		{spec: "loopback", trusted: []string{"127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"}, untrusted: []string{"10.0.0.1", "::2"}},
		{spec: "private", trusted: []string{"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fd00::1"}, untrusted: []string{"172.32.0.1", "8.8.8.8", "127.0.0.1"}},
		{spec: "linklocal", trusted: []string{"169.254.1.1", "fe80::1"}, untrusted: []string{"10.0.0.1"}},
		{spec: "203.0.113.7, 198.51.100.0/24", trusted: []string{"203.0.113.7", "198.51.100.200"}, untrusted: []string{"203.0.113.8", "198.51.101.1"}},
		{spec: "Loopback,2001:db8::/32", trusted: []string{"::1", "2001:db8::5"}, untrusted: []string{"2001:db9::1"}},
		{spec: "10.0.0.1/8", trusted: []string{"10.200.0.1"}}, // host bits are masked
		{spec: "*", wantErr: true},
		{spec: "true", wantErr: true},
		{spec: "10.0.0.0/33", wantErr: true},
		{spec: "example.com", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			p, err := ParseTrustProxy(tt.spec)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			for _, a := range tt.trusted {
				if !p.Trusted(netip.MustParseAddr(a)) {
					t.Errorf("%s not trusted", a)
				}
			}
			for _, a := range tt.untrusted {
				if p.Trusted(netip.MustParseAddr(a)) {
					t.Errorf("%s trusted", a)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name       string
		trust      string
		remote     string
		tls        bool
		xff        []string
		proto      string
		wantIP     string
		wantScheme string
	}{
		{name: "direct", remote: "198.51.100.9:4000", wantIP: "198.51.100.9", wantScheme: "http"},
		{name: "direct tls", remote: "198.51.100.9:4000", tls: true, wantIP: "198.51.100.9", wantScheme: "https"},
		{name: "direct ipv6", remote: "[2001:db8::9]:4000", wantIP: "2001:db8::9", wantScheme: "http"},
		{name: "mapped ipv4", remote: "[::ffff:198.51.100.9]:4000", wantIP: "198.51.100.9", wantScheme: "http"},
		{name: "unix socket", remote: "@", wantIP: "@", wantScheme: "http"},

		// Spoofing attempts: headers from an untrusted peer are ignored.
		{name: "spoof xff no trust", remote: "198.51.100.9:4000", xff: []string{"1.2.3.4"}, proto: "https", wantIP: "198.51.100.9", wantScheme: "http"},
		{name: "spoof xff untrusted peer", trust: "loopback", remote: "198.51.100.9:4000", xff: []string{"127.0.0.1"}, proto: "https", wantIP: "198.51.100.9", wantScheme: "http"},
		{name: "spoof proto downgrade ignored", remote: "198.51.100.9:4000", tls: true, proto: "http", wantIP: "198.51.100.9", wantScheme: "https"},

		// One trusted proxy in front.
		{name: "behind proxy", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"203.0.113.5"}, proto: "https", wantIP: "203.0.113.5", wantScheme: "https"},
		{name: "client prepends fake entries", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"6.6.6.6, 7.7.7.7, 203.0.113.5"}, wantIP: "203.0.113.5", wantScheme: "http"},
		{name: "client sends its own xff header line", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"6.6.6.6", "203.0.113.5"}, wantIP: "203.0.113.5", wantScheme: "http"},
		{name: "client claims trusted address left of real", trust: "private", remote: "10.0.0.2:5000", xff: []string{"10.9.9.9, 203.0.113.5"}, wantIP: "203.0.113.5", wantScheme: "http"},
		{name: "proxy without xff", trust: "loopback", remote: "127.0.0.1:5000", wantIP: "127.0.0.1", wantScheme: "http"},
		{name: "proxy xff with port", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"203.0.113.5:7777"}, wantIP: "203.0.113.5", wantScheme: "http"},
		{name: "proxy xff ipv6 bracketed", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"[2001:db8::1]:7777"}, wantIP: "2001:db8::1", wantScheme: "http"},
		{name: "proxy xff ipv6 bare", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"2001:db8::1"}, wantIP: "2001:db8::1", wantScheme: "http"},

		// Chains.
		{name: "two trusted hops", trust: "loopback,private", remote: "127.0.0.1:5000", xff: []string{"203.0.113.5, 10.0.0.7"}, proto: "https", wantIP: "203.0.113.5", wantScheme: "https"},
		{name: "untrusted hop in middle stops walk", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"203.0.113.5, 198.51.100.1"}, wantIP: "198.51.100.1", wantScheme: "http"},
		{name: "all hops trusted", trust: "private", remote: "10.0.0.2:5000", xff: []string{"10.0.0.9, 10.0.0.3"}, wantIP: "10.0.0.9", wantScheme: "http"},
		{name: "garbage behind trusted client", trust: "private", remote: "10.0.0.2:5000", xff: []string{"not-an-ip, 10.0.0.3"}, wantIP: "10.0.0.3", wantScheme: "http"},
		{name: "garbage right away", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"<script>"}, wantIP: "127.0.0.1", wantScheme: "http"},
		{name: "zone rejected", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"fe80::1%eth0"}, wantIP: "127.0.0.1", wantScheme: "http"},
		{name: "empty entries", trust: "loopback", remote: "127.0.0.1:5000", xff: []string{"203.0.113.5, "}, wantIP: "127.0.0.1", wantScheme: "http"},

		// Proto from a trusted peer.
		{name: "proto list takes leftmost", trust: "loopback", remote: "127.0.0.1:5000", proto: "https, http", wantIP: "127.0.0.1", wantScheme: "https"},
		{name: "proto case", trust: "loopback", remote: "127.0.0.1:5000", proto: "HTTPS", wantIP: "127.0.0.1", wantScheme: "https"},
		{name: "proto junk ignored", trust: "loopback", remote: "127.0.0.1:5000", proto: "gopher", wantIP: "127.0.0.1", wantScheme: "http"},
		{name: "proto http over tls hop", trust: "loopback", remote: "127.0.0.1:5000", tls: true, proto: "http", wantIP: "127.0.0.1", wantScheme: "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseTrustProxy(tt.trust)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/graphql", nil)
			r.RemoteAddr = tt.remote
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			} else {
				r.TLS = nil
			}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tt.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			ip, scheme := p.Resolve(r)
			if ip != tt.wantIP || scheme != tt.wantScheme {
				t.Errorf("Resolve = %q, %q; want %q, %q", ip, scheme, tt.wantIP, tt.wantScheme)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	p, err := ParseTrustProxy("loopback")
	if err != nil {
		t.Fatal(err)
	}
	var gotIP, gotScheme string
	var gotHTTPS bool
	h := Middleware(p)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotIP, gotScheme, gotHTTPS = reqctx.ClientIP(r.Context()), reqctx.Scheme(r.Context()), IsHTTPS(r)
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.1:1234"
	r.Header.Set("X-Forwarded-For", "203.0.113.5")
	r.Header.Set("X-Forwarded-Proto", "https")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if gotIP != "203.0.113.5" || gotScheme != "https" || !gotHTTPS {
		t.Errorf("got %q %q %v", gotIP, gotScheme, gotHTTPS)
	}
}

func TestWithoutMiddleware(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if reqctx.ClientIP(r.Context()) != "" || reqctx.Scheme(r.Context()) != "" {
		t.Error("values without middleware")
	}
	r.TLS = nil
	if IsHTTPS(r) {
		t.Error("IsHTTPS without TLS")
	}
	r.TLS = &tls.ConnectionState{}
	if !IsHTTPS(r) {
		t.Error("IsHTTPS falls back to the connection")
	}
}

func TestProxiesString(t *testing.T) {
	var none Proxies
	if none.String() != "none" {
		t.Errorf("zero value = %q", none.String())
	}
	p, _ := ParseTrustProxy("10.0.0.1,loopback")
	if got, want := p.String(), "10.0.0.1/32,127.0.0.0/8,::1/128"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
