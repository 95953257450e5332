package signaling

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// originAllowed implements the Origin rule of protocol.md: a request without
// Origin (a non-browser client) is allowed; otherwise the Origin's host and
// port must be the request's own, or one of the configured origins. "null"
// and anything unparsable are refused.
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	oh, op := hostPort(u.Host, u.Scheme)
	// A Host without a port takes the default port of the Origin's scheme
	// (protocol.md), not of the scheme this server sees: behind a proxy that
	// terminates TLS the request arrives over plain HTTP with Host "example.com"
	// while the page's Origin is https://example.com.
	if rh, rp := hostPort(r.Host, u.Scheme); strings.EqualFold(oh, rh) && op == rp {
		return true
	}
	for _, a := range allowed {
		au, err := url.Parse(a)
		if err != nil {
			continue
		}
		ah, ap := hostPort(au.Host, au.Scheme)
		if strings.EqualFold(au.Scheme, u.Scheme) && strings.EqualFold(ah, oh) && ap == op {
			return true
		}
	}
	return false
}

// hostPort splits host[:port], filling in the scheme's default port.
func hostPort(hp, scheme string) (host, port string) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		host, port = strings.Trim(hp, "[]"), ""
	}
	if port == "" {
		port = "80"
		if scheme == "https" || scheme == "wss" {
			port = "443"
		}
	}
	return host, port
}

// clientIP is the address a request is counted against: resolve's answer
// (the server's --trusted-proxies rule), or without one the TCP peer's.
func clientIP(r *http.Request, resolve func(*http.Request) string) string {
	if resolve != nil {
		return resolve(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
