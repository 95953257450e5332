// Package clientip tells which address a request comes from: the TCP peer's,
// or, when that peer is a proxy the operator trusts (--trusted-proxies), the
// address the proxies saw, read from X-Forwarded-For.
//
// Only X-Forwarded-For is read. X-Real-IP holds one address with no record
// of who set it, so behind two proxies it cannot be checked hop by hop;
// nginx appends to X-Forwarded-For with $proxy_add_x_forwarded_for.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Resolver finds a request's client address.
type Resolver struct {
	trusted []netip.Prefix
	// untrusted and malformed count the X-Forwarded-For headers ignored.
	untrusted, malformed prometheus.Counter
}

// New returns a Resolver that honours X-Forwarded-For from peers inside
// trusted (none: from nobody), counting the headers it ignores in reg.
func New(trusted []netip.Prefix, reg prometheus.Registerer) *Resolver {
	ignored := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stranger_forwarded_for_ignored_total",
		Help: "X-Forwarded-For headers not honoured: from a peer outside --trusted-proxies (untrusted_peer) or with an entry that is no IP address (malformed).",
	}, []string{"reason"})
	reg.MustRegister(ignored)
	return &Resolver{
		trusted:   trusted,
		untrusted: ignored.WithLabelValues("untrusted_peer"),
		malformed: ignored.WithLabelValues("malformed"),
	}
}

// IP is the client address of r. A request from a trusted proxy is the
// right-most X-Forwarded-For entry that is not itself a trusted proxy:
// entries left of it were written by the client or by proxies nobody
// vouches for, so a client cannot choose its address by sending the header
// itself. A header with an entry that is no IP address (in the part
// walked) is ignored as a whole: the peer's address is used.
func (res *Resolver) IP(r *http.Request) string {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr // not an IP peer (a test's recorder): nothing to check
	}
	values := r.Header.Values("X-Forwarded-For")
	if len(values) == 0 {
		return peer.String()
	}
	if !res.isTrusted(peer) {
		res.untrusted.Inc()
		return peer.String()
	}
	// Several header lines are one list, in order (RFC 9110 §5.3).
	entries := strings.Split(strings.Join(values, ","), ",")
	client := peer
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parseAddr(strings.TrimSpace(entries[i]))
		if !ok {
			res.malformed.Inc()
			return peer.String()
		}
		client = a
		if !res.isTrusted(a) {
			break
		}
	}
	// If every entry was a trusted proxy, the left-most is as far as the
	// chain goes.
	return client.String()
}

func (res *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range res.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads an IP address, alone or with a port ("192.0.2.1:1234",
// "[2001:db8::1]:1234"); an IPv4 address mapped into IPv6 is the IPv4 one.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// ParsePrefixes reads a list of CIDR prefixes ("10.0.0.0/8", "::1/128");
// a bare address is a prefix of its full length.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not a CIDR prefix like 10.0.0.0/8 or an IP address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// Addresses are unmapped before the check (parseAddr).
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Loopback is what the deprecated --trust-proxy means: proxies on the
// node's own host.
func Loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}
