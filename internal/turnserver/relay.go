package turnserver

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/turn/v5"
	"golang.org/x/time/rate"

	"github.com/strangerchat/stranger/internal/clock"
)

var (
	errQuota       = errors.New("turn allocation quota reached")
	errTCPRelay    = errors.New("turn TCP relay allocations (RFC 6062) are not offered")
	errWrongFamily = errors.New("turn relay address family not offered")
)

// quota counts live allocations per session (the credential's user), per
// client identity (identity) and in total. The count is taken when the
// relay socket is created and released when it closes, so it cannot drift
// from what pion holds, and a burst of concurrent Allocate requests cannot
// slip past the check (pion's QuotaHandler alone is a check-then-act). user
// is pion's user id, userID(session, identity).
type quota struct {
	perUser, perIdentity, total int

	mu      sync.Mutex
	byUser  map[string]int
	byIdent map[string]int
	live    int
}

// refusal names the cap that refuses one more allocation for user, or ""
// if none does.
func (q *quota) refusal(user string) string {
	session, ident := splitUser(user)
	switch {
	case q.total != 0 && q.live >= q.total:
		return "total"
	case q.perUser != 0 && q.byUser[session] >= q.perUser:
		return "credential"
	case q.perIdentity != 0 && q.byIdent[ident] >= q.perIdentity:
		return "ip"
	}
	return ""
}

func (q *quota) allows(user string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.refusal(user)
}

func (q *quota) take(user string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r := q.refusal(user); r != "" {
		return r
	}
	session, ident := splitUser(user)
	q.live++
	q.byUser[session]++
	q.byIdent[ident]++
	return ""
}

func (q *quota) release(user string) {
	session, ident := splitUser(user)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.live--
	if q.byUser[session]--; q.byUser[session] <= 0 {
		delete(q.byUser, session)
	}
	if q.byIdent[ident]--; q.byIdent[ident] <= 0 {
		delete(q.byIdent, ident)
	}
}

func (q *quota) active() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.live
}

// relayGenerator wraps pion's port-range generator with the quota, the
// lifetime cap and the bandwidth budget, all of which live on the relay
// socket it hands out.
type relayGenerator struct {
	inner *turn.RelayAddressGeneratorPortRange
	srv   *Server
	ipv6  bool // family of the advertised relay address
}

func (g *relayGenerator) Validate() error { return g.inner.Validate() }

func (g *relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if (conf.Network == "udp6") != g.ipv6 {
		return nil, nil, fmt.Errorf("%w: %s", errWrongFamily, conf.Network)
	}
	s := g.srv
	if which := s.quota.take(conf.UserID); which != "" {
		s.countQuotaRefusal(which)
		return nil, nil, fmt.Errorf("%w (%s) for %q", errQuota, which, conf.UserID)
	}
	conn, addr, err := g.inner.AllocatePacketConn(conf)
	if err != nil {
		s.quota.release(conf.UserID)
		return nil, nil, fmt.Errorf("turn relay port: %w", err)
	}
	rc := &relayConn{PacketConn: wrapUDP(conn), srv: s, user: conf.UserID}
	if bw := s.cfg.BandwidthPerAllocation; bw > 0 {
		// One second of burst, so a video keyframe passes whole.
		rc.in = rate.NewLimiter(rate.Limit(bw), int(bw))
		rc.out = rate.NewLimiter(rate.Limit(bw), int(bw))
	}
	if life := s.cfg.AllocationLifetime; life > 0 {
		// Closing the socket ends pion's read loop on it, which deletes
		// the allocation: the only way to end one from outside pion.
		rc.mu.Lock()
		rc.timer = s.clock.AfterFunc(life, func() {
			s.log.Debug("turn allocation reached its lifetime cap", "user", conf.UserID, "relay", addr)
			_ = rc.Close()
		})
		rc.mu.Unlock()
	}
	return rc, addr, nil
}

func (g *relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	// Browsers never ask for TCP relays; offering them would only widen
	// what the relay can reach (TCP connects to arbitrary peers).
	return nil, nil, errTCPRelay
}

func (g *relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// relayConn is one allocation's relay socket.
type relayConn struct {
	net.PacketConn
	srv     *Server
	user    string
	in, out *rate.Limiter // nil without a bandwidth cap
	once    sync.Once

	mu    sync.Mutex // guards timer, which may fire before it is stored
	timer clock.Timer
}

// ReadFrom returns the next datagram from a peer within budget; datagrams
// over budget are dropped here and never reach the client.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if c.in != nil && !c.in.AllowN(time.Now(), n) {
			c.srv.dropped.Add(1)
			continue
		}
		c.srv.relayedBytes.Add(uint64(n))
		return n, addr, nil
	}
}

// WriteTo sends a client's datagram to a peer if within budget; over budget
// it is dropped silently, as UDP may be.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.out != nil && !c.out.AllowN(time.Now(), len(p)) {
		c.srv.dropped.Add(1)
		return len(p), nil
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	c.srv.relayedBytes.Add(uint64(n))
	return n, err
}

// Close is idempotent: the lifetime cap closes the socket, and pion closes
// it again while deleting the allocation.
func (c *relayConn) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		if c.timer != nil {
			c.timer.Stop()
		}
		c.mu.Unlock()
		err = c.PacketConn.Close()
		c.srv.quota.release(c.user)
	})
	return err
}
