package conformance

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/strangerchat/stranger/test/wsclient"
)

// Timeouts of the client helper. expectTimeout bounds every wait for a
// frame; quietWindow is how long ExpectNothing listens.
const (
	expectTimeout = 2 * time.Second
	quietWindow   = 150 * time.Millisecond
)

// M is a client frame to send (marshalled to JSON).
type M = map[string]any

// Frame is a decoded server frame.
type Frame = wsclient.Frame

// DialOptions change how Dial connects.
type DialOptions = wsclient.DialOptions

// ErrClosed is wrapped by Next when the connection has ended.
var ErrClosed = wsclient.ErrClosed

// Client is one connection of the suite: a wsclient.Conn, whose Next checks
// that seq runs 1, 2, 3, … without gaps (continuing across resumes), with
// the test assertions on top. A resume makes a new Client, so a test can
// still watch the old connection.
type Client struct {
	*wsclient.Conn
	Welcome Frame
	Session string
	Token   string
}

// Dial connects to url (ws://host/ws, optionally with a query) and returns the
// client before any frame is read, plus the HTTP response of the handshake.
// It does not read the welcome; see env.connectAt.
func Dial(rawURL string, o DialOptions) (*Client, *http.Response, error) {
	o.HandshakeTimeout = cmp.Or(o.HandshakeTimeout, expectTimeout)
	conn, resp, err := wsclient.Dial(context.Background(), rawURL, o)
	if err != nil {
		return nil, resp, err
	}
	return &Client{Conn: conn}, resp, nil
}

// Expect takes the next frame and fails the test unless it has type typ.
func (c *Client) Expect(t testing.TB, typ string) Frame {
	t.Helper()
	f, err := c.NextWithin(expectTimeout)
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
	f, err := c.NextWithin(d)
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
		f, err := c.NextWithin(time.Until(deadline))
		if f != nil && err == nil {
			continue
		}
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("%s: expecting close %d: %v", c.name(), code, err)
		}
		if got := wsclient.CloseCode(c.Err()); got != code {
			t.Fatalf("%s: connection ended with %v (code %d), want close code %d", c.name(), c.Err(), got, code)
		}
		return
	}
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
func (c *Client) TrySend(v any) error { return c.Conn.Send(v) }

// itoa formats an int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
