package signaling

import (
	"bytes"
	"errors"
	"io"
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
}

var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readLoop reads frames until the connection ends, then reports how it ended.
func (c *conn) readLoop() {
	h := c.s.hub
	c.ws.SetReadLimit(protocol.MaxFrameBytes)
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

		var err error
		deadline := time.Now().Add(writeTimeout)
		if len(batch) > 0 {
			_ = c.ws.SetWriteDeadline(deadline)
			for _, b := range batch {
				if err = c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
					break
				}
			}
		}
		if err == nil && ping {
			err = c.ws.WriteControl(websocket.PingMessage, strconv.AppendInt(nil, pingSeq, 10), deadline)
		}
		if err != nil {
			s.mu.Lock()
			c.writing = false
			c.failLocked(err)
			s.mu.Unlock()
			return
		}
	}
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
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, msg), time.Now().Add(time.Second))
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
