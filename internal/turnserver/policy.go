package turnserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrPeerDenied is returned (wrapped, naming the range) for a peer address
// the relay must not reach.
var ErrPeerDenied = errors.New("turn peer address denied")

// deniedRange is one block a relay must not send to, with the reason a log
// line or test failure shows.
type deniedRange struct {
	prefix netip.Prefix
	why    string
}

// An open TURN relay lets anyone on the internet send UDP from the server's
// own network position: to its loopback services, the operator's private
// network, or the cloud metadata endpoint (CVE-2020-26262 in coturn is this
// class of bug). So a relay may only reach globally routable unicast peers.
// Loopback is listed separately because --turn-allow-loopback opens it.
var (
	loopbackRanges = []deniedRange{
		{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
		{netip.MustParsePrefix("::1/128"), "loopback"},
	}
	deniedRanges = []deniedRange{
		{netip.MustParsePrefix("0.0.0.0/8"), "unspecified / this network (RFC 1122)"},
		{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
		{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT shared space (RFC 6598)"},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local and cloud metadata (RFC 3927)"},
		{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation (RFC 5737)"},
		{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)"},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation (RFC 5737)"},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation (RFC 5737)"},
		{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved and broadcast"},
		// ::/96 holds :: (unspecified) and the deprecated IPv4-compatible
		// addresses; ::1 is matched by loopbackRanges first.
		{netip.MustParsePrefix("::/96"), "unspecified / IPv4-compatible"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"},
		{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation (RFC 3849)"},
		{netip.MustParsePrefix("fc00::/7"), "unique local, incl. AWS metadata fd00:ec2::254 (RFC 4193)"},
		{netip.MustParsePrefix("fe80::/10"), "link-local"},
		{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
		{netip.MustParsePrefix("ff00::/8"), "multicast"},
	}
	nat64 = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 well-known prefix
)

// PeerPolicy decides which peer addresses a relay may create permissions
// (and so send packets) to.
type PeerPolicy struct {
	// AllowLoopback opens 127.0.0.0/8 and ::1 only, for tests and local
	// development where both peers run on one machine.
	AllowLoopback bool
}

// Check returns nil if ip is a permitted peer, else an error wrapping
// ErrPeerDenied that names the range.
func (p PeerPolicy) Check(ip net.IP) error {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return fmt.Errorf("%w: malformed address %v", ErrPeerDenied, ip)
	}
	return p.checkAddr(addr)
}

func (p PeerPolicy) checkAddr(addr netip.Addr) error {
	// ::ffff:a.b.c.d reaches a.b.c.d on a dual-stack socket.
	addr = addr.Unmap()
	if addr.Zone() != "" {
		return fmt.Errorf("%w: %v has a zone", ErrPeerDenied, addr)
	}
	for _, r := range loopbackRanges {
		if r.prefix.Contains(addr) {
			if p.AllowLoopback {
				return nil
			}
			return fmt.Errorf("%w: %v is %s", ErrPeerDenied, addr, r.why)
		}
	}
	for _, r := range deniedRanges {
		if r.prefix.Contains(addr) {
			return fmt.Errorf("%w: %v is %s", ErrPeerDenied, addr, r.why)
		}
	}
	// A NAT64 gateway on the server's network would translate
	// 64:ff9b::a.b.c.d to a.b.c.d, so judge the embedded IPv4 address.
	if nat64.Contains(addr) {
		b := addr.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if err := (PeerPolicy{}).checkAddr(v4); err != nil {
			return fmt.Errorf("%w (NAT64 %v)", err, addr)
		}
	}
	return nil
}

// Allowed is Check as a bool, the shape of pion's PermissionHandler.
func (p PeerPolicy) Allowed(ip net.IP) bool { return p.Check(ip) == nil }
