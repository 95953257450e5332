package wsclient

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Options configure a Client.
type Options struct {
	DialOptions
	// Log, when set, gets a line for every frame the client sends and every
	// connection it drops, for a test's transcript.
	Log func(format string, args ...any)
}

// ResumeResult is what a resume did.
type ResumeResult struct {
	Welcome Frame
	// Resent are the seqs of the client frames sent again because the
	// server had not processed them (seq > welcome.lastSeq).
	Resent []int64
}

type sent struct {
	seq  int64
	data []byte
}

// Client is one session over successive connections. It numbers the frames
// it sends and keeps them until a resumed welcome's lastSeq says the server
// has processed them; Resume reconnects with the token and the highest seq
// taken and re-sends the rest.
type Client struct {
	opts Options

	// mu guards the fields below. It is held across writes, so that the
	// frames re-sent by a resume go out before any newer frame.
	mu      sync.Mutex
	conn    *Conn
	welcome Frame
	seq     int64 // client seq of the last frame sent
	outbox  []sent
}

// Connect dials wsURL and reads the welcome of a new session.
func Connect(ctx context.Context, wsURL string, o Options) (*Client, error) {
	conn, _, err := Dial(ctx, wsURL, o.DialOptions)
	if err != nil {
		return nil, err
	}
	w, err := conn.ReadWelcome(ctx)
	if err == nil {
		if r, ok := w.Bool("resumed"); !ok || r {
			err = fmt.Errorf("a fresh connection got resumed %v: %s", w["resumed"], w)
		}
	}
	if err != nil {
		conn.Release()
		return nil, err
	}
	return &Client{opts: o, conn: conn, welcome: w}, nil
}

// Conn is the current connection.
func (c *Client) Conn() *Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// Welcome is the welcome of the current connection.
func (c *Client) Welcome() Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

// Session is the session id.
func (c *Client) Session() string { return c.Welcome().Str("session") }

// Next takes the next frame of the current connection; see Conn.Next.
func (c *Client) Next(ctx context.Context) (Frame, error) { return c.Conn().Next(ctx) }

// Send writes m with the next client seq and keeps it for a resume. A
// failed write drops the connection; the frame stays kept, and the next
// Resume sends it if the server has not processed it. The error is only
// for a frame that cannot be encoded.
func (c *Client) Send(m map[string]any) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	seq := c.seq + 1
	out["seq"] = seq
	b, err := json.Marshal(out)
	if err != nil {
		return 0, fmt.Errorf("encoding %v: %w", m, err)
	}
	c.seq = seq
	c.outbox = append(c.outbox, sent{seq: seq, data: b})
	c.writeLocked(b, "")
	return seq, nil
}

// writeLocked writes b on the current connection; note labels it in the
// log. mu is held.
func (c *Client) writeLocked(b []byte, note string) bool {
	if err := c.conn.Send(b); err != nil {
		c.log("-> %s%s (write failed, connection dropped, kept for a resume: %v)", b, note, err)
		c.conn.Drop()
		return false
	}
	c.log("-> %s%s", b, note)
	return true
}

func (c *Client) log(format string, args ...any) {
	if c.opts.Log != nil {
		c.opts.Log(format, args...)
	}
}

// Drop cuts the current connection without a close frame; see Conn.Drop.
// Frames sent afterwards are kept for Resume.
func (c *Client) Drop() {
	c.log("dropping the connection")
	c.Conn().Drop()
}

// Resume drops the current connection and reconnects to wsURL (any node)
// with ?resume=TOKEN&last=N, N being the highest seq taken; it checks that
// the welcome resumed the same session with a lastSeq, then re-sends the
// frames the server has not processed and carries on. Frames the old
// connection had queued but nobody took are discarded: they come again,
// since they are after N.
func (c *Client) Resume(ctx context.Context, wsURL string) (ResumeResult, error) {
	var res ResumeResult
	c.mu.Lock()
	old, session, token := c.conn, c.welcome.Str("session"), c.welcome.Str("resumeToken")
	c.mu.Unlock()
	old.Drop()
	old.Release()
	last := old.Last()
	sep := "?"
	if strings.Contains(wsURL, "?") {
		sep = "&"
	}
	c.log("resuming with last=%d", last)
	conn, _, err := Dial(ctx, wsURL+sep+ResumeQuery(token, strconv.FormatInt(last, 10)), c.opts.DialOptions)
	if err != nil {
		return res, err
	}
	w, err := conn.ReadWelcome(ctx)
	res.Welcome = w
	if err != nil {
		conn.Release()
		return res, err
	}
	lastSeq, hasLastSeq := w.Int("lastSeq")
	if r, _ := w.Bool("resumed"); !r || w.Str("session") != session || !hasLastSeq {
		conn.Release()
		return res, fmt.Errorf("resume refused: want resumed:true, session %s and an integer lastSeq, got %s", session, w)
	}
	conn.SetLast(last)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn, c.welcome = conn, w
	keep := c.outbox[:0]
	for _, f := range c.outbox {
		if f.seq > lastSeq {
			keep = append(keep, f)
		}
	}
	c.outbox = keep
	for _, f := range keep {
		res.Resent = append(res.Resent, f.seq)
		if !c.writeLocked(f.data, " (re-sent)") {
			break
		}
	}
	return res, nil
}

// Close closes the current connection with 1000, which ends the session,
// and releases it.
func (c *Client) Close() {
	conn := c.Conn()
	conn.Close(1000)
	conn.Release()
}
