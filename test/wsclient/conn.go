package wsclient

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Timeout bounds a dial (unless DialOptions say otherwise), one write, and
// Close's wait for the server's end of the close handshake: a test must
// fail, not hang, when the server stops reading.
const Timeout = 5 * time.Second

// ErrClosed is wrapped by Next when the connection has ended.
var ErrClosed = errors.New("connection closed")

// ErrBadFrame is wrapped by the end of a connection whose server sent a
// frame that is not one JSON object in a text frame; the client stops
// reading there.
var ErrBadFrame = errors.New("bad server frame")

// DialOptions change how Dial connects.
type DialOptions struct {
	// Header is sent with the handshake (e.g. an Origin).
	Header http.Header
	// IgnorePings makes the client swallow server pings without answering
	// (a client whose pongs stopped).
	IgnorePings bool
	// HandshakeTimeout bounds the dial and upgrade (default Timeout).
	HandshakeTimeout time.Duration
	// From is the local address to connect from, e.g. "127.0.0.3": tests
	// stand in for different people with different loopback addresses.
	// Empty: the system's choice.
	From string
	// ManualPow turns off the proof-of-work solver (pow.go): the test sends
	// pow itself, or none.
	ManualPow bool
}

// event is what the reader goroutine hands over: a frame, or the end of the
// connection.
type event struct {
	frame Frame
	raw   []byte
	err   error // set on the last event: how the connection ended
}

// Conn is one WebSocket to a node. A goroutine reads the server's frames
// into a queue; Next takes them in order and checks their seq. Next is for
// one goroutine at a time; the other methods may be called from any.
type Conn struct {
	ws      *websocket.Conn
	events  chan event
	release chan struct{} // closed by Release: the reader stops queueing
	done    chan struct{} // closed when the reader has ended
	readErr error         // how the reader ended; written before done is closed
	pings   atomic.Int64

	writeMu sync.Mutex // one writer at a time, as gorilla/websocket requires

	mu    sync.Mutex
	last  int64 // highest seq taken (and checked) by Next
	ended error // the end, once Next has taken it from the queue

	closeOnce   sync.Once
	releaseOnce sync.Once

	manualPow bool
	powMu     sync.Mutex
	pow       string // the solution of the last challenge received (pow.go)
}

// Dial connects to rawURL (ws://host/ws, optionally with a query) and
// returns the connection before any frame is read, plus the HTTP response
// of the handshake (also on a refused upgrade). It does not read the
// welcome; see ReadWelcome.
func Dial(ctx context.Context, rawURL string, o DialOptions) (*Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: cmp.Or(o.HandshakeTimeout, Timeout)}
	if o.From != "" {
		ip := net.ParseIP(o.From)
		if ip == nil {
			return nil, nil, fmt.Errorf("dial %s: From %q is not an IP address", rawURL, o.From)
		}
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		d.NetDialContext = nd.DialContext
	}
	ws, resp, err := d.DialContext(ctx, rawURL, o.Header)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("HTTP %s: %w", resp.Status, err)
		}
		return nil, resp, fmt.Errorf("dial %s: %w", rawURL, err)
	}
	c := &Conn{ws: ws, events: make(chan event, 4096), release: make(chan struct{}), done: make(chan struct{}), manualPow: o.ManualPow}
	ws.SetPingHandler(func(data string) error {
		c.pings.Add(1)
		if o.IgnorePings {
			return nil
		}
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		// A pong after the client's close, or one that timed out, is not a
		// reason to stop reading: whether it came late is the server's call.
		ne, isNet := errors.AsType[net.Error](err)
		if errors.Is(err, websocket.ErrCloseSent) || isNet && ne.Timeout() {
			return nil
		}
		return err
	})
	go c.read()
	return c, resp, nil
}

func (c *Conn) read() {
	defer close(c.done)
	for {
		ev := c.readOne()
		if ev.err != nil {
			c.readErr = ev.err
		} else {
			c.solve(ev.frame)
		}
		select {
		case c.events <- ev:
		case <-c.release:
			return
		}
		if ev.err != nil {
			return
		}
	}
}

func (c *Conn) readOne() event {
	mt, b, err := c.ws.ReadMessage()
	if err != nil {
		return event{err: err}
	}
	if mt != websocket.TextMessage {
		return event{err: fmt.Errorf("%w: a non-text frame (type %d)", ErrBadFrame, mt)}
	}
	f, err := decodeFrame(b)
	if err != nil {
		return event{err: err}
	}
	return event{frame: f, raw: b}
}

// Next returns the next frame, waiting until ctx is done. The seq of every
// frame but welcome must be one more than the previous one; a gap or a
// repeat is an error (the frame is returned with it). When the connection
// has ended it returns an error wrapping ErrClosed and the end's cause.
func (c *Conn) Next(ctx context.Context) (Frame, error) {
	if err := c.endErr(); err != nil {
		return nil, err
	}
	select {
	case ev := <-c.events:
		return c.take(ev)
	case <-c.release:
		return nil, c.released()
	case <-ctx.Done():
		return nil, fmt.Errorf("no frame (last seq %d): %w", c.Last(), ctx.Err())
	}
}

// NextWithin is Next with a timeout of d.
func (c *Conn) NextWithin(d time.Duration) (Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	f, err := c.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("no frame within %v (last seq %d)", d, c.Last())
	}
	return f, err
}

// TryNext is Next without waiting: nil, nil when no frame is queued.
func (c *Conn) TryNext() (Frame, error) {
	if err := c.endErr(); err != nil {
		return nil, err
	}
	select {
	case ev := <-c.events:
		return c.take(ev)
	case <-c.release:
		return nil, c.released()
	default:
		return nil, nil
	}
}

// errReleased is the end of a connection a Release discarded.
var errReleased = errors.New("connection released")

func (c *Conn) released() error {
	_, err := c.take(event{err: errReleased})
	return err
}

func (c *Conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended != nil {
		return fmt.Errorf("%w: %w", ErrClosed, c.ended)
	}
	return nil
}

func (c *Conn) take(ev event) (Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.err != nil {
		c.ended = ev.err
		return nil, fmt.Errorf("%w: %w", ErrClosed, ev.err)
	}
	if ev.frame.Type() == "welcome" {
		return ev.frame, nil
	}
	seq, ok := ev.frame.Int("seq")
	if !ok {
		return ev.frame, fmt.Errorf("frame without integer seq: %s", ev.raw)
	}
	if seq != c.last+1 {
		return ev.frame, fmt.Errorf("seq %d after %d (want %d): %s", seq, c.last, c.last+1, ev.raw)
	}
	c.last = seq
	return ev.frame, nil
}

// ReadWelcome takes the first frame and checks that it is a welcome with a
// session and a resume token.
func (c *Conn) ReadWelcome(ctx context.Context) (Frame, error) {
	w, err := c.Next(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the welcome: %w", err)
	}
	if w.Type() != "welcome" {
		return w, fmt.Errorf("first frame %s, want welcome", w)
	}
	if w.Str("session") == "" || w.Str("resumeToken") == "" {
		return w, fmt.Errorf("welcome without session or resumeToken: %s", w)
	}
	return w, nil
}

// Last is the highest server seq taken by Next.
func (c *Conn) Last() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// SetLast sets the seq the next frame must follow: on a resumed connection
// the last the client asked for, so the check runs on across connections.
func (c *Conn) SetLast(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = n
}

// Pings is how many server pings the connection has seen.
func (c *Conn) Pings() int64 { return c.pings.Load() }

// Done is closed when the reader has ended: the connection is gone.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is how the connection ended (a *websocket.CloseError carries the
// server's close code); nil while it is open and Next has not taken its end.
func (c *Conn) Err() error {
	c.mu.Lock()
	taken := c.ended
	c.mu.Unlock()
	if taken != nil {
		return taken
	}
	select {
	case <-c.done:
		return c.readErr
	default:
		return nil
	}
}

// CloseCode returns the close status of a connection's end, 1006
// (websocket.CloseAbnormalClosure) when there was no close frame.
func CloseCode(err error) int {
	if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
		return ce.Code
	}
	return websocket.CloseAbnormalClosure
}

// Send writes one text frame: a string or []byte as is, anything else
// marshalled to JSON.
func (c *Conn) Send(v any) error {
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return fmt.Errorf("marshal: %w", err)
		}
	}
	return c.write(websocket.TextMessage, c.withPow(b))
}

// SendBinary writes a binary frame.
func (c *Conn) SendBinary(b []byte) error { return c.write(websocket.BinaryMessage, b) }

func (c *Conn) write(mt int, b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(Timeout))
	return c.ws.WriteMessage(mt, b)
}

// Close sends a close frame with code (1000 and 1001 end the session on
// the server, others start its grace period) and waits, at most Timeout,
// for the server to close the connection.
func (c *Conn) Close(code int) {
	c.closeOnce.Do(func() {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		select {
		case <-c.done:
		case <-time.After(Timeout):
		}
		_ = c.ws.Close()
	})
}

// Drop closes the TCP connection without a close frame, as a lost network
// would: the server starts the session's grace period.
func (c *Conn) Drop() {
	c.closeOnce.Do(func() { _ = c.ws.NetConn().Close() })
}

// Release closes the connection if it is still open, discards the frames
// nobody took and waits for the reader to end.
func (c *Conn) Release() {
	c.closeOnce.Do(func() { _ = c.ws.Close() })
	c.releaseOnce.Do(func() { close(c.release) })
	<-c.done
}
