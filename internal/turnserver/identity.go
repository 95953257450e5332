package turnserver

import (
	"net"
	"net/netip"
	"strings"
)

// identity is what per-client limits count by: the source IPv4 address, or
// the /64 of an IPv6 one (one subscriber usually holds a whole /64, so
// counting single IPv6 addresses would count nothing).
func identity(addr net.Addr) string {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		if p, err := netip.ParseAddrPort(addr.String()); err == nil {
			ap = p
		} else {
			return addr.String()
		}
	}
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64) // cannot fail for an IPv6 address
	return p.String()
}

// The allocation's user id, as the auth handler hands it to pion, joins the
// session id of the credential and the client's identity, so the quota can
// count both when the relay socket is created (pion passes nothing else
// there). A refresh from the same client gives the same user id, which pion
// requires to find the allocation.
const userSep = "|"

func userID(session, ident string) string { return session + userSep + ident }

// splitUser undoes userID. Identities hold no "|"; a user id without one
// (never made by this package) counts as its own identity.
func splitUser(user string) (session, ident string) {
	i := strings.LastIndex(user, userSep)
	if i < 0 {
		return user, user
	}
	return user[:i], user[i+1:]
}
