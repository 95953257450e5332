package signaling

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/netpoll"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Close codes of protocol.md and RFC 6455.
const (
	closeTakenOver   = 4001 // a resume took the session over
	closeEnded       = 4002 // the session ended while this connection was open
	closeNormal      = 1000
	closeGoingAway   = 1001
	closeProtocol    = 1002
	closeUnsupported = 1003
	closePolicy      = 1008
	closeTooLarge    = 1009
	closeServiceRest = 1012
)

const writeTimeout = 10 * time.Second

var (
	errSlowClient = errors.New("client reads too slowly")
	errPongLost   = errors.New("pongs stopped")
)

// conn is one WebSocket connection of a session. Reading is driven by the
// hub's poller when it has one: a callback reads the frames that arrived and
// returns, so an idle connection holds no goroutine and no read buffer (see
// package netpoll). Without a poller (not Linux) one goroutine per
// connection reads instead (readLoop). Writes are done by a writer
// goroutine started only while there is something to write.
type conn struct {
	nc net.Conn
	s  *session
	ip string

	desc   *netpoll.Desc // nil: read by readLoop
	rstate atomic.Int32  // rsIdle, rsReading, rsDone (poller mode)
	// fragmented message being assembled; only the reader touches it.
	msg *[]byte

	// Guarded by s.mu:
	written  int64  // highest seq written to this connection
	welcome  []byte // written before anything else
	writing  bool   // a writer goroutine is running
	pingDue  bool
	pingSeq  int64 // seq acknowledged by the ping in flight (0: none)
	lastPong time.Time
	closed   bool
	close    int // close code the server sent (0: none)

	closeOnce sync.Once
	endOnce   sync.Once
	// wmu serialises writes to the socket: the writer's batches and the
	// control frames the reader (pong, close echo) and closers send.
	wmu sync.Mutex
}

// Reader states of a polled connection. The poller's callback runs only
// from rsIdle; whoever moves the connection to rsDone reports its end.
const (
	rsIdle int32 = iota
	rsReading
	rsDone
)

// readBufs hold a read burst's bytes; msgBufs a message being assembled.
// Neither is kept by an idle connection.
var (
	readBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	msgBufs  = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
)

// register puts c under the poller, if there is one and c's socket can be
// polled. It runs before c is published: the callback does not read until
// start arms it.
func (c *conn) register(p *netpoll.Poller, log *slog.Logger) {
	c.rstate.Store(rsReading) // until start: closers leave the end to us
	if p == nil {
		return
	}
	pc, ok := c.nc.(netpoll.Conn)
	if !ok {
		return
	}
	d, err := p.Add(pc, c.onReadable)
	if err != nil {
		log.Warn("netpoll: reading with a goroutine instead", "err", err)
		return
	}
	c.desc = d
}

// start begins reading c, once it has a session.
func (c *conn) start() {
	if c.desc == nil {
		go c.readLoop()
		return
	}
	c.rearm()
}

// onReadable is the poller's callback: it reads the frames that arrived,
// then re-arms the poller.
func (c *conn) onReadable() {
	if !c.rstate.CompareAndSwap(rsIdle, rsReading) {
		return
	}
	br := readBufs.Get().(*bufio.Reader)
	br.Reset(c.nc)
	err := c.readFrames(br, false)
	br.Reset(nil)
	readBufs.Put(br)
	if err != nil {
		c.ended(err)
		return
	}
	c.rearm()
}

// rearm hands c back to the poller (level-triggered: bytes that are
// already waiting call back at once).
func (c *conn) rearm() {
	c.rstate.Store(rsIdle)
	if err := c.desc.Resume(); err != nil {
		// Closed meanwhile; if the closer already saw rsIdle, it reported
		// the end and this is a no-op.
		if c.rstate.CompareAndSwap(rsIdle, rsDone) {
			c.ended(err)
		}
	}
}

// readLoop reads frames until the connection ends (no poller).
func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 512)
	c.ended(c.readFrames(br, true))
}

// ended reports the end of the connection to the hub, once.
func (c *conn) ended(err error) {
	c.rstate.Store(rsDone)
	c.endOnce.Do(func() { c.s.hub.connEnded(c, err) })
}

// closeError is the close frame a client sent.
type closeError struct{ code int }

func (e *closeError) Error() string { return "client closed with " + strconv.Itoa(e.code) }

var (
	errClosed      = errors.New("connection closed by the server")
	errProtocol    = errors.New("websocket protocol error")
	errTooLarge    = errors.New("frame over the size limit")
	errBinaryFrame = errors.New("binary frame")
)

// readFrames reads and handles frames from br. Unless all is set it stops,
// without blocking, once br holds no more bytes and no message is half read:
// the poller calls again when more arrive. A message split over several
// frames is read to its end, blocking for the rest.
func (c *conn) readFrames(br *bufio.Reader, all bool) error {
	h := c.s.hub
	var hdr [ws.MaxHeaderSize - 2]byte
	var ctl [125]byte
	for {
		fh, err := ws.ReadHeaderBuffer(br, hdr[:])
		if err != nil {
			if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
				return c.protocolError("bad frame length")
			}
			return err
		}
		st := ws.StateServerSide
		if c.msg != nil {
			st |= ws.StateFragmented
		}
		if err := ws.CheckHeader(fh, st); err != nil {
			return c.protocolError(err.Error())
		}
		switch {
		case fh.OpCode.IsControl():
			// CheckHeader: final and at most 125 bytes.
			p := ctl[:fh.Length]
			if _, err := io.ReadFull(br, p); err != nil {
				return err
			}
			ws.Cipher(p, fh.Mask, 0)
			if err := c.control(fh.OpCode, p); err != nil {
				return err
			}
		case fh.OpCode == ws.OpBinary || (fh.OpCode == ws.OpContinuation && c.msg == nil):
			if fh.OpCode == ws.OpBinary {
				c.closeWith(closeUnsupported, "binary frames are not supported")
				return errBinaryFrame
			}
			return c.protocolError("continuation frame without a message")
		default: // text, or a continuation of one
			if fh.OpCode == ws.OpText && c.msg != nil {
				return c.protocolError("new message inside a fragmented one")
			}
			if c.msg == nil {
				c.msg = msgBufs.Get().(*[]byte)
			}
			m := *c.msg
			n := len(m)
			if int64(n)+fh.Length > protocol.MaxFrameBytes {
				c.closeWith(closeTooLarge, "")
				return errTooLarge
			}
			m = slices.Grow(m, int(fh.Length))[:n+int(fh.Length)]
			*c.msg = m
			if _, err := io.ReadFull(br, m[n:]); err != nil {
				return err
			}
			ws.Cipher(m[n:], fh.Mask, 0)
			if fh.Fin {
				bp := c.msg
				c.msg = nil
				h.handleFrame(c, m)
				if cap(m) <= 8<<10 {
					*bp = m[:0]
					msgBufs.Put(bp)
				}
			}
		}
		if !all && c.msg == nil && br.Buffered() == 0 {
			return nil
		}
	}
}

// control handles a ping, pong or close frame from the client.
func (c *conn) control(op ws.OpCode, p []byte) error {
	switch op {
	case ws.OpPing:
		if err := c.writeControl(ws.OpPong, p); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	case ws.OpPong:
		c.pong(p)
	case ws.OpClose:
		code := 1005 // no status received (RFC 6455 §7.1.5)
		var echo []byte
		switch {
		case len(p) == 1:
			return c.protocolError("close frame of one byte")
		case len(p) >= 2:
			code = int(binary.BigEndian.Uint16(p))
			echo = p[:2]
		}
		_ = c.writeControl(ws.OpClose, echo)
		return &closeError{code: code}
	}
	return nil
}

// pong records a pong; its payload is the seq the ping acknowledged.
func (c *conn) pong(p []byte) {
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

func (c *conn) protocolError(msg string) error {
	c.closeWith(closeProtocol, msg)
	return errProtocol
}

// kickLocked starts the writer if there is anything for it and none runs.
func (c *conn) kickLocked() {
	if c.writing || c.closed {
		return
	}
	c.writing = true
	go c.writeLoop()
}

// writeLoop writes pending frames (and a due ping) in order, then exits.
func (c *conn) writeLoop() {
	s := c.s
	var batch [][]byte
	for {
		batch = batch[:0]
		s.mu.Lock()
		if c.closed || s.conn != c {
			c.writing = false
			s.mu.Unlock()
			return
		}
		if c.welcome != nil {
			batch = append(batch, c.welcome)
			c.welcome = nil
		}
		for _, f := range s.held {
			if f.seq > c.written {
				batch = append(batch, f.data)
				c.written = f.seq
				if len(batch) >= 64 {
					break
				}
			}
		}
		// A due ping goes right after the batch (its seq covers the batch),
		// not only once nothing is left to write: a client that is sent
		// frames without pause must still be able to acknowledge them, or
		// its unacknowledged bytes grow until it is dropped as too slow.
		ping := c.pingDue
		var pingSeq int64
		if ping {
			c.pingDue = false
			pingSeq = c.written
			if pingSeq == 0 {
				pingSeq = -1 // nothing written yet: a liveness ping only
			}
			c.pingSeq = pingSeq
		}
		if len(batch) == 0 && !ping {
			c.writing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()

		err := c.writeBatch(batch, ping, pingSeq)
		if err != nil {
			s.mu.Lock()
			c.writing = false
			c.failLocked(err)
			s.mu.Unlock()
			return
		}
	}
}

var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// writeBatch writes frames, and then a ping, with one write(2) for the
// frames: a burst of ICE candidates costs one syscall, not one per frame.
// The frames are encoded here rather than through gorilla's per-message
// writer, which flushes each message on its own; wmu keeps gorilla's control
// frames (pings, pongs, close) from interleaving with them.
func (c *conn) writeBatch(batch [][]byte, ping bool, pingSeq int64) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline := time.Now().Add(writeTimeout)
	if len(batch) > 0 {
		bp := frameBufs.Get().(*[]byte)
		buf := (*bp)[:0]
		for _, b := range batch {
			buf = appendTextFrame(buf, b)
		}
		_ = c.nc.SetWriteDeadline(deadline)
		_, err := c.nc.Write(buf)
		if cap(buf) <= 256<<10 {
			*bp = buf[:0]
			frameBufs.Put(bp)
		}
		if err != nil {
			return err
		}
	}
	if ping {
		var b [20]byte
		return c.writeControlLocked(ws.OpPing, strconv.AppendInt(b[:0], pingSeq, 10), deadline)
	}
	return nil
}

// appendTextFrame appends one final, unmasked text frame (RFC 6455 §5.2;
// a server never masks).
func appendTextFrame(dst, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x81, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x81, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x81, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, payload...)
}

// writeControl writes a control frame under wmu, waiting at most a second
// for a batch being written (a stuck write ends at its deadline anyway).
func (c *conn) writeControl(op ws.OpCode, data []byte) error {
	deadline := time.Now().Add(time.Second)
	for !c.wmu.TryLock() {
		if time.Now().After(deadline) {
			return errors.New("writer busy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer c.wmu.Unlock()
	return c.writeControlLocked(op, data, deadline)
}

// writeControlLocked writes one unmasked control frame (at most 125 bytes
// of data); the caller holds wmu.
func (c *conn) writeControlLocked(op ws.OpCode, data []byte, deadline time.Time) error {
	var b [2 + 125]byte
	b[0], b[1] = 0x80|byte(op), byte(len(data))
	n := 2 + copy(b[2:], data)
	_ = c.nc.SetWriteDeadline(deadline)
	_, err := c.nc.Write(b[:n])
	return err
}

// failLocked drops the connection without a close handshake (the session
// enters its grace period when the reader notices).
func (c *conn) failLocked(err error) {
	if c.closed {
		return
	}
	c.closed = true
	c.s.hub.log.Debug("connection dropped", "session", c.s.id, "err", err)
	go c.shutdown()
}

// closeWith sends a close frame with code and closes the connection.
func (c *conn) closeWith(code int, msg string) {
	c.closeOnce.Do(func() {
		s := c.s
		s.mu.Lock()
		c.closed = true
		if c.close == 0 {
			c.close = code
		}
		s.mu.Unlock()
		_ = c.writeControl(ws.OpClose, closeBody(code, msg))
		c.shutdown()
	})
}

// closeBody is a close frame's payload: the code and as much of msg as fits.
func closeBody(code int, msg string) []byte {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 125), uint16(code))
	if len(msg) > 123 {
		msg = msg[:123]
	}
	return append(b, msg...)
}

// shutdown closes the socket. A polled connection with no callback running
// has nobody to notice, so its end is reported here.
func (c *conn) shutdown() {
	c.closeNet()
	if c.rstate.CompareAndSwap(rsIdle, rsDone) {
		go c.ended(errClosed)
	}
}

// closeNet unregisters and closes the socket.
func (c *conn) closeNet() {
	if c.desc != nil {
		c.desc.Remove()
	}
	_ = c.nc.Close()
}

// endReason maps how a connection ended to what happens to its session:
// a clean client close ends it (partner: left); everything else is a drop
// that starts the grace period.
func endReason(err error) (end bool, reason match.Reason) {
	var ce *closeError
	if errors.As(err, &ce) && (ce.code == closeNormal || ce.code == closeGoingAway) {
		return true, match.ReasonLeft
	}
	return false, ""
}
