package turnserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
)

// Recommended defaults for the flags that fill Config.
const (
	DefaultRealm                  = "stranger"
	DefaultRelayPortMin           = 49152
	DefaultRelayPortMax           = 65535
	DefaultMaxAllocationsPerUser  = 10
	DefaultMaxAllocations         = 10000
	DefaultAllocationLifetime     = 4 * time.Hour
	DefaultBandwidthPerAllocation = 1_000_000 // bytes/s each way, 8 Mbit/s
	DefaultCredentialTTL          = 4 * time.Hour
	DefaultMaxAllocationsPerIP    = 10
	DefaultMaxTCPPerIP            = 16
	DefaultAuthTimeout            = 5 * time.Second

	// MinSecretLength guards the shared secret: every user receives a
	// (username, HMAC) pair, so a short secret can be brute-forced offline
	// and then used to mint credentials at will.
	MinSecretLength = 16

	// minBandwidth is a budget below which not even one full-size UDP
	// datagram per second passes.
	minBandwidth = 2048
)

// Config configures the embedded TURN server. Field comments name the flag
// that sets each one.
type Config struct {
	// Listen is host:port for both UDP and TCP (--turn-listen), e.g.
	// ":3478". Port 0 picks a free port (tests); Server.Port reports it.
	Listen string
	// PublicIP is the relay address advertised to clients in
	// XOR-RELAYED-ADDRESS (--turn-public-ip): the server's public address,
	// or the 1:1 NAT address on a cloud VM.
	PublicIP string
	// RelayBindIP is the local address relay sockets bind to. Empty means
	// the host of Listen, or 0.0.0.0 if Listen has none (the usual case
	// behind a 1:1 NAT, where PublicIP is not a local address).
	RelayBindIP string
	// Realm is the TURN realm (--turn-realm); credentials for another realm
	// are refused.
	Realm string
	// RelayPortMin and RelayPortMax bound relay ports, inclusive
	// (--turn-relay-ports MIN-MAX); open them in the firewall.
	RelayPortMin, RelayPortMax int
	// Secret is the shared secret of the TURN REST API (--turn-secret).
	Secret string
	// AllowLoopback lets relays reach 127.0.0.0/8 and ::1
	// (--turn-allow-loopback); for tests and local development only.
	AllowLoopback bool
	// MaxAllocationsPerUser caps live allocations per session id (the part
	// of the username after the colon); 0 means no cap.
	MaxAllocationsPerUser int
	// MaxAllocations caps live allocations on this server; 0 means no cap.
	MaxAllocations int
	// AllocationLifetime caps how long one allocation may live however often
	// it is refreshed; 0 means no cap (refresh continues while the
	// credential is valid).
	AllocationLifetime time.Duration
	// BandwidthPerAllocation caps relayed bytes per second per allocation,
	// each direction separately (like coturn's max-bps); packets over the
	// budget are dropped, as a congested link would. 0 means no cap.
	BandwidthPerAllocation int64
	// Sockets is the number of UDP sockets sharing the listen port with
	// SO_REUSEPORT, each with its own read loop (pion reads one socket on
	// one goroutine); 0 means 1. Each socket has its own pion allocation
	// manager, so with more than one an RFC 5766 RESERVATION-TOKEN (the
	// RTP/RTCP port pair; browsers never ask for it, turnutils_uclient does
	// unless -c) may land on a socket that does not know it and fail.
	Sockets int
	// TLSListen is host:port for TURN over TLS (turns:, --turn-tls-listen),
	// for clients whose network lets only TLS on 443 or 5349 out; empty:
	// off. Port 0 picks a free port; Server.TLSPort reports it.
	TLSListen string
	// TLSListener, instead of TLSListen, hands out connections whose TLS
	// the caller has already terminated (a port shared with HTTPS,
	// internal/tlsmux); Server.TLSPort reports its port.
	TLSListener net.Listener
	// TLS holds the certificate for TLSListen. Give it a GetCertificate
	// rather than fixed Certificates so a renewed or reloaded certificate
	// is used from the next handshake on.
	TLS *tls.Config
	// Clock drives credential expiry and the lifetime cap; nil is the wall
	// clock.
	Clock clock.Clock

	// Sessions, if not nil, is asked whether the session of a credential
	// is in a chat; requests with a credential of a session that ended, or
	// whose chat ended, are refused (401). Nil: every unexpired credential
	// is accepted (a relay that cannot see the sessions, `stranger turn`
	// without --redis).
	Sessions Sessions
	// MaxAllocationsPerIP caps live allocations per client identity: the
	// source IPv4 address or IPv6 /64 (--turn-max-allocs-per-ip); 0 means
	// no cap.
	MaxAllocationsPerIP int
	// MaxTCPPerIP caps open TCP and TLS TURN connections per client
	// identity (--turn-max-tcp-per-ip); 0 means no cap.
	MaxTCPPerIP int
	// AuthTimeout closes a TCP or TLS TURN connection that has not completed
	// an authenticated request this long after it was accepted
	// (--turn-auth-timeout); 0 means no deadline.
	AuthTimeout time.Duration
}

// Validate reports the first invalid setting, naming its flag.
func (c Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("turn-listen %q: want host:port such as :3478: %w", c.Listen, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("turn-listen %q: port must be 0-65535", c.Listen)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("turn-listen %q: host must be an IP address or empty", c.Listen)
	}
	ip := net.ParseIP(c.PublicIP)
	if ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("turn-public-ip %q: want the IP address clients reach the relay at", c.PublicIP)
	}
	if c.RelayBindIP != "" && net.ParseIP(c.RelayBindIP) == nil {
		return fmt.Errorf("turn relay bind IP %q is not an IP address", c.RelayBindIP)
	}
	if c.Realm == "" {
		return errors.New("turn-realm must not be empty")
	}
	if c.RelayPortMin < 1 || c.RelayPortMax > 65535 || c.RelayPortMin > c.RelayPortMax {
		return fmt.Errorf("turn-relay-ports %d-%d: want 1 <= min <= max <= 65535", c.RelayPortMin, c.RelayPortMax)
	}
	if len(c.Secret) < MinSecretLength {
		return fmt.Errorf("turn-secret must be at least %d characters (it is %d)", MinSecretLength, len(c.Secret))
	}
	if c.MaxAllocationsPerUser < 0 {
		return fmt.Errorf("turn-max-allocs-per-user %d must not be negative", c.MaxAllocationsPerUser)
	}
	if c.MaxAllocations < 0 {
		return fmt.Errorf("turn-max-allocs %d must not be negative", c.MaxAllocations)
	}
	if c.AllocationLifetime < 0 {
		return fmt.Errorf("turn-allocation-lifetime %v must not be negative", c.AllocationLifetime)
	}
	if c.BandwidthPerAllocation != 0 && c.BandwidthPerAllocation < minBandwidth {
		return fmt.Errorf("turn-bandwidth %d bytes/s: want 0 (no cap) or at least %d", c.BandwidthPerAllocation, minBandwidth)
	}
	if c.TLSListen != "" {
		if _, _, err := net.SplitHostPort(c.TLSListen); err != nil {
			return fmt.Errorf("turn-tls-listen %q: want host:port such as :5349: %w", c.TLSListen, err)
		}
		if c.TLS == nil || (c.TLS.GetCertificate == nil && len(c.TLS.Certificates) == 0) {
			return errors.New("turn-tls-listen needs a certificate (--tls-domain or --tls-cert)")
		}
	}
	if c.TLSListener != nil && c.TLSListen != "" {
		return errors.New("turn: TLSListen and TLSListener exclude each other")
	}
	if c.MaxAllocationsPerIP < 0 {
		return fmt.Errorf("turn-max-allocs-per-ip %d must not be negative", c.MaxAllocationsPerIP)
	}
	if c.MaxTCPPerIP < 0 {
		return fmt.Errorf("turn-max-tcp-per-ip %d must not be negative", c.MaxTCPPerIP)
	}
	if c.AuthTimeout < 0 {
		return fmt.Errorf("turn-auth-timeout %v must not be negative", c.AuthTimeout)
	}
	if c.Sockets < 0 {
		return fmt.Errorf("turn sockets %d must not be negative", c.Sockets)
	}
	return nil
}
