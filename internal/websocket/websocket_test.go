package websocket

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/strangerchat/stranger/internal/netpoll"
)

// peer is the server side of a test connection: it records what its Conn
// reports and writes what the test queues.
type peer struct {
	c    *Conn
	msgs chan string
	pong chan string
	end  chan End

	// onMessage, if set, runs for each message before it is recorded.
	onMessage func(msg []byte)

	mu      sync.Mutex
	pending [][]byte
	ping    []byte
	// late, if set, is queued (and kicked) by the first Next that finds
	// nothing to send, as a sender would right after that Next.
	late []byte
}

func newPeer() *peer {
	return &peer{msgs: make(chan string, 1024), pong: make(chan string, 16), end: make(chan End, 1)}
}

func (p *peer) OnMessage(msg []byte) {
	if p.onMessage != nil {
		p.onMessage(msg)
	}
	p.msgs <- string(msg)
}
func (p *peer) OnPong(payload []byte) { p.pong <- string(payload) }
func (p *peer) OnClose(e End)         { p.end <- e }

func (p *peer) Next(b *Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 && p.ping == nil && p.late != nil {
		p.pending = append(p.pending, p.late)
		p.late = nil
		p.c.Kick()
		return
	}
	for len(p.pending) > 0 {
		more := b.Add(p.pending[0])
		p.pending = p.pending[1:]
		if !more {
			break
		}
	}
	if p.ping != nil {
		b.Ping(p.ping)
		p.ping = nil
	}
}

// send queues messages, and a ping after them if ping is not nil, with one
// Kick.
func (p *peer) send(ping []byte, msgs ...string) {
	p.mu.Lock()
	for _, m := range msgs {
		p.pending = append(p.pending, []byte(m))
	}
	p.ping = ping
	p.c.Kick()
	p.mu.Unlock()
}

func (p *peer) waitEnd(t *testing.T) End {
	t.Helper()
	select {
	case e := <-p.end:
		return e
	case <-time.After(3 * time.Second):
		t.Fatal("OnClose was not called")
		return End{}
	}
}

func (p *peer) waitMsg(t *testing.T) string {
	t.Helper()
	select {
	case m := <-p.msgs:
		return m
	case <-time.After(3 * time.Second):
		t.Fatal("no message")
		return ""
	}
}

// modes runs f with connections read by the poller (Linux) and by a
// goroutine each, the two ways a Conn reads.
func modes(t *testing.T, f func(t *testing.T, u *Upgrader)) {
	t.Run("poller", func(t *testing.T) {
		p, err := netpoll.New()
		if err != nil {
			if runtime.GOOS != "linux" {
				t.Skip("no poller on " + runtime.GOOS)
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		f(t, &Upgrader{Poller: p, MaxMessage: 1024})
	})
	t.Run("goroutine", func(t *testing.T) {
		f(t, &Upgrader{MaxMessage: 1024})
	})
}

// client is the test's side of a connection: raw frames over the socket.
type client struct {
	t  *testing.T
	nc net.Conn
	r  io.Reader
}

// server upgrades every request with u; dial connects to it.
type server struct {
	url   string
	peers chan *peer
}

// serve starts a server; setup, if set, runs for each peer before its
// connection starts.
func serve(t *testing.T, u *Upgrader, setup func(p *peer)) *server {
	t.Helper()
	s := &server{peers: make(chan *peer, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := newPeer()
		if setup != nil {
			setup(p)
		}
		c, err := u.Upgrade(w, r, p, p)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			s.peers <- nil
			return
		}
		p.c = c
		c.Start()
		s.peers <- p
	}))
	t.Cleanup(srv.Close)
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return s
}

// dial opens a connection and returns both of its ends.
func (s *server) dial(t *testing.T) (*client, *peer) {
	t.Helper()
	nc, br, _, err := ws.Dial(context.Background(), s.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	cl := &client{t: t, nc: nc, r: nc}
	if br != nil {
		cl.r = io.MultiReader(br, nc)
	}
	p := <-s.peers
	if p == nil {
		t.FailNow()
	}
	return cl, p
}

// connect serves one connection and returns both of its ends.
func connect(t *testing.T, u *Upgrader, setup func(p *peer)) (*client, *peer) {
	t.Helper()
	return serve(t, u, setup).dial(t)
}

// write writes frames (masked, as a client must) with one write.
func (c *client) write(frames ...ws.Frame) {
	c.t.Helper()
	var b []byte
	for _, f := range frames {
		b = append(b, ws.MustCompileFrame(ws.MaskFrame(f))...)
	}
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) read() ws.Frame {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	f, err := readFrame(c.r)
	if err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	if f.Header.Masked {
		c.t.Fatal("the server masked a frame")
	}
	return f
}

// closeCode reads frames until a close frame and returns its code and
// reason.
func (c *client) closeCode() (int, string) {
	c.t.Helper()
	for {
		f := c.read()
		if f.Header.OpCode == ws.OpClose {
			code, reason := ws.ParseCloseFrameData(f.Payload)
			return int(code), reason
		}
	}
}

func text(fin bool, s string) ws.Frame {
	return ws.NewFrame(ws.OpText, fin, []byte(s))
}

func cont(fin bool, s string) ws.Frame {
	return ws.NewFrame(ws.OpContinuation, fin, []byte(s))
}

// A message split over frames, with a ping between them and its last
// frame in a later read, is one message; the ping is answered with a pong
// carrying its payload.
func TestFragmentedMessage(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		c, p := connect(t, u, nil)
		c.write(text(false, "hel"), ws.NewPingFrame([]byte("are you there")), cont(false, "lo, "))
		f := c.read()
		if f.Header.OpCode != ws.OpPong || string(f.Payload) != "are you there" {
			t.Fatalf("got %v %q, want a pong with the ping's payload", f.Header.OpCode, f.Payload)
		}
		time.Sleep(20 * time.Millisecond) // the rest comes in another read
		c.write(cont(true, "world"), text(true, "next"))
		if m := p.waitMsg(t); m != "hello, world" {
			t.Fatalf("message %q, want the fragments joined", m)
		}
		if m := p.waitMsg(t); m != "next" {
			t.Fatalf("second message %q", m)
		}
	})
}

// A message over the limit closes with 1009, counted over all its frames.
func TestOverSize(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		c, p := connect(t, u, nil)
		c.write(text(true, strings.Repeat("a", 1024))) // at the limit: fine
		if m := p.waitMsg(t); len(m) != 1024 {
			t.Fatalf("message of %d bytes", len(m))
		}
		c.write(text(false, strings.Repeat("a", 600)), cont(true, strings.Repeat("b", 600)))
		if code, _ := c.closeCode(); code != CloseTooLarge {
			t.Fatalf("close code %d, want 1009", code)
		}
		e := p.waitEnd(t)
		if e.Sent != CloseTooLarge {
			t.Fatalf("End.Sent %d, want 1009", e.Sent)
		}
		select {
		case m := <-p.msgs:
			t.Fatalf("the over-size message was handled: %d bytes", len(m))
		default:
		}
	})
}

// A ping asked for by the Source goes after the messages of its batch, in
// the same write; the pong's payload reaches OnPong.
func TestPingAfterBatch(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		c, p := connect(t, u, nil)
		p.send([]byte("42"), "a", "b")
		for _, want := range []string{"a", "b"} {
			if f := c.read(); f.Header.OpCode != ws.OpText || string(f.Payload) != want {
				t.Fatalf("got %v %q, want text %q", f.Header.OpCode, f.Payload, want)
			}
		}
		f := c.read()
		if f.Header.OpCode != ws.OpPing || string(f.Payload) != "42" {
			t.Fatalf("got %v %q, want the ping after the batch", f.Header.OpCode, f.Payload)
		}
		c.write(ws.NewPongFrame(f.Payload))
		select {
		case got := <-p.pong:
			if got != "42" {
				t.Fatalf("pong payload %q", got)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("OnPong was not called")
		}
	})
}

// Close codes: the peer's close is echoed and reported; Close sends its
// code and reason; broken frames close with 1002, binary ones with 1003;
// Drop sends no close frame and reports its cause.
func TestCloseCodes(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		t.Run("peer closes", func(t *testing.T) {
			c, p := connect(t, u, nil)
			c.write(ws.NewCloseFrame(ws.NewCloseFrameBody(CloseGoingAway, "bye")))
			if code, _ := c.closeCode(); code != CloseGoingAway {
				t.Fatalf("echo %d, want 1001", code)
			}
			e := p.waitEnd(t)
			var ce *CloseError
			if !errors.As(e.Err, &ce) || ce.Code != CloseGoingAway || e.Sent != 0 {
				t.Fatalf("end %+v, want the peer's 1001 and nothing sent", e)
			}
		})
		t.Run("peer closes without a code", func(t *testing.T) {
			c, p := connect(t, u, nil)
			c.write(ws.NewCloseFrame(nil))
			if f := c.read(); f.Header.OpCode != ws.OpClose || len(f.Payload) != 0 {
				t.Fatalf("got %v %q, want an empty close", f.Header.OpCode, f.Payload)
			}
			var ce *CloseError
			if e := p.waitEnd(t); !errors.As(e.Err, &ce) || ce.Code != CloseNoStatus {
				t.Fatalf("end %+v, want 1005", e)
			}
		})
		t.Run("server closes", func(t *testing.T) {
			c, p := connect(t, u, nil)
			p.c.Close(4001, "taken over")
			p.c.Close(4002, "second close: ignored")
			if code, reason := c.closeCode(); code != 4001 || reason != "taken over" {
				t.Fatalf("close %d %q, want 4001 with its reason", code, reason)
			}
			if e := p.waitEnd(t); e.Sent != 4001 || !errors.Is(e.Err, ErrClosed) {
				t.Fatalf("end %+v, want Sent 4001, ErrClosed", e)
			}
		})
		t.Run("drop", func(t *testing.T) {
			c, p := connect(t, u, nil)
			cause := errors.New("too slow")
			if !p.c.Drop(cause) || p.c.Drop(cause) {
				t.Fatal("Drop should act once")
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			if f, err := readFrame(c.r); err == nil {
				t.Fatalf("read %v after a drop, want the socket closed", f.Header.OpCode)
			}
			if e := p.waitEnd(t); e.Sent != 0 || !errors.Is(e.Err, cause) {
				t.Fatalf("end %+v, want Drop's cause", e)
			}
		})
		broken := map[string][]byte{
			"unmasked frame":        ws.MustCompileFrame(text(true, "x")),
			"continuation first":    ws.MustCompileFrame(ws.MaskFrame(cont(true, "x"))),
			"text inside fragments": append(ws.MustCompileFrame(ws.MaskFrame(text(false, "x"))), ws.MustCompileFrame(ws.MaskFrame(text(true, "y")))...),
			"reserved opcode":       ws.MustCompileFrame(ws.MaskFrame(ws.NewFrame(ws.OpCode(0x3), true, []byte("x")))),
			"fragmented control":    ws.MustCompileFrame(ws.MaskFrame(ws.NewFrame(ws.OpPing, false, []byte("x")))),
			"close of one byte":     ws.MustCompileFrame(ws.MaskFrame(ws.NewCloseFrame([]byte{3}))),
		}
		for name, raw := range broken {
			t.Run(name, func(t *testing.T) {
				c, p := connect(t, u, nil)
				if _, err := c.nc.Write(raw); err != nil {
					t.Fatal(err)
				}
				if code, _ := c.closeCode(); code != CloseProtocolError {
					t.Fatalf("close code %d, want 1002", code)
				}
				if e := p.waitEnd(t); e.Sent != CloseProtocolError || !errors.Is(e.Err, ErrClosed) {
					t.Fatalf("end %+v", e)
				}
			})
		}
		t.Run("binary", func(t *testing.T) {
			c, p := connect(t, u, nil)
			c.write(ws.NewBinaryFrame([]byte{1, 2}))
			if code, _ := c.closeCode(); code != CloseUnsupported {
				t.Fatalf("close code %d, want 1003", code)
			}
			p.waitEnd(t)
		})
		t.Run("peer vanishes", func(t *testing.T) {
			c, p := connect(t, u, nil)
			_ = c.nc.Close()
			if e := p.waitEnd(t); e.Sent != 0 || e.Err == nil {
				t.Fatalf("end %+v, want a read error", e)
			}
		})
	})
}

// A message the handler answers with Close is the last one handled, even
// when more arrived in the same read.
func TestNothingHandledAfterClose(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		c, p := connect(t, u, func(pp *peer) {
			pp.onMessage = func(msg []byte) {
				if string(msg) == "stop" {
					pp.c.Close(ClosePolicyViolation, "")
				}
			}
		})
		c.write(text(true, "stop"), text(true, "after"))
		if code, _ := c.closeCode(); code != ClosePolicyViolation {
			t.Fatalf("close code %d", code)
		}
		p.waitEnd(t)
		if m := p.waitMsg(t); m != "stop" {
			t.Fatalf("first message %q", m)
		}
		select {
		case m := <-p.msgs:
			t.Fatalf("handled %q after the handler closed the connection", m)
		default:
		}
	})
}

// countingConn counts the writes to a real socket.
type countingConn struct {
	*net.TCPConn
	writes atomic.Int32
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.TCPConn.Write(b)
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server *net.TCPConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = s.Close() })
	return s.(*net.TCPConn), client
}

// Everything pending is written with one write(2), its ping included, and
// a backlog longer than a batch in as many writes as it has batches.
func TestBatchedWrite(t *testing.T) {
	s, cl := tcpPair(t)
	nc := &countingConn{TCPConn: s}
	p := newPeer()
	p.c = newConn(nc, p, p, 0)
	p.c.register(nil, nil)
	p.c.Start()
	t.Cleanup(func() { p.c.Close(CloseNormal, "") })
	c := &client{t: t, nc: cl, r: cl}

	msgs := make([]string, MaxBatch+10)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("m%d-%s", i, strings.Repeat("x", i*10))
	}
	p.send([]byte("p"), msgs...)
	for i, want := range msgs {
		f := c.read()
		if string(f.Payload) != want {
			t.Fatalf("frame %d: %q, want %q", i, f.Payload, want)
		}
		if i == MaxBatch-1 {
			// The ping is asked for once, with the first batch.
			if f := c.read(); f.Header.OpCode != ws.OpPing || string(f.Payload) != "p" {
				t.Fatalf("after the first batch: %v %q, want the ping", f.Header.OpCode, f.Payload)
			}
		}
	}
	if n := nc.writes.Load(); n != 2 {
		t.Fatalf("%d writes for %d messages and a ping, want 2 (one per batch)", n, len(msgs))
	}
}

// Frames of every length encoding arrive intact.
func TestFrameLengths(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		c, p := connect(t, u, nil)
		for _, n := range []int{0, 125, 126, 0xFFFF, 0x10000, 200000} {
			want := strings.Repeat("z", n)
			p.send(nil, want)
			if f := c.read(); string(f.Payload) != want {
				t.Fatalf("%d bytes: got %d", n, len(f.Payload))
			}
		}
	})
}

// Messages queued from many goroutines at once are all written, in the
// order they were queued: no Kick is lost while the writer is stopping.
func TestKickNeverLost(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		c, p := connect(t, u, nil)
		const senders, each = 8, 200
		var order []string // the order the messages were queued in
		var omu sync.Mutex
		var wg sync.WaitGroup
		for i := range senders {
			wg.Go(func() {
				for j := range each {
					m := fmt.Sprintf("%d.%d", i, j)
					p.mu.Lock()
					p.pending = append(p.pending, []byte(m))
					omu.Lock()
					order = append(order, m)
					omu.Unlock()
					p.c.Kick()
					p.mu.Unlock()
					if j%16 == 0 {
						time.Sleep(time.Millisecond) // let the writer go idle now and then
					}
				}
			})
		}
		var got []string
		for range senders * each {
			got = append(got, string(c.read().Payload))
		}
		wg.Wait()
		for i := range got {
			if got[i] != order[i] {
				t.Fatalf("message %d: %q, queued %q", i, got[i], order[i])
			}
		}
	})
}

// A Kick that comes while the writer is finding nothing to send is not
// lost: the writer asks again before it stops.
func TestKickWhileStopping(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		c, p := connect(t, u, nil)
		p.mu.Lock()
		p.late = []byte("late")
		p.mu.Unlock()
		p.send(nil, "first")
		for _, want := range []string{"first", "late"} {
			if f := c.read(); string(f.Payload) != want {
				t.Fatalf("got %q, want %q", f.Payload, want)
			}
		}
	})
}

// OnMessage never runs for one connection on two goroutines at once, and
// messages are handled in the order they were sent, however they arrive.
func TestOneReaderAtATime(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		var active atomic.Int32
		var overlap atomic.Bool
		c, p := connect(t, u, func(pp *peer) {
			pp.onMessage = func([]byte) {
				if active.Add(1) > 1 {
					overlap.Store(true)
				}
				time.Sleep(200 * time.Microsecond) // let more bytes arrive meanwhile
				active.Add(-1)
			}
		})
		const n = 300
		go func() {
			for i := range n {
				// Separate writes, some of them in pieces, so the poller
				// wakes up again and again while a read is under way.
				f := ws.MustCompileFrame(ws.MaskFrame(text(true, fmt.Sprint(i))))
				if i%3 == 0 {
					_, _ = c.nc.Write(f[:2])
					_, _ = c.nc.Write(f[2:])
				} else {
					_, _ = c.nc.Write(f)
				}
			}
		}()
		for i := range n {
			if m := p.waitMsg(t); m != fmt.Sprint(i) {
				t.Fatalf("message %d was %q", i, m)
			}
		}
		if overlap.Load() {
			t.Fatal("two readers at once")
		}
	})
}

// An idle connection holds no goroutine when the poller reads it, and the
// writer exits once everything is written.
func TestIdleHoldsNoGoroutine(t *testing.T) {
	p, err := netpoll.New()
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	srv := serve(t, &Upgrader{Poller: p}, nil)
	srv.dial(t) // the server's own goroutines start with its first connection
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	const n = 50
	for range n {
		c, pp := srv.dial(t)
		pp.send(nil, "hello")
		if f := c.read(); string(f.Payload) != "hello" {
			t.Fatalf("got %q", f.Payload)
		}
		c.write(text(true, "hi"))
		pp.waitMsg(t)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		extra := runtime.NumGoroutine() - before
		if extra < 5 { // a reader or writer on its way out; not one per connection
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d more goroutines with %d idle connections:\n%s", extra, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Frames sent with the handshake, before its response, break RFC 6455
// §4.1: the connection is closed with 1002 and not handed to the user.
func TestEarlyData(t *testing.T) {
	errc := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := newPeer()
		c, err := (&Upgrader{}).Upgrade(w, r, p, p)
		if err == nil {
			c.Start()
		}
		errc <- err
	}))
	t.Cleanup(srv.Close)
	nc, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), ws.MustCompileFrame(ws.MaskFrame(text(true, "early")))...)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrEarlyData) {
		t.Fatalf("Upgrade: %v, want ErrEarlyData", err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("response %v, %v; want 101", resp, err)
	}
	c := &client{t: t, nc: nc, r: br}
	if code, _ := c.closeCode(); code != CloseProtocolError {
		t.Fatalf("close code %d, want 1002", code)
	}
}

// readFrame reads one whole frame as a client sees it (server frames are
// not masked), with the header and payload reads gobwas/ws recommends over
// its deprecated ReadFrame.
func readFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return ws.Frame{}, err
	}
	return ws.Frame{Header: h, Payload: p}, nil
}

// count is a Counter for tests.
type count struct{ n atomic.Int64 }

func (c *count) Inc() { c.n.Add(1) }

// A peer that starts a fragmented message and never finishes it, while
// answering pings and sending pings of its own (so no pong timeout would
// notice), is closed with 1008 once the message timeout has passed since
// its first frame.
func TestUnfinishedMessageTimesOut(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		const timeout = 300 * time.Millisecond
		closed := &count{}
		u.MessageTimeout, u.MessageTimeouts = timeout, closed
		c, p := connect(t, u, nil)
		start := time.Now()
		c.write(text(false, "hel"))
		var code int
		for code == 0 {
			if time.Since(start) > timeout+2*time.Second {
				t.Fatalf("still open %v after an unfinished message", time.Since(start))
			}
			c.write(ws.NewPingFrame([]byte("still here")))
			switch f := c.read(); f.Header.OpCode {
			case ws.OpPong:
				time.Sleep(50 * time.Millisecond)
			case ws.OpClose:
				code = int(binary.BigEndian.Uint16(f.Payload))
			default:
				t.Fatalf("unexpected frame %v", f.Header.OpCode)
			}
		}
		took := time.Since(start)
		if code != ClosePolicyViolation {
			t.Fatalf("close code %d, want 1008", code)
		}
		if took < timeout || took > timeout+2*time.Second {
			t.Fatalf("closed after %v, want soon after %v", took, timeout)
		}
		if e := p.waitEnd(t); e.Sent != ClosePolicyViolation {
			t.Fatalf("End.Sent %d, want 1008", e.Sent)
		}
		if n := closed.n.Load(); n != 1 {
			t.Fatalf("MessageTimeouts counted %d, want 1", n)
		}
		select {
		case m := <-p.msgs:
			t.Fatalf("the unfinished message was handled: %q", m)
		default:
		}
	})
}

// The message timeout bounds one message only: after a fragmented message
// completed, a connection may stay silent for longer than the timeout and
// send again.
func TestMessageTimeoutLiftedAfterTheMessage(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		const timeout = 200 * time.Millisecond
		closed := &count{}
		u.MessageTimeout, u.MessageTimeouts = timeout, closed
		c, p := connect(t, u, nil)
		c.write(text(false, "hel"))
		time.Sleep(timeout / 2)
		c.write(cont(true, "lo"))
		if m := p.waitMsg(t); m != "hello" {
			t.Fatalf("message %q", m)
		}
		time.Sleep(3 * timeout)
		c.write(text(true, "later"))
		if m := p.waitMsg(t); m != "later" {
			t.Fatalf("message %q", m)
		}
		if n := closed.n.Load(); n != 0 {
			t.Fatalf("MessageTimeouts counted %d, want 0", n)
		}
	})
}

// The HTTP server's ReadTimeout and WriteTimeout do not reach the upgraded
// connection: it works in both directions long after they have passed.
func TestServerTimeoutsClearedAfterUpgrade(t *testing.T) {
	modes(t, func(t *testing.T, u *Upgrader) {
		peers := make(chan *peer, 1)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := newPeer()
			c, err := u.Upgrade(w, r, p, p)
			if err != nil {
				t.Errorf("upgrade: %v", err)
				return
			}
			p.c = c
			c.Start()
			peers <- p
		}))
		const timeout = 150 * time.Millisecond
		srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
		srv.Start()
		t.Cleanup(srv.Close)
		s := &server{url: "ws" + strings.TrimPrefix(srv.URL, "http"), peers: peers}
		c, p := s.dial(t)
		time.Sleep(3 * timeout)
		c.write(text(true, "in"))
		if m := p.waitMsg(t); m != "in" {
			t.Fatalf("message %q", m)
		}
		p.send(nil, "out")
		if f := c.read(); f.Header.OpCode != ws.OpText || string(f.Payload) != "out" {
			t.Fatalf("got %v %q, want the text message", f.Header.OpCode, f.Payload)
		}
	})
}
