package turnserver

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
)

// tcpGuard bounds the TCP and TLS TURN connections. pion serves each on its
// own goroutine for as long as the client keeps it open, authenticated or
// not; without a bound, idle sockets from one address fill the listener
// (issue 12, row 5). The guard refuses a connection at accept when its
// client identity already holds perIdentity of them or the server holds
// total, and closes a connection that has not completed an authenticated
// request within authTimeout. The caps count plain TCP and TLS together.
type tcpGuard struct {
	perIdentity, total int           // 0: no cap
	authTimeout        time.Duration // 0: no deadline
	clock              clock.Clock

	refusedIdentity, refusedTotal, timedOut atomic.Uint64

	mu      sync.Mutex
	byIdent map[string]int
	open    int
	byAddr  map[string]*guardedConn // remote address -> connection, until authenticated
}

func newTCPGuard(perIdentity, total int, authTimeout time.Duration, c clock.Clock) *tcpGuard {
	return &tcpGuard{perIdentity: perIdentity, total: total, authTimeout: authTimeout, clock: c,
		byIdent: map[string]int{}, byAddr: map[string]*guardedConn{}}
}

// listener wraps ln: Accept hands out only admitted connections; refused
// ones are closed at once, so they hold nothing.
func (g *tcpGuard) listener(ln net.Listener) net.Listener { return guardListener{ln, g} }

type guardListener struct {
	net.Listener
	g *tcpGuard
}

func (l guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := l.g.admit(c); gc != nil {
			return gc, nil
		}
		_ = c.Close()
	}
}

func (g *tcpGuard) admit(c net.Conn) *guardedConn {
	ident := identity(c.RemoteAddr())
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total != 0 && g.open >= g.total {
		g.refusedTotal.Add(1)
		return nil
	}
	if g.perIdentity != 0 && g.byIdent[ident] >= g.perIdentity {
		g.refusedIdentity.Add(1)
		return nil
	}
	g.open++
	g.byIdent[ident]++
	gc := &guardedConn{Conn: c, g: g, ident: ident, addr: c.RemoteAddr().String()}
	if g.authTimeout > 0 {
		g.byAddr[gc.addr] = gc
		gc.timer = g.clock.AfterFunc(g.authTimeout, gc.authDeadline)
	}
	return gc
}

// authenticated is called with the source address of every request that
// passed authentication; a TCP or TLS connection from that address is
// relieved of its deadline. (A UDP source address never names a guarded
// connection.)
func (g *tcpGuard) authenticated(src net.Addr) {
	g.mu.Lock()
	gc := g.byAddr[src.String()]
	delete(g.byAddr, src.String())
	g.mu.Unlock()
	if gc != nil {
		gc.timer.Stop()
	}
}

func (g *tcpGuard) release(gc *guardedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open--
	if g.byIdent[gc.ident]--; g.byIdent[gc.ident] <= 0 {
		delete(g.byIdent, gc.ident)
	}
	if g.byAddr[gc.addr] == gc {
		delete(g.byAddr, gc.addr)
	}
}

// guardedConn is an admitted connection; Close gives its place back.
type guardedConn struct {
	net.Conn
	g     *tcpGuard
	ident string
	addr  string
	timer clock.Timer // nil without an auth deadline
	once  sync.Once
}

func (c *guardedConn) authDeadline() {
	c.g.mu.Lock()
	pending := c.g.byAddr[c.addr] == c
	c.g.mu.Unlock()
	if pending {
		c.g.timedOut.Add(1)
		_ = c.Close()
	}
}

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.timer != nil {
			c.timer.Stop()
		}
		c.g.release(c)
	})
	return err
}
