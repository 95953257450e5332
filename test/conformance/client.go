package conformance

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Timeouts of the client helper. expectTimeout bounds every wait for a
// frame; quietWindow is how long ExpectNothing listens.
const (
	expectTimeout = 2 * time.Second
	quietWindow   = 150 * time.Millisecond
)

// M is a client frame to send (marshalled to JSON).
type M = map[string]any

// Frame is a decoded server frame. Numbers are json.Number, so values pass
// through exactly.
type Frame map[string]any

// Type returns the frame's type field.
func (f Frame) Type() string { s, _ := f["type"].(string); return s }

// Str returns a string field ("" if absent or not a string).
func (f Frame) Str(k string) string { s, _ := f[k].(string); return s }

// Int returns an integer field and whether it is one.
func (f Frame) Int(k string) (int64, bool) {
	n, ok := f[k].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := n.Int64()
	return v, err == nil
}

// Bool returns a boolean field and whether it is one.
func (f Frame) Bool(k string) (bool, bool) { b, ok := f[k].(bool); return b, ok }

func (f Frame) String() string {
	b, _ := json.Marshal(map[string]any(f))
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// event is what the reader goroutine hands over: a frame, or the end of the
// connection.
type event struct {
	frame Frame
	raw   []byte
	err   error // set on the last event: how the connection ended
}

// Client is a protocol client over a real WebSocket. Frames are read by a
// goroutine into a queue; Next/Expect take them in order and check that seq
// runs 1, 2, 3, … without gaps (continuing across resumes).
type Client struct {
	URL     string // base URL the client dialled (without query)
	ws      *websocket.Conn
	Welcome Frame
	Session string
	Token   string

	events chan event
	done   chan struct{}
	ended  *event // the end event once taken from the queue

	lastSeq int64 // highest seq taken (and checked) by Next
	pings   atomic.Int64

	closeOnce sync.Once
}

// DialOptions change how Dial connects.
type DialOptions struct {
	Header http.Header
	// IgnorePings makes the client swallow server pings without answering
	// (a client whose pongs stopped).
	IgnorePings bool
	// HandshakeTimeout bounds the dial and upgrade (default expectTimeout).
	HandshakeTimeout time.Duration
}

// Dial connects to url (ws://host/ws, optionally with a query) and returns the
// client before any frame is read, plus the HTTP response of the handshake.
// It does not read the welcome; see Connect.
func Dial(rawURL string, o DialOptions) (*Client, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: cmp.Or(o.HandshakeTimeout, expectTimeout)}
	ws, resp, err := d.Dial(rawURL, o.Header)
	if err != nil {
		return nil, resp, fmt.Errorf("dial %s: %w", rawURL, err)
	}
	u, _ := url.Parse(rawURL)
	u.RawQuery = ""
	c := &Client{URL: u.String(), ws: ws, events: make(chan event, 4096), done: make(chan struct{})}
	if o.IgnorePings {
		ws.SetPingHandler(func(string) error { c.pings.Add(1); return nil })
	} else {
		ws.SetPingHandler(func(data string) error {
			c.pings.Add(1)
			err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
			if errors.Is(err, websocket.ErrCloseSent) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return err
		})
	}
	go c.read()
	return c, resp, nil
}

func (c *Client) read() {
	defer close(c.done)
	for {
		mt, b, err := c.ws.ReadMessage()
		if err != nil {
			c.events <- event{err: err}
			return
		}
		if mt != websocket.TextMessage {
			c.events <- event{err: fmt.Errorf("server sent a non-text frame (type %d)", mt)}
			return
		}
		var f Frame
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&f); err != nil || dec.More() {
			c.events <- event{err: fmt.Errorf("server frame is not one JSON object: %q", truncate(b))}
			return
		}
		c.events <- event{frame: f, raw: b}
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// Pings is how many server pings the client has seen.
func (c *Client) Pings() int64 { return c.pings.Load() }

// LastSeq is the highest server seq taken from the queue.
func (c *Client) LastSeq() int64 { return c.lastSeq }

// ErrClosed is wrapped by Next when the connection has ended.
var ErrClosed = errors.New("connection closed")

// Next returns the next frame within timeout. The seq of every frame but
// welcome must be one more than the previous one; a gap or a repeat is an
// error. When the connection has ended it returns an error wrapping ErrClosed
// and the close reason.
func (c *Client) Next(timeout time.Duration) (Frame, error) {
	if c.ended != nil {
		return nil, fmt.Errorf("%w: %w", ErrClosed, c.ended.err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ev := <-c.events:
		return c.take(ev)
	case <-t.C:
		return nil, fmt.Errorf("no frame within %v (last seq %d)", timeout, c.lastSeq)
	}
}

// TryNext is Next without waiting: nil, nil when no frame is queued.
func (c *Client) TryNext() (Frame, error) {
	if c.ended != nil {
		return nil, fmt.Errorf("%w: %w", ErrClosed, c.ended.err)
	}
	select {
	case ev := <-c.events:
		return c.take(ev)
	default:
		return nil, nil
	}
}

func (c *Client) take(ev event) (Frame, error) {
	if ev.err != nil {
		c.ended = &ev
		return nil, fmt.Errorf("%w: %w", ErrClosed, ev.err)
	}
	if ev.frame.Type() == "welcome" {
		return ev.frame, nil
	}
	seq, ok := ev.frame.Int("seq")
	if !ok {
		return ev.frame, fmt.Errorf("frame without integer seq: %s", ev.raw)
	}
	if seq != c.lastSeq+1 {
		return ev.frame, fmt.Errorf("seq %d after %d (want %d): %s", seq, c.lastSeq, c.lastSeq+1, ev.raw)
	}
	c.lastSeq = seq
	return ev.frame, nil
}

// Expect takes the next frame and fails the test unless it has type typ.
func (c *Client) Expect(t testing.TB, typ string) Frame {
	t.Helper()
	f, err := c.Next(expectTimeout)
	if err != nil {
		t.Fatalf("%s: expecting %q: %v", c.name(), typ, err)
	}
	if f.Type() != typ {
		t.Fatalf("%s: got %s, want type %q", c.name(), f, typ)
	}
	return f
}

// ExpectError takes the next frame and fails unless it is an error frame
// with code and a string message.
func (c *Client) ExpectError(t testing.TB, code string) Frame {
	t.Helper()
	f := c.Expect(t, "error")
	if f.Str("code") != code {
		t.Fatalf("%s: got error %s, want code %q", c.name(), f, code)
	}
	if _, ok := f["message"].(string); !ok {
		t.Fatalf("%s: error frame without string message: %s", c.name(), f)
	}
	return f
}

// ExpectNothing fails if a frame arrives, or the connection ends, within the
// quiet window.
func (c *Client) ExpectNothing(t testing.TB) {
	t.Helper()
	c.ExpectNothingFor(t, quietWindow)
}

// ExpectNothingFor is ExpectNothing with a window of d.
func (c *Client) ExpectNothingFor(t testing.TB, d time.Duration) {
	t.Helper()
	f, err := c.Next(d)
	switch {
	case f != nil:
		t.Fatalf("%s: expected nothing, got %s", c.name(), f)
	case errors.Is(err, ErrClosed):
		t.Fatalf("%s: expected nothing, connection ended: %v", c.name(), err)
	}
}

// ExpectClose skips frames until the connection ends and fails unless it
// ended with close status code (websocket.CloseAbnormalClosure, 1006, for an
// end without a close frame).
func (c *Client) ExpectClose(t testing.TB, code int) {
	t.Helper()
	deadline := time.Now().Add(expectTimeout)
	for {
		f, err := c.Next(time.Until(deadline))
		if f != nil && err == nil {
			continue
		}
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("%s: expecting close %d: %v", c.name(), code, err)
		}
		if got := closeCode(c.ended.err); got != code {
			t.Fatalf("%s: connection ended with %v (code %d), want close code %d", c.name(), c.ended.err, got, code)
		}
		return
	}
}

// closeCode returns the close status of a read error, 1006 when there was
// no close frame.
func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return websocket.CloseAbnormalClosure
}

func (c *Client) name() string {
	if c.Session != "" {
		return "client " + c.Session
	}
	return "client"
}

// Send writes one frame: a string or []byte is sent as is (a text frame),
// anything else is marshalled to JSON. It fails the test on a write error.
func (c *Client) Send(t testing.TB, v any) {
	t.Helper()
	if err := c.TrySend(v); err != nil {
		t.Fatalf("%s: send: %v", c.name(), err)
	}
}

// TrySend is Send returning the write error.
func (c *Client) TrySend(v any) error {
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
	_ = c.ws.SetWriteDeadline(time.Now().Add(expectTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// SendBinary writes a binary frame.
func (c *Client) SendBinary(b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(expectTimeout))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// Close sends a close frame with code and waits (briefly) for the server to
// close the connection.
func (c *Client) Close(code int) {
	c.closeOnce.Do(func() {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		select {
		case <-c.done:
		case <-time.After(expectTimeout):
		}
		_ = c.ws.Close()
	})
}

// Drop closes the TCP connection without a close frame: an abrupt drop.
func (c *Client) Drop() {
	c.closeOnce.Do(func() { _ = c.ws.NetConn().Close() })
}

// abandon releases the connection at the end of a test.
func (c *Client) abandon() {
	c.closeOnce.Do(func() { _ = c.ws.Close() })
	<-c.done
}

// itoa formats an int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
