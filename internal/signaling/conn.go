package signaling

import (
	"errors"
	"strconv"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
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
// takes each message read through the checks every client frame passes
// (handleFrame) to the handler of its type, feeds the writer from the
// session's held frames (Next) and keeps what the protocol needs per
// connection (what was written, the ping in flight). The transport itself
// is package websocket; the handlers of the frame types are in handle.go
// and relay.go.
type conn struct {
	ws *websocket.Conn
	s  *session
	ip string
	id identity.Identity // ip's, for the quotas (quota.go)

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

// OnMessage handles a client frame (on the connection's reader): see
// handleFrame below.
func (c *conn) OnMessage(msg []byte) { c.s.hub.handleFrame(c, msg) }

// handleFrame checks one client frame in the order of protocol.md ("Checking
// a client frame") and carries it out. It runs on the connection's reader
// goroutine, so frames of one connection are handled in order.
//
// Every step below follows one pattern: read what it needs from the
// session under s.mu (and answer a refusal there), call the engine with no
// lock held, then apply the result under s.mu. No lock is held across a
// function boundary.
func (h *Hub) handleFrame(c *conn, b []byte) {
	s := c.s
	s.frameMu.Lock() // one frame at a time per session, across connections
	defer s.frameMu.Unlock()

	// 1. Rate budget, before parsing anything.
	switch s.spend(c, h.clock.Now(), h.opts.MsgRate, h.opts.MsgBurst) {
	case budgetAbused:
		h.log.Info("closing connection for rate abuse", "session", string(s.id), "identity", s.identity())
		c.closeWith(closePolicy, "far over the message rate")
		return
	case budgetRefused, budgetStale:
		return
	}
	// 2. Duplicate, 3. shape.
	var f protocol.Frame
	if !s.accept(&f, protocol.Decode(b, &f)) {
		return
	}
	// 4. State and 5. limits, per type; for join and next the proof of
	// work first (pow.go: why it may come before join's bad_state).
	if (f.Type == protocol.TypeJoin || f.Type == protocol.TypeNext) && !h.powPaid(s, &f) {
		return
	}
	switch f.Type {
	case protocol.TypeSignal, protocol.TypeChat, protocol.TypeTyping:
		h.relay(s, &f)
	case protocol.TypeJoin:
		h.join(s, &f)
	case protocol.TypeNext:
		h.next(s, &f)
	case protocol.TypeLeave:
		h.leave(s, &f)
	case protocol.TypeReport:
		h.report(s, &f)
	case protocol.TypePing:
		s.pong()
	case protocol.TypeWatch:
		h.watch(s, f.Counts)
	}
}

// budgetVerdict is the outcome of step 1 for one frame.
type budgetVerdict uint8

const (
	budgetOK      budgetVerdict = iota
	budgetRefused               // answered with rate_limited
	budgetAbused                // far over the rate: the connection is closed
	budgetStale                 // c is no longer the session's connection
)

// spend takes a frame's token from the rate budget (step 1).
func (s *session) spend(c *conn, now time.Time, rate float64, burst int) budgetVerdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase != phaseConnected || s.conn != c {
		return budgetStale
	}
	if s.budget.take(now, rate, burst) {
		return budgetOK
	}
	if s.abuse.add(now, rate) > float64(2*burst) {
		return budgetAbused
	}
	s.errorLocked(protocol.CodeRateLimited, "too many messages; slow down")
	return budgetRefused
}

// accept runs steps 2 and 3 on a decoded frame: a seq already processed is
// ignored, and a decode error is answered. It records f's seq as processed
// either way (a refused frame was processed too).
func (s *session) accept(f *protocol.Frame, decodeErr *protocol.Error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.HasSeq {
		if f.Seq <= s.inSeq {
			return false // re-sent after a resume: already processed
		}
		s.inSeq = f.Seq
	}
	if decodeErr != nil {
		s.errorLocked(decodeErr.Code, decodeErr.Message)
		return false
	}
	return true
}

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
