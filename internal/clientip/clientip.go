// Package clientip decides who a request really comes from: the client's IP
// address and the scheme it used. Forwarding headers (X-Forwarded-For,
// X-Forwarded-Proto) are honoured only when they were written by a proxy the
// operator trusts (TRUST_PROXY); from anyone else they are spoofable text.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/qchat/qchat/internal/reqctx"
)

// keywordRanges are the ranges TRUST_PROXY keywords stand for.
func keywordRanges(word string) ([]string, bool) {
	switch word {
	case "loopback":
		return []string{"127.0.0.0/8", "::1/128"}, true
	case "private":
		return []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}, true
	case "linklocal":
		return []string{"169.254.0.0/16", "fe80::/10"}, true
	}
	return nil, false
}

// Proxies is the set of peers whose forwarding headers are believed. The zero
// value trusts nobody, which is the safe default for a server that faces the
// internet directly.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseTrustProxy reads TRUST_PROXY: a comma-separated list of IP addresses,
// CIDR ranges and the keywords loopback, private (RFC 1918 and IPv6 unique
// local) and linklocal. An empty string trusts nobody. Trusting every peer is
// deliberately not expressible: it would let any client choose its own IP.
func ParseTrustProxy(spec string) (Proxies, error) {
	var p Proxies
	for _, item := range strings.Split(spec, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" {
			continue
		}
		if ranges, ok := keywordRanges(item); ok {
			for _, r := range ranges {
				p.prefixes = append(p.prefixes, netip.MustParsePrefix(r))
			}
			continue
		}
		if strings.Contains(item, "/") {
			pfx, err := netip.ParsePrefix(item)
			if err != nil {
				return Proxies{}, fmt.Errorf("trust proxy %q: %w", item, err)
			}
			p.prefixes = append(p.prefixes, pfx.Masked())
			continue
		}
		addr, err := netip.ParseAddr(item)
		if err != nil {
			return Proxies{}, fmt.Errorf("trust proxy %q: want an IP, a CIDR, loopback, private or linklocal: %w", item, err)
		}
		addr = addr.Unmap()
		p.prefixes = append(p.prefixes, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return p, nil
}

// Trusted reports whether addr belongs to a trusted proxy.
func (p Proxies) Trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, pfx := range p.prefixes {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// String lists the trusted ranges, for the start-up log.
func (p Proxies) String() string {
	if len(p.prefixes) == 0 {
		return "none"
	}
	s := make([]string, len(p.prefixes))
	for i, pfx := range p.prefixes {
		s[i] = pfx.String()
	}
	return strings.Join(s, ",")
}

// Resolve returns the client IP and scheme ("http" or "https") of r.
//
// The socket peer is the client unless the peer is a trusted proxy. Then
// X-Forwarded-For is read right to left — each proxy appends the address it
// saw — skipping trusted hops: the first untrusted address is the client, and
// everything left of it was written by the client itself and is ignored. If
// every hop is trusted, the leftmost valid one is the client. The scheme comes
// from X-Forwarded-Proto only from a trusted peer, otherwise from the
// connection itself.
func (p Proxies) Resolve(r *http.Request) (ip, scheme string) {
	scheme = "http"
	if r.TLS != nil {
		scheme = "https"
	}
	peer, ok := parseHost(r.RemoteAddr)
	if !ok {
		// Unix sockets and test doubles: no address to judge, so nothing to trust.
		return r.RemoteAddr, scheme
	}
	peer = peer.Unmap()
	if !p.Trusted(peer) {
		return peer.String(), scheme
	}
	if s, ok := forwardedProto(r.Header); ok {
		scheme = s
	}
	return p.walkForwardedFor(peer, r.Header.Values("X-Forwarded-For")).String(), scheme
}

func (p Proxies) walkForwardedFor(peer netip.Addr, values []string) netip.Addr {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := parseHost(strings.TrimSpace(hops[i]))
		if !ok {
			// A trusted proxy never writes garbage, so this entry came from the
			// client (which must then itself be in a trusted range): stop at the
			// last address a trusted hop vouched for.
			return client
		}
		client = addr.Unmap()
		if !p.Trusted(client) {
			return client
		}
	}
	return client
}

// forwardedProto takes the leftmost X-Forwarded-Proto value: the scheme the
// outermost proxy saw. Proxies that append rather than overwrite would
// otherwise make an inner hop's "http" win and loop the HTTPS redirect.
func forwardedProto(h http.Header) (string, bool) {
	v := h.Get("X-Forwarded-Proto")
	if v == "" {
		return "", false
	}
	first, _, _ := strings.Cut(v, ",")
	switch strings.ToLower(strings.TrimSpace(first)) {
	case "https", "wss":
		return "https", true
	case "http", "ws":
		return "http", true
	}
	return "", false
}

// parseHost accepts "ip", "ip:port", "[ipv6]:port" and "[ipv6]", the forms a
// socket address or an X-Forwarded-For entry takes in practice.
func parseHost(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr, true
}

// Middleware resolves every request's client IP and scheme once and stores
// them in the request context (reqctx) for the rate limiter, the HTTPS
// redirect and the logs.
func Middleware(p Proxies) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip, scheme := p.Resolve(r)
			next.ServeHTTP(w, r.WithContext(reqctx.WithClient(r.Context(), ip, scheme)))
		})
	}
}

// IsHTTPS reports whether the client used HTTPS, falling back to the
// connection itself when the middleware did not run.
func IsHTTPS(r *http.Request) bool {
	if s := reqctx.Scheme(r.Context()); s != "" {
		return s == "https"
	}
	return r.TLS != nil
}
