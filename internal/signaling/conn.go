package signaling

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Close codes of protocol.md and RFC 6455.
const (
	closeTakenOver   = 4001 // a resume took the session over
	closeEnded       = 4002 // the session ended while this connection was open
	closeServiceRest = websocket.CloseServiceRestart
	closePolicy      = websocket.ClosePolicyViolation
	closeUnsupported = websocket.CloseUnsupportedData
)

const writeTimeout = 10 * time.Second

var (
	errSlowClient = errors.New("client reads too slowly")
	errPongLost   = errors.New("pongs stopped")
)

// conn is one WebSocket connection of a session. One goroutine reads it
// (readLoop); writes are done by a writer goroutine started only while there
// is something to write, so an idle connection costs no writer.
type conn struct {
	ws *websocket.Conn
	s  *session
	ip string

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
	// wmu serialises writes to the socket: the writer's batches and the
	// control frames other goroutines send (close) or gorilla's reader
	// answers (pong, close echo).
	wmu sync.Mutex
}

var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readLoop reads frames until the connection ends, then reports how it ended.
func (c *conn) readLoop() {
	h := c.s.hub
	c.ws.SetReadLimit(protocol.MaxFrameBytes)
	// gorilla's default handlers answer pings and closes with WriteControl
	// from this goroutine; route them through wmu (see writeBatch).
	c.ws.SetPingHandler(func(data string) error {
		err := c.control(websocket.PongMessage, []byte(data))
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	})
	c.ws.SetCloseHandler(func(code int, _ string) error {
		_ = c.control(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""))
		return nil
	})
	c.ws.SetPongHandler(func(data string) error {
		seq, _ := strconv.ParseInt(data, 10, 64)
		s := c.s
		s.mu.Lock()
		c.lastPong = h.clock.Now()
		if c.pingSeq != 0 && seq == c.pingSeq {
			c.pingSeq = 0
			if s.conn == c {
				s.ackLocked(seq)
			}
		}
		s.mu.Unlock()
		return nil
	})
	var err error
	for {
		var mt int
		var r io.Reader
		mt, r, err = c.ws.NextReader()
		if err != nil {
			break
		}
		if mt != websocket.TextMessage {
			c.closeWith(closeUnsupported, "binary frames are not supported")
			err = errors.New("binary frame")
			break
		}
		buf := readBufs.Get().(*bytes.Buffer)
		buf.Reset()
		if _, err = buf.ReadFrom(r); err != nil {
			readBufs.Put(buf)
			break
		}
		h.handleFrame(c, buf.Bytes())
		if buf.Cap() <= 8<<10 {
			readBufs.Put(buf)
		}
	}
	h.connEnded(c, err)
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
		ping := c.pingDue && len(batch) == 0
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
		nc := c.ws.NetConn()
		_ = nc.SetWriteDeadline(deadline)
		_, err := nc.Write(buf)
		if cap(buf) <= 256<<10 {
			*bp = buf[:0]
			frameBufs.Put(bp)
		}
		if err != nil {
			return err
		}
	}
	if ping {
		return c.ws.WriteControl(websocket.PingMessage, strconv.AppendInt(nil, pingSeq, 10), deadline)
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

// control writes a control frame under wmu, waiting at most a second for a
// batch being written (a stuck write ends at its deadline anyway).
func (c *conn) control(kind int, data []byte) error {
	deadline := time.Now().Add(time.Second)
	for !c.wmu.TryLock() {
		if time.Now().After(deadline) {
			return errors.New("writer busy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer c.wmu.Unlock()
	return c.ws.WriteControl(kind, data, deadline)
}

// failLocked drops the connection without a close handshake (the session
// enters its grace period when the reader notices).
func (c *conn) failLocked(err error) {
	if c.closed {
		return
	}
	c.closed = true
	c.s.hub.log.Debug("connection dropped", "session", c.s.id, "err", err)
	go c.ws.Close()
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
		_ = c.control(websocket.CloseMessage, websocket.FormatCloseMessage(code, msg))
		_ = c.ws.Close()
	})
}

// endReason maps how a connection ended to what happens to its session:
// a clean client close ends it (partner: left); everything else is a drop
// that starts the grace period.
func endReason(err error) (end bool, reason match.Reason) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway) {
		return true, match.ReasonLeft
	}
	return false, ""
}
