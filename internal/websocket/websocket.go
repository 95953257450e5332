// Package websocket is the server side of RFC 6455 for many mostly idle
// connections: the HTTP upgrade, reading driven by a poller, batched
// writing of text messages, and the close handshake. It knows nothing of
// what the messages mean; its user gives each connection a Handler for what
// arrives and a Source for what to send.
//
// Why it is built this way rather than on a connection object with a
// blocking ReadMessage and WriteMessage: a goroutine parked in Read, and the
// buffers such a connection keeps, cost every connection several KiB for as
// long as it lives, and most connections of a chat server are idle most of
// the time. So an idle Conn holds no goroutine and no buffer:
//
//   - Reading: with a netpoll.Poller the socket is registered once; when
//     bytes arrive a callback runs on a new goroutine, takes a read buffer
//     from a pool, parses every frame that arrived, hands each message to
//     Handler.OnMessage in order and re-arms the registration (one-shot), so
//     at most one goroutine reads a connection at a time. A message split
//     over several frames is read to its end, blocking for the rest, for at
//     most the message timeout (10 s) from its first frame. Without
//     a poller (not Linux, or a socket it cannot watch) one goroutine per
//     connection reads the same way.
//   - Writing: a writer goroutine runs only while its Source has something
//     to send. It takes every pending message (Source.Next) and writes them,
//     with the ping that covers them, in one write(2): a burst of ICE
//     candidates costs one syscall, not one per message. The Source hands
//     over its own buffers (the messages it keeps anyway, e.g. for a
//     resume); the writer frames them into a pooled buffer for the write.
//
// Frames are parsed with github.com/gobwas/ws, which also does the upgrade,
// so one library serves the server side. Only text messages are carried;
// a binary message closes the connection with 1003.
package websocket

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/strangerchat/stranger/internal/netpoll"
)

// Close codes of RFC 6455 §7.4.1 that this package sends or a user may.
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupported     = 1003
	CloseNoStatus        = 1005 // received without a code; never sent
	ClosePolicyViolation = 1008
	CloseTooLarge        = 1009
	CloseServiceRestart  = 1012
)

// DefaultMaxMessage is the message size limit when Upgrader.MaxMessage is 0.
const DefaultMaxMessage = 64 << 10

// DefaultMessageTimeout is how long a message may take from its first frame
// to its last when Upgrader.MessageTimeout is 0.
const DefaultMessageTimeout = 10 * time.Second

// Counter counts an event (a prometheus.Counter is one).
type Counter interface{ Inc() }

// Handler is what a connection's user does with what arrives. Its methods
// are called one at a time and in order, except OnClose, which may run on
// another goroutine than the reader's, once the reader has stopped.
type Handler interface {
	// OnMessage handles one whole text message. msg is a pooled buffer,
	// valid only until OnMessage returns.
	OnMessage(msg []byte)
	// OnPong handles a pong; payload is the one of the ping it answers, as
	// the peer sent it back, valid only during the call.
	OnPong(payload []byte)
	// OnClose reports the end of the connection, once, after its socket
	// was closed.
	OnClose(e End)
}

// Source holds the messages waiting to be written to a connection.
type Source interface {
	// Next adds to b what to write now: messages, and optionally a ping
	// to send after them. The writer calls it after each Kick, on its own
	// goroutine (concurrently with the Handler's calls), until it leaves b
	// empty; it must not call the Conn's Close, which waits for the writer.
	Next(b *Batch)
}

// End is how a connection ended.
type End struct {
	// Sent is the code of the close frame Close sent; 0 if this side did
	// not close the connection with Close.
	Sent int
	// Err is why: a *CloseError if the peer's close frame was read, else
	// the cause given to Drop, ErrClosed after Close, or the read error.
	Err error
}

// CloseError is a close frame the peer sent.
type CloseError struct{ Code int }

func (e *CloseError) Error() string { return "peer closed with " + strconv.Itoa(e.Code) }

var (
	// ErrClosed: this side closed the connection with Close.
	ErrClosed = errors.New("websocket: connection closed by this side")
	// ErrProtocol: the peer broke RFC 6455; the connection was closed with 1002.
	ErrProtocol = errors.New("websocket: protocol error")
	// ErrTooLarge: a message was over the limit; closed with 1009.
	ErrTooLarge = errors.New("websocket: message over the size limit")
	// ErrBinary: the peer sent a binary message; closed with 1003.
	ErrBinary = errors.New("websocket: binary message")
	// ErrEarlyData: the client sent frames before the handshake's
	// response (RFC 6455 §4.1 forbids it); closed with 1002.
	ErrEarlyData = errors.New("websocket: data before the handshake completed")
	// ErrMessageTimeout: a message was not complete within the
	// Upgrader's MessageTimeout of its first frame; closed with 1008.
	ErrMessageTimeout = errors.New("websocket: message not completed in time")
)

// Upgrader turns HTTP requests into Conns. Its zero value reads each
// connection with a goroutine and limits messages to DefaultMaxMessage.
type Upgrader struct {
	// Poller drives reads, so idle connections hold no goroutine; nil: a
	// goroutine per connection reads.
	Poller *netpoll.Poller
	// MaxMessage limits a message, counted over all its frames; a larger
	// one closes the connection with 1009. 0: DefaultMaxMessage.
	MaxMessage int64
	// MessageTimeout bounds the time from a message's first frame to its
	// last; a message still incomplete then closes the connection with
	// 1008. Without it a peer could hold a reading goroutine (and its
	// buffers) forever with an unfinished fragmented message while
	// answering pings. 0: DefaultMessageTimeout.
	MessageTimeout time.Duration
	// MessageTimeouts, if set, counts the connections closed for that.
	MessageTimeouts Counter
	// Log receives the one warning when a socket cannot be polled.
	Log *slog.Logger
}

// Upgrade answers the WebSocket handshake of r and returns the connection,
// registered with the poller but not read yet: call Start once the user is
// ready for h's calls (Kick and Close work before). On failure the HTTP
// error has been written and nothing is left open. Check the origin before.
func (u *Upgrader) Upgrade(w http.ResponseWriter, r *http.Request, h Handler, src Source) (*Conn, error) {
	nc, rw, _, err := ws.HTTPUpgrader{}.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		return nil, err
	}
	// net/http clears its server's read and write deadlines (ReadTimeout,
	// WriteTimeout) at the hijack, so they do not end the WebSocket; this
	// package sets its own. TestServerTimeoutsClearedAfterUpgrade holds
	// net/http to that.
	c := newConn(nc, h, src, u.MaxMessage)
	if u.MessageTimeout > 0 {
		c.msgTimeout = u.MessageTimeout
	}
	c.msgTimeouts = u.MessageTimeouts
	// Bytes the HTTP server read past the request would be frames sent
	// before the client saw the response; no conforming client sends them.
	if rw.Reader.Buffered() > 0 {
		_ = c.writeControl(ws.OpClose, closeBody(CloseProtocolError, ErrEarlyData.Error()))
		_ = nc.Close()
		return nil, ErrEarlyData
	}
	c.register(u.Poller, u.Log)
	return c, nil
}

// Conn is one server-side WebSocket connection.
type Conn struct {
	nc  net.Conn
	h   Handler
	src Source
	max int64

	desc   *netpoll.Desc // nil: read by readLoop
	rstate atomic.Int32  // a readState
	// msg is the fragmented message being assembled; only the reader
	// touches it, and it is nil between reads.
	msg *[]byte
	// msgDeadline is whether a read deadline bounds the message being
	// read (it could not be read without waiting); only the reader
	// touches it.
	msgDeadline bool
	msgTimeout  time.Duration
	msgTimeouts Counter // nil: not counted

	wstate atomic.Int32 // a writerState
	// closing is set once, by the first of Close, Drop and the reader's
	// end; nil while the connection is open.
	closing atomic.Pointer[closeCause]
	endOnce sync.Once
	// wmu serialises writes to the socket: the writer's batches and the
	// control frames the reader (pong, close echo) and Close send.
	wmu sync.Mutex
}

func newConn(nc net.Conn, h Handler, src Source, maxMessage int64) *Conn {
	if maxMessage <= 0 {
		maxMessage = DefaultMaxMessage
	}
	return &Conn{nc: nc, h: h, src: src, max: maxMessage, msgTimeout: DefaultMessageTimeout}
}

// closeCause is how the connection came to be closed.
type closeCause struct {
	code int   // close code sent by Close; 0: none
	err  error // ErrClosed, Drop's cause or the reader's error
}

// readBufs hold a read burst's bytes; msgBufs a message being assembled.
// Neither is kept by an idle connection.
var (
	readBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	msgBufs  = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
)
