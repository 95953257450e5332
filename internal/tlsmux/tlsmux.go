// Package tlsmux shares one TLS port between HTTPS and TURN over TLS, as
// `--turn-tls-listen` equal to `--addr` asks: after the handshake it looks
// at the first bytes the client sends. A STUN message (every TURN request
// is one) goes to the relay; anything else (an HTTP request line) goes to
// the web server. Clients whose network lets only TLS to 443 out can then
// reach the relay on the node's own address.
package tlsmux

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// stunMagicCookie is bytes 4-7 of every STUN message (RFC 5389 §6); its
// first two bits are zero. No HTTP method starts that way.
const stunMagicCookie = 0x2112A442

// Mux accepts TLS connections from one listener and hands each to HTTP or
// TURN.
type Mux struct {
	ln      net.Listener
	timeout time.Duration
	http    *sub
	turn    *sub
	done    chan struct{}
	once    sync.Once
}

// New starts splitting ln, which must hand out *tls.Conn (tls.NewListener).
// A client has timeout to finish its handshake and send its first bytes.
func New(ln net.Listener, timeout time.Duration) *Mux {
	m := &Mux{ln: ln, timeout: timeout, done: make(chan struct{})}
	m.http = &sub{m: m, conns: make(chan net.Conn)}
	m.turn = &sub{m: m, conns: make(chan net.Conn)}
	go m.accept()
	return m
}

// HTTP is the listener for connections that are not TURN.
func (m *Mux) HTTP() net.Listener { return m.http }

// TURN is the listener for connections that start with a STUN message.
func (m *Mux) TURN() net.Listener { return m.turn }

// Close closes the shared listener; both sub-listeners then fail Accept.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

func (m *Mux) accept() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			_ = m.Close()
			return
		}
		// Handshake and first bytes on a goroutine of the connection's
		// own: a slow client must not hold up the others.
		go m.route(c)
	}
}

func (m *Mux) route(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(m.timeout))
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return
		}
	}
	br := bufio.NewReader(c)
	head, err := br.Peek(8)
	if err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	to := m.http
	if head[0]&0xC0 == 0 && binary.BigEndian.Uint32(head[4:8]) == stunMagicCookie {
		to = m.turn
	}
	pc := &peeked{Conn: c, r: br}
	select {
	case to.conns <- pc:
	case <-m.done:
		_ = c.Close()
	}
}

// peeked replays the bytes read to classify the connection.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

// ConnectionState is the TLS state of the connection, for handlers that
// look for it.
func (p *peeked) ConnectionState() tls.ConnectionState {
	if tc, ok := p.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// sub is one side of the split.
type sub struct {
	m     *Mux
	conns chan net.Conn
}

func (s *sub) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.m.done:
		return nil, net.ErrClosed
	}
}

// Close closes the shared listener: the two sides live and die together.
func (s *sub) Close() error   { return s.m.Close() }
func (s *sub) Addr() net.Addr { return s.m.ln.Addr() }
