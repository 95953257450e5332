package turnserver

import (
	"net"
	"strconv"
	"time"

	"github.com/strangerchat/stranger/internal/protocol"
)

// Credentials is what a node needs to fill welcome.iceServers: the STUN and
// TURN URLs it advertises and the secret it shares with the TURN server
// (embedded or an external coturn with static-auth-secret).
type Credentials struct {
	STUN     []string      // e.g. "stun:turn.example.org:3478"
	TURNURLs []string      // e.g. "turn:turn.example.org:3478?transport=udp"
	Secret   string        // shared secret; empty means no TURN
	TTL      time.Duration // how long minted credentials stay valid
}

// ICEServers returns the ICE servers for one session at time now. TURN
// credentials are freshly minted on every call, so a resumed session gets
// renewed ones. Without a secret or TURN URLs only STUN is offered; with
// neither the result is empty (not nil), which encodes as [].
func (c Credentials) ICEServers(session string, now time.Time) []protocol.ICEServer {
	servers := make([]protocol.ICEServer, 0, 2)
	if len(c.STUN) > 0 {
		servers = append(servers, protocol.ICEServer{URLs: append([]string(nil), c.STUN...)})
	}
	if len(c.TURNURLs) > 0 && c.Secret != "" {
		user, cred := Mint(c.Secret, session, now.Add(c.TTL))
		servers = append(servers, protocol.ICEServer{
			URLs:       append([]string(nil), c.TURNURLs...),
			Username:   user,
			Credential: cred,
		})
	}
	return servers
}

// HasTURN reports whether ICEServers will include a TURN server; the web
// client disables "Hide my IP" without one.
func (c Credentials) HasTURN() bool { return len(c.TURNURLs) > 0 && c.Secret != "" }

// URLs are the TURN URLs of a relay at host:port (UDP and TCP) and, with
// tlsPort > 0, TURN over TLS at tlsHost:tlsPort, in the order clients should
// try them: UDP first (cheapest), then TCP, then TLS for networks that let
// only TLS out. tlsHost must be a name the certificate covers: browsers
// check it.
func URLs(host string, port int, tlsHost string, tlsPort int) []string {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	urls := []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
	if tlsPort > 0 {
		urls = append(urls, "turns:"+net.JoinHostPort(tlsHost, strconv.Itoa(tlsPort))+"?transport=tcp")
	}
	return urls
}
