package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Client states, as the client sees them.
const (
	stIdle     = iota // connected, not in the queue
	stWaiting         // sent join/next, no matched yet
	stChatting        // matched
)

// defaultStuckAfter is how long past --chat-duration a client waits for
// the rest of its partner's exchange before it counts the chat as stuck
// and moves on.
const defaultStuckAfter = 10 * time.Second

// client is one protocol session on one connection. Its goroutine reads
// frames and reacts to them; the chat timer and the closer (churn, stop)
// run on other goroutines, so state and writes are under mu.
type client struct {
	r    *runner
	conn *websocket.Conn
	w    frameWriter // conn, or a recorder in tests
	cc   *corkConn   // with --batch
	rng  *rand.Rand
	text bool   // text mode (else video)
	join []byte // tail of the join frame: mode and interests

	mu          sync.Mutex
	closing     bool  // we started the close: the end is not an error
	seq         int64 // last client seq sent
	srvSeq      int64 // last server seq received
	state       int
	gen         uint64 // bumped on every state change; stale timers check it
	room        []byte // raw JSON string of the current chat
	initiator   bool
	queuedAt    time.Time
	matchedAt   time.Time
	sentAll     bool
	gotEnd      bool // {"candidate": null} received (or text mode)
	gotChats    int
	exchangeEnd bool // done: waiting for --chat-duration
	timer       *time.Timer
	buf         *[]byte // frame being built, from writePool; nil between sends
	pow         string  // proof-of-work solution for the next join or next; "" once sent
}

// newClient picks the client's preferences.
func newClient(r *runner, rng *rand.Rand) *client {
	c := &client{r: r, rng: rng}
	if r.cfg.Idle {
		return c
	}
	c.text = rng.Float64() < r.cfg.TextRatio
	j := []byte(`,"mode":"video"`)
	if c.text {
		j = []byte(`,"mode":"text"`)
	}
	if rng.Float64() < r.cfg.InterestRatio {
		pool := r.cfg.Interests
		n := 1 + rng.IntN(min(3, len(pool)))
		j = append(j, `,"interests":[`...)
		for i, k := range rng.Perm(len(pool))[:n] {
			if i > 0 {
				j = append(j, ',')
			}
			j = append(j, mustJSON(pool[k])...)
		}
		j = append(j, ']')
	}
	c.join = append(j, '}')
	return c
}

// session connects, runs the protocol until the connection ends, and
// returns nil when the end was ours (churn or stop).
func (c *client) session(ctx context.Context, url string) error {
	r := c.r
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, resp, err := r.dialer.DialContext(dctx, url, r.header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		r.stats.errorKind(dialErrorKind(err, resp))
		return fmt.Errorf("dial %s: %w", url, err)
	}
	c.mu.Lock()
	c.conn, c.w = conn, conn
	c.cc, _ = conn.NetConn().(*corkConn)
	c.mu.Unlock()
	r.stats.addConn(1)
	defer r.stats.addConn(-1)
	defer conn.Close()
	stop := context.AfterFunc(ctx, c.closeNormal)
	defer stop()

	// The welcome comes first and has no seq.
	conn.SetReadDeadline(time.Now().Add(dialTimeout))
	if err := c.readFrame(func(f *serverFrame) error {
		if string(f.typ) != "welcome" {
			return fmt.Errorf("%w: got %q", errNoWelcome, f.typ)
		}
		if f.pow != nil && !r.cfg.Idle {
			c.pow = r.solvePow(f.pow) // before joining, as the web client does
		}
		return nil
	}); err != nil {
		return c.ended(err)
	}
	conn.SetReadDeadline(time.Time{})
	r.stats.connects.Add(1)
	r.stats.connectLatency.Record(time.Since(start))

	if !r.cfg.Idle {
		c.mu.Lock()
		err := c.sendJoin()
		c.mu.Unlock()
		if err != nil {
			return c.ended(err)
		}
	}
	for {
		if err := c.readFrame(c.handle); err != nil {
			return c.ended(err)
		}
	}
}

// ended classifies why the read loop stopped.
func (c *client) ended(err error) error {
	c.mu.Lock()
	closing := c.closing
	c.setState(-1)
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	if closing {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.r.stats.event("close_echo_timeout")
		}
		return nil
	}
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		c.r.stats.errorKind("unexpected_close_" + strconv.Itoa(ce.Code))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		c.r.stats.errorKind("connection_dropped")
	case errors.Is(err, errBadJSON):
		c.r.stats.errorKind("bad_frame")
	case errors.Is(err, errNoWelcome):
		c.r.stats.errorKind("first_frame_not_welcome")
	case errors.Is(err, errWrite):
		c.r.stats.errorKind("write_failed")
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.r.stats.errorKind("read_timeout")
		} else {
			c.r.stats.errorKind("read_error")
		}
	}
	return err
}

func dialErrorKind(err error, resp *http.Response) string {
	switch {
	case resp != nil:
		return "handshake_http_" + strconv.Itoa(resp.StatusCode)
	case errors.Is(err, errSourcesExhausted):
		return "dial_no_source_ports"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "dial_refused"
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return "dial_fd_limit"
	case errors.Is(err, context.DeadlineExceeded):
		return "dial_timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "dial_timeout"
	}
	return "dial_error"
}

// closeNormal ends the session from our side with status 1000 (the server
// ends it at once, the partner gets peer_left "left"); the read loop then
// sees the close echo and returns.
func (c *client) closeNormal() {
	c.mu.Lock()
	conn := c.conn
	if c.closing || conn == nil {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.gen++
	c.mu.Unlock()
	deadline := time.Now().Add(2 * time.Second)
	// WriteControl may run concurrently with the other methods.
	if err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline); err != nil {
		// The server sees a drop, not a close: the session lingers for
		// its resume grace period and the partner waits that long.
		c.r.stats.event("close_frame_not_sent")
		conn.Close()
		return
	}
	conn.SetReadDeadline(deadline) // do not wait forever for the echo
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// readFrame reads one message into a pooled buffer and hands it to fn.
func (c *client) readFrame(fn func(*serverFrame) error) error {
	mt, rd, err := c.conn.NextReader()
	if err != nil {
		return err
	}
	bp := framePool.Get().(*[]byte)
	defer framePool.Put(bp)
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	*bp = b[:0]
	if mt != websocket.TextMessage {
		return fmt.Errorf("binary frame from server: %w", errBadJSON)
	}
	var f serverFrame
	if err := parseServerFrame(b, &f); err != nil {
		return err
	}
	return fn(&f)
}

// setState moves to state s (-1: gone) keeping the gauges right.
func (c *client) setState(s int) {
	st := c.r.stats
	switch c.state {
	case stWaiting:
		st.waiting.Add(-1)
	case stChatting:
		st.chatting.Add(-1)
	}
	switch s {
	case stWaiting:
		st.waiting.Add(1)
	case stChatting:
		st.chatting.Add(1)
	}
	c.state = s
	c.gen++
}

// handle reacts to one server frame.
func (c *client) handle(f *serverFrame) (err error) {
	r := c.r
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil {
		c.cc.cork()
		defer func() {
			if uerr := c.cc.uncork(); uerr != nil && err == nil {
				err = fmt.Errorf("%w: %w", errWrite, uerr)
			}
		}()
	}
	if c.state < 0 || c.closing {
		return nil
	}
	if !f.hasSeq || f.seq != c.srvSeq+1 {
		r.stats.errorKind("server_seq_gap")
	}
	c.srvSeq = f.seq
	switch string(f.typ) {
	case "waiting":
	case "matched":
		if c.state != stWaiting {
			r.stats.errorKind("matched_while_not_waiting")
		}
		if want := map[bool]string{false: "video", true: "text"}[c.text]; string(f.mode) != want {
			r.stats.errorKind("matched_other_mode")
		}
		r.stats.matched.Add(1)
		r.stats.timeToMatch.Record(now.Sub(c.queuedAt))
		c.setState(stChatting)
		c.room = append(c.room[:0], f.room...)
		c.initiator = f.initiator
		c.matchedAt = now
		c.sentAll, c.gotEnd, c.gotChats, c.exchangeEnd = false, c.text, 0, false
		c.armTimer(r.cfg.ChatDuration + r.stuckAfter)
		if c.text {
			return c.sendChats()
		}
		if c.initiator {
			return c.sendSignals(r.payload.offerSDP)
		}
	case "signal":
		r.stats.relayedSignal.Add(1)
		var d signalData
		if err := parseSignalData(f.data, &d); err != nil {
			r.stats.errorKind("bad_signal_data")
			return nil
		}
		if d.t > 0 {
			r.stats.signalLatency.Record(time.Duration(now.UnixNano() - d.t))
		}
		if c.state != stChatting {
			// A signal of the chat we just left may cross our next; one
			// of another room came before its matched: the server broke
			// the order, and the client cannot use it.
			if !bytes.Equal(f.room, c.room) {
				r.stats.errorKind("signal_before_matched")
			}
			return nil
		}
		switch {
		case d.sdp && !c.initiator:
			if err := c.sendSignals(r.payload.answerSDP); err != nil {
				return err
			}
			if err := c.sendChats(); err != nil {
				return err
			}
		case d.sdp:
			if err := c.sendChats(); err != nil {
				return err
			}
		case d.endOfCand:
			c.gotEnd = true
		}
		return c.checkDone(now)
	case "chat":
		r.stats.relayedChat.Add(1)
		if t, ok := leadingInt(f.text); ok {
			r.stats.chatLatency.Record(time.Duration(now.UnixNano() - t))
		}
		if c.state == stChatting {
			c.gotChats++
			return c.checkDone(now)
		}
	case "typing":
		r.stats.relayedTyping.Add(1)
	case "peer_left":
		r.stats.peerLeftReason(f.reason)
		// A peer_left after our own next belongs to the chat we already
		// left: the next put us back in the queue.
		if c.state == stChatting {
			c.setState(stIdle)
			return c.sendJoin()
		}
	case "error":
		// A frame sent while the partner was leaving crosses its
		// peer_left and is refused with not_chatting; the refusal
		// arrives after the peer_left, when we are no longer chatting.
		// That is the protocol working, not an error.
		r.stats.errorCode(f.code, c.state != stChatting && string(f.code) == "not_chatting")
		if c.state == stWaiting && string(f.code) == "pow_required" && f.pow != nil {
			// Our solution came too late (expired) or was refused: solve
			// the fresh challenge and ask again, as the web client does.
			c.pow = r.solvePow(f.pow)
			return c.send(append(c.appendPow(c.frame("next")), '}'))
		}
		if c.state == stWaiting && string(f.code) == "overloaded" {
			// The join was refused (queue full): ask again soon. next is
			// valid in every state and does nothing if we got in after
			// all. Time to match keeps counting from the first try.
			c.after(time.Second, stWaiting, func() error {
				return c.send(append(c.frame("next"), '}'))
			})
		}
	case "reported":
	default:
		// Servers may add message types (protocol.md); worth a note only.
		r.stats.event("unknown_frame_type")
	}
	return nil
}

// checkDone: once both sides' exchange is complete, stay --chat-duration
// (counted from matched) and move on.
func (c *client) checkDone(now time.Time) error {
	if c.exchangeEnd || !c.sentAll || !c.gotEnd || c.gotChats < c.r.cfg.ChatMsgs {
		return nil
	}
	c.exchangeEnd = true
	left := c.r.cfg.ChatDuration - now.Sub(c.matchedAt)
	if left <= 0 {
		return c.moveOn()
	}
	c.armTimer(left)
	return nil
}

// armTimer schedules the end of the current chat: moveOn when the exchange
// is complete, else it is counted as stuck first.
func (c *client) armTimer(d time.Duration) {
	c.after(d, stChatting, func() error {
		if !c.exchangeEnd {
			c.r.stats.errorKind(c.stuckKind())
		}
		return c.moveOn()
	})
}

// after runs fn under mu in d, unless the client has changed state or is
// closing by then. One timer per client: a new one replaces the old.
func (c *client) after(d time.Duration, state int, fn func() error) {
	if c.timer != nil {
		c.timer.Stop()
	}
	gen := c.gen
	c.timer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gen != gen || c.closing || c.state != state {
			return
		}
		if c.cc != nil {
			c.cc.cork()
		}
		err := fn()
		if c.cc != nil {
			err = errors.Join(err, c.cc.uncork())
		}
		if err != nil && c.conn != nil {
			c.conn.Close() // the read loop reports it
		}
	})
}

// stuckKind names what a chat that did not complete was waiting for, so a
// lost frame in the server shows where it was lost.
func (c *client) stuckKind() string {
	switch {
	case !c.sentAll && c.initiator && !c.text:
		return "stuck_chat_no_answer"
	case !c.sentAll && !c.text:
		return "stuck_chat_no_offer"
	case !c.gotEnd:
		return "stuck_chat_no_end_of_candidates"
	case c.gotChats < c.r.cfg.ChatMsgs:
		return "stuck_chat_missing_chats"
	}
	return "stuck_chat"
}

// moveOn ends the chat: next, or leave and join.
func (c *client) moveOn() error {
	if c.rng.Float64() < c.r.cfg.LeaveRatio {
		if err := c.send(append(c.frame("leave"), '}')); err != nil {
			return err
		}
		c.setState(stIdle)
		return c.sendJoin()
	}
	c.queuedAt = time.Now()
	if err := c.send(append(c.frame("next"), '}')); err != nil {
		return err
	}
	c.setState(stWaiting)
	return nil
}

func (c *client) sendJoin() error {
	c.queuedAt = time.Now()
	if err := c.send(append(c.appendPow(c.frame("join")), c.join...)); err != nil {
		return err
	}
	c.setState(stWaiting)
	return nil
}

// frame starts a client frame: {"type":T,"seq":N — the caller appends the
// other members and the closing brace.
func (c *client) frame(typ string) []byte {
	c.seq++
	if c.buf == nil {
		c.buf = writePool.Get().(*[]byte)
	}
	b := append((*c.buf)[:0], `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","seq":`...)
	return strconv.AppendInt(b, c.seq, 10)
}

// signalFrame starts a signal frame up to the opening of data, which
// begins with the send timestamp.
func (c *client) signalFrame() []byte {
	b := append(c.frame("signal"), `,"room":`...)
	b = append(b, c.room...)
	b = append(b, `,"data":{"t":`...)
	return strconv.AppendInt(b, time.Now().UnixNano(), 10)
}

// sendSignals sends the offer or answer, the candidates and the end of
// candidates, as a browser does after setLocalDescription.
func (c *client) sendSignals(sdp []byte) error {
	p := c.r.payload
	kind := `"answer"`
	if c.initiator {
		kind = `"offer"`
	}
	b := append(c.signalFrame(), `,"sdp":{"type":`...)
	b = append(b, kind...)
	b = append(b, `,"sdp":`...)
	b = append(b, sdp...)
	if err := c.send(append(b, "}}}"...)); err != nil {
		return err
	}
	for _, cand := range p.cands {
		b = append(c.signalFrame(), `,"candidate":`...)
		b = append(b, cand...)
		if err := c.send(append(b, "}}"...)); err != nil {
			return err
		}
	}
	return c.send(append(c.signalFrame(), `,"candidate":null}}`...))
}

// sendChats sends the chat messages, each after a typing frame; the text
// starts with the send timestamp for the relay latency.
func (c *client) sendChats() error {
	chats := c.r.payload.chats
	for i := range c.r.cfg.ChatMsgs {
		if c.r.cfg.Typing {
			if err := c.send(append(c.frame("typing"), `,"typing":true}`...)); err != nil {
				return err
			}
		}
		b := append(c.frame("chat"), `,"text":"`...)
		b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
		b = append(b, ' ')
		b = append(b, chats[i%len(chats)]...)
		if err := c.send(append(b, `"}`...)); err != nil {
			return err
		}
	}
	c.sentAll = true
	return c.checkDone(time.Now())
}

var (
	errWrite     = errors.New("write failed")
	errNoWelcome = errors.New("first frame is not welcome")
)

// frameWriter is the writing half of a *websocket.Conn.
type frameWriter interface {
	WriteMessage(messageType int, data []byte) error
	SetWriteDeadline(t time.Time) error
}

// writePool holds the buffers frames are built in, so an idle or waiting
// client keeps none.
var writePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// send writes one frame built in c.buf; mu is held.
func (c *client) send(b []byte) error {
	defer func() {
		*c.buf = b[:0] // keep the grown buffer
		writePool.Put(c.buf)
		c.buf = nil
	}()
	if c.closing {
		return nil
	}
	c.w.SetWriteDeadline(time.Now().Add(dialTimeout))
	if err := c.w.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	c.r.stats.sent.Add(1)
	return nil
}
