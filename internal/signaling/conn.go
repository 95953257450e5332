package signaling

import (
	"errors"
	"strconv"
	"time"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/websocket"
)

// Close codes of protocol.md; the RFC 6455 ones come from package websocket.
const (
	closeTakenOver   = 4001 // a resume took the session over
	closeEnded       = 4002 // the session ended while this connection was open
	closePolicy      = websocket.ClosePolicyViolation
	closeServiceRest = websocket.CloseServiceRestart
)

var (
	errSlowClient = errors.New("client reads too slowly")
	errPongLost   = errors.New("pongs stopped")
)

// conn is the glue between one WebSocket connection and its session: it
// hands the messages read to the hub, feeds the writer from the session's
// held frames and keeps what the protocol needs per connection (what was
// written, the ping in flight). The transport itself is package websocket.
type conn struct {
	ws *websocket.Conn
	s  *session
	ip string

	// Guarded by s.mu:
	written  int64  // highest seq written to this connection
	welcome  []byte // written before anything else
	pingDue  bool
	pingSeq  int64 // seq acknowledged by the ping in flight (0: none)
	lastPong time.Time
}

var (
	_ websocket.Handler = (*conn)(nil)
	_ websocket.Source  = (*conn)(nil)
)

// OnMessage handles a client frame (on the connection's reader).
func (c *conn) OnMessage(msg []byte) { c.s.hub.handleFrame(c, msg) }

// OnPong records a pong; its payload is the seq the ping acknowledged.
func (c *conn) OnPong(p []byte) {
	seq, _ := strconv.ParseInt(string(p), 10, 64)
	s := c.s
	s.mu.Lock()
	c.lastPong = s.hub.clock.Now()
	if c.pingSeq != 0 && seq == c.pingSeq {
		c.pingSeq = 0
		if s.conn == c {
			s.ackLocked(seq)
		}
	}
	s.mu.Unlock()
}

// OnClose tells the hub the connection ended.
func (c *conn) OnClose(e websocket.End) { c.s.hub.connEnded(c, e) }

// Next gives the writer the welcome and the held frames after the last one
// written, and a due ping after them; nothing once the connection is no
// longer the session's (taken over by a resume, or ended).
func (c *conn) Next(b *websocket.Batch) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != c {
		return
	}
	more := true
	if c.welcome != nil {
		more = b.Add(c.welcome)
		c.welcome = nil
	}
	for _, f := range s.held {
		if !more {
			break
		}
		if f.seq > c.written {
			more = b.Add(f.data)
			c.written = f.seq
		}
	}
	// A due ping goes right after the batch (its seq covers the batch),
	// not only once nothing is left to write: a client that is sent frames
	// without pause must still be able to acknowledge them, or its
	// unacknowledged bytes grow until it is dropped as too slow.
	if c.pingDue {
		c.pingDue = false
		c.pingSeq = c.written
		if c.pingSeq == 0 {
			c.pingSeq = -1 // nothing written yet: a liveness ping only
		}
		var d [20]byte
		b.Ping(strconv.AppendInt(d[:0], c.pingSeq, 10))
	}
}

// kickLocked wakes the writer for what was just queued under s.mu; the
// writer's Next takes s.mu, so it sees it.
func (c *conn) kickLocked() { c.ws.Kick() }

// failLocked drops the connection without a close handshake (the session
// enters its grace period when the reader notices).
func (c *conn) failLocked(err error) {
	if c.ws.Drop(err) {
		c.s.hub.log.Debug("connection dropped", "session", string(c.s.id), "err", err)
	}
}

// closeWith sends a close frame with code and closes the connection. It may
// wait for a write in progress, so it is called without s.mu.
func (c *conn) closeWith(code int, msg string) { c.ws.Close(code, msg) }

// endReason maps how a connection ended to what happens to its session:
// a clean client close ends it (partner: left); everything else is a drop
// that starts the grace period.
func endReason(err error) (end bool, reason match.Reason) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && (ce.Code == websocket.CloseNormal || ce.Code == websocket.CloseGoingAway) {
		return true, match.ReasonLeft
	}
	return false, ""
}
