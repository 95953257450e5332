package turnserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pion/transport/v5/reuseport"
	"github.com/pion/turn/v5"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/ids"
)

// Server is a running embedded TURN server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock
	policy  PeerPolicy
	quota   quota
	guard   *tcpGuard
	chats   *sessionCache // nil without Config.Sessions
	turn    *turn.Server
	port    int
	tlsPort int // 0: no TURN over TLS
	closed  sync.Once
	err     error

	allocationsTotal  atomic.Uint64
	permissionsDenied atomic.Uint64
	quotaRefused      atomic.Uint64 // all caps together (Stats.QuotaRefused)
	quotaRefusedIP    atomic.Uint64 // of those, by MaxAllocationsPerIP
	authRefused       atomic.Uint64
	endedRefused      atomic.Uint64 // credentials of sessions no longer in a chat
	checkErrors       atomic.Uint64 // Sessions.Chatting failed; request let through
	relayedBytes      atomic.Uint64
	dropped           atomic.Uint64
}

// Start validates cfg, binds the UDP and TCP listeners and starts serving.
// ctx bounds the start-up only; the server runs until Close.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:    cfg,
		log:    log.With("component", "turn"),
		clock:  cfg.Clock,
		policy: PeerPolicy{AllowLoopback: cfg.AllowLoopback},
		quota: quota{perUser: cfg.MaxAllocationsPerUser, perIdentity: cfg.MaxAllocationsPerIP, total: cfg.MaxAllocations,
			byUser: map[string]int{}, byIdent: map[string]int{}},
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if cfg.Sessions != nil {
		s.chats = &sessionCache{sessions: cfg.Sessions, clock: s.clock, answers: map[string]cachedAnswer{}}
	}

	publicIP := net.ParseIP(cfg.PublicIP)
	ipv6 := publicIP.To4() == nil
	udpNet, tcpNet, anyIP := "udp4", "tcp4", "0.0.0.0"
	if ipv6 {
		// One family per server: the relay family follows the listener's
		// (pion's default when a client names none, as browsers do).
		udpNet, tcpNet, anyIP = "udp6", "tcp6", "::"
	}
	host, portText, _ := net.SplitHostPort(cfg.Listen) // checked by Validate
	bind := cfg.RelayBindIP
	if bind == "" {
		bind = host
	}
	if bind == "" {
		bind = anyIP
	}

	sockets := cfg.Sockets
	if sockets == 0 {
		sockets = 1
	}
	udp, tcp, port, err := listen(ctx, udpNet, tcpNet, host, portText, sockets)
	if err != nil {
		return nil, err
	}
	s.port = port

	gen := &relayGenerator{
		srv:  s,
		ipv6: ipv6,
		inner: &turn.RelayAddressGeneratorPortRange{
			RelayAddress: publicIP,
			Address:      bind,
			MinPort:      uint16(cfg.RelayPortMin), //nolint:gosec // Validate bounds it to 1-65535.
			MaxPort:      uint16(cfg.RelayPortMax), //nolint:gosec // idem
		},
	}
	permit := func(client net.Addr, peer net.IP) bool {
		if err := s.policy.Check(peer); err != nil {
			s.permissionsDenied.Add(1)
			// Debug, not Warn: anyone holding a credential can trigger it.
			s.log.Debug("turn permission refused", "client", client, "err", err)
			return false
		}
		return true
	}
	ver := Verifier{Secret: cfg.Secret, Realm: cfg.Realm, Clock: s.clock}
	// The guard's total bounds the file descriptors TCP clients hold; it
	// follows a raised allocation cap but does not shrink with a lowered one,
	// which would let a few idle connections lock everyone out (issue 12,
	// row 5: six of them with --turn-max-allocs 6).
	maxTCP := max(cfg.MaxAllocations, DefaultMaxAllocations)
	s.guard = newTCPGuard(cfg.MaxTCPPerIP, maxTCP, cfg.AuthTimeout, s.clock)
	sc := turn.ServerConfig{
		Realm:         cfg.Realm,
		LoggerFactory: slogFactory{log: s.log},
		AuthHandler: s.authHandler(ver.AuthHandler(func(user string, err error) {
			s.authRefused.Add(1)
			s.log.Debug("turn credential refused", "user", user, "err", err)
		})),
		QuotaHandler: func(user, _ string, src net.Addr) bool {
			which := s.quota.allows(user)
			if which == "" {
				return true
			}
			s.countQuotaRefusal(which)
			s.log.Debug("turn allocation quota reached", "user", user, "cap", which) // no client address: moderation.md keeps raw IPs out of logs
			return false
		},
		EventHandler: turn.EventHandler{
			OnAuth: func(src, _ net.Addr, _, user, _, method string, ok bool) {
				// A forged credential passes the verifier (which
				// cannot see the password) and fails MESSAGE-INTEGRITY.
				if !ok {
					s.authRefused.Add(1)
					s.log.Debug("turn message integrity failed", "user", user, "method", method)
					return
				}
				s.guard.authenticated(src)
			},
			OnAllocationCreated: func(_, _ net.Addr, _, _, _ string, _ net.Addr, _ int) {
				s.allocationsTotal.Add(1)
			},
		},
	}
	for _, c := range udp {
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: wrapUDP(c), RelayAddressGenerator: gen, PermissionHandler: permit,
		})
	}
	// pion serves every TCP connection on its own goroutine with no idle
	// timeout; the guard bounds them per client and in total, refusing at
	// accept (so one client cannot make Accept wait for everyone), and
	// closes those that do not authenticate in time.
	sc.ListenerConfigs = []turn.ListenerConfig{{
		Listener: s.guard.listener(tcp), RelayAddressGenerator: gen, PermissionHandler: permit,
	}}
	closeListeners := func() {
		for _, c := range udp {
			_ = c.Close()
		}
		_ = tcp.Close()
	}
	if cfg.TLSListen != "" {
		tl, err := (&net.ListenConfig{}).Listen(ctx, tcpNet, cfg.TLSListen)
		if err != nil {
			closeListeners()
			return nil, fmt.Errorf("turn-tls-listen %s: %w", cfg.TLSListen, err)
		}
		s.tlsPort = tl.Addr().(*net.TCPAddr).Port
		// The handshake runs on pion's goroutine for the connection, at
		// its first read, within the guard's auth deadline.
		tlsLn := tls.NewListener(s.guard.listener(tl), cfg.TLS)
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: tlsLn, RelayAddressGenerator: gen, PermissionHandler: permit,
		})
		prev := closeListeners
		closeListeners = func() { prev(); _ = tl.Close() }
	}
	if cfg.TLSListener != nil {
		if a, ok := cfg.TLSListener.Addr().(*net.TCPAddr); ok {
			s.tlsPort = a.Port
		}
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: s.guard.listener(cfg.TLSListener), RelayAddressGenerator: gen, PermissionHandler: permit,
		})
	}
	ts, err := turn.NewServer(sc)
	if err != nil {
		closeListeners()
		return nil, fmt.Errorf("turn server: %w", err)
	}
	s.turn = ts
	s.log.Info("turn server listening", "listen", net.JoinHostPort(host, strconv.Itoa(port)),
		"public_ip", cfg.PublicIP, "relay_bind", bind, "relay_ports", fmt.Sprintf("%d-%d", cfg.RelayPortMin, cfg.RelayPortMax),
		"realm", cfg.Realm, "udp_sockets", len(udp), "allow_loopback", cfg.AllowLoopback, "tls_port", s.tlsPort)
	return s, nil
}

// listen binds sockets UDP sockets sharing one port (SO_REUSEPORT spreads
// clients across them by 4-tuple hash, so each client stays on one socket
// and one pion allocation manager) and a TCP listener on the same port. With
// port 0 the kernel picks the UDP port and TCP follows it.
func listen(ctx context.Context, udpNet, tcpNet, host, portText string, sockets int) (udp []net.PacketConn, tcp net.Listener, port int, err error) {
	lc := net.ListenConfig{}
	if sockets > 1 {
		lc.Control = reuseport.Control
	}
	closeAll := func() {
		for _, c := range udp {
			_ = c.Close()
		}
		udp = nil
	}
	// With port 0 the TCP port matching the kernel's UDP pick may be taken;
	// try a few picks.
	for attempt := 0; ; attempt++ {
		first, err := lc.ListenPacket(ctx, udpNet, net.JoinHostPort(host, portText))
		if err != nil {
			return nil, nil, 0, fmt.Errorf("turn-listen udp %s: %w", net.JoinHostPort(host, portText), err)
		}
		udp = append(udp, first)
		growBuffers(first)
		port = first.LocalAddr().(*net.UDPAddr).Port
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		for len(udp) < sockets {
			c, err := lc.ListenPacket(ctx, udpNet, addr)
			if err != nil {
				closeAll()
				return nil, nil, 0, fmt.Errorf("turn-listen udp %s (socket %d): %w", addr, len(udp)+1, err)
			}
			udp = append(udp, c)
			growBuffers(c)
		}
		tcp, err = (&net.ListenConfig{}).Listen(ctx, tcpNet, addr)
		if err == nil {
			return udp, tcp, port, nil
		}
		closeAll()
		if portText != "0" || attempt == 4 {
			return nil, nil, 0, fmt.Errorf("turn-listen tcp %s: %w", addr, err)
		}
	}
}

// listenBuffer is the socket buffer asked for on the shared listening
// socket: every client's traffic queues there while its one read loop is
// descheduled, and the kernel default (208 KiB) overflows in bursts. The
// kernel caps it at net.core.rmem_max / wmem_max.
const listenBuffer = 4 << 20

func growBuffers(c net.PacketConn) {
	if uc, ok := c.(*net.UDPConn); ok {
		// Best effort: a smaller buffer only means more loss under load.
		_ = uc.SetReadBuffer(listenBuffer)
		_ = uc.SetWriteBuffer(listenBuffer)
	}
}

// Port is the UDP and TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// TLSPort is the TURN-over-TLS port, or 0 without Config.TLSListen.
func (s *Server) TLSPort() int { return s.tlsPort }

// Close stops the server and ends all allocations. It is safe to call more
// than once.
func (s *Server) Close() error {
	s.closed.Do(func() {
		if err := s.turn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.err = fmt.Errorf("turn server close: %w", err)
		}
	})
	return s.err
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	AllocationsActive int    // live allocations now
	AllocationsTotal  uint64 // allocations created since start
	PermissionsDenied uint64 // CreatePermission/ChannelBind refused by PeerPolicy
	QuotaRefused      uint64 // Allocate refused by a quota
	QuotaRefusedIP    uint64 // of QuotaRefused, by the per-IP cap
	AuthRefused       uint64 // requests with expired, malformed, other-realm or forged credentials
	EndedRefused      uint64 // requests with a credential of a session no longer in a chat
	SessionCheckErrs  uint64 // Sessions.Chatting failed (the request was let through)
	TCPRefusedIP      uint64 // TCP/TLS connections refused by the per-IP cap
	TCPRefusedTotal   uint64 // TCP/TLS connections refused by the total cap
	TCPAuthTimeouts   uint64 // TCP/TLS connections closed for not authenticating in time
	RelayedBytes      uint64 // payload bytes relayed, both directions
	DroppedPackets    uint64 // datagrams dropped by the bandwidth cap
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	return Stats{
		AllocationsActive: s.quota.active(),
		AllocationsTotal:  s.allocationsTotal.Load(),
		PermissionsDenied: s.permissionsDenied.Load(),
		QuotaRefused:      s.quotaRefused.Load(),
		QuotaRefusedIP:    s.quotaRefusedIP.Load(),
		AuthRefused:       s.authRefused.Load(),
		EndedRefused:      s.endedRefused.Load(),
		SessionCheckErrs:  s.checkErrors.Load(),
		TCPRefusedIP:      s.guard.refusedIdentity.Load(),
		TCPRefusedTotal:   s.guard.refusedTotal.Load(),
		TCPAuthTimeouts:   s.guard.timedOut.Load(),
		RelayedBytes:      s.relayedBytes.Load(),
		DroppedPackets:    s.dropped.Load(),
	}
}

func (s *Server) countQuotaRefusal(which string) {
	s.quotaRefused.Add(1)
	if which == "ip" {
		s.quotaRefusedIP.Add(1)
	}
}

// authHandler adds to the credential check what needs the request: the
// session must still be in a chat (Config.Sessions), and the user id pion
// keeps for the allocation carries the client's identity for the quota.
func (s *Server) authHandler(check turn.AuthHandler) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		session, key, ok := check(ra)
		if !ok {
			return "", nil, false
		}
		if s.chats != nil {
			chatting, err := s.chats.check(ra.Username, ids.SessionID(session))
			if err != nil {
				s.checkErrors.Add(1)
				s.log.Warn("turn: cannot tell whether a session is in a chat; letting the request through", "session", session, "err", err)
			}
			if !chatting {
				s.endedRefused.Add(1)
				s.log.Debug("turn credential of a session no longer in a chat refused", "user", ra.Username)
				return "", nil, false
			}
		}
		return userID(session, identity(ra.SrcAddr)), key, true
	}
}
