package netpoll

import (
	"net"
	"runtime"
	"testing"
	"time"
)

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		if runtime.GOOS != "linux" {
			t.Skipf("no poller on %s: %v", runtime.GOOS, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close(); _ = sc.Close() })
	return sc.(*net.TCPConn), cc.(*net.TCPConn)
}

// watch registers c with p; each callback sends on the returned channel.
func watch(t *testing.T, p *Poller, c Conn) (*Desc, chan struct{}) {
	t.Helper()
	calls := make(chan struct{}, 10)
	d, err := p.Add(c, func() { calls <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	return d, calls
}

func expectCall(t *testing.T, calls chan struct{}, want bool, what string) {
	t.Helper()
	select {
	case <-calls:
		if !want {
			t.Fatalf("callback ran: %s", what)
		}
	case <-time.After(200 * time.Millisecond):
		if want {
			t.Fatalf("no callback: %s", what)
		}
	}
}

// The callback runs when bytes arrive, once per arming: not again until
// Resume, and at once after Resume if bytes are still waiting.
func TestCallbackOncePerArming(t *testing.T) {
	p := newPoller(t)
	sc, cc := tcpPair(t)
	d, calls := watch(t, p, sc)
	expectCall(t, calls, false, "before any byte arrived")
	_, _ = cc.Write([]byte("ab"))
	expectCall(t, calls, true, "bytes arrived")
	_, _ = cc.Write([]byte("cd"))
	expectCall(t, calls, false, "more bytes before Resume")
	if err := d.Resume(); err != nil {
		t.Fatal(err)
	}
	expectCall(t, calls, true, "Resume with unread bytes")
	buf := make([]byte, 8)
	if n, _ := sc.Read(buf); n != 4 {
		t.Fatalf("read %d bytes, want the 4 sent", n)
	}
	if err := d.Resume(); err != nil {
		t.Fatal(err)
	}
	expectCall(t, calls, false, "Resume after everything was read")
	_ = cc.Close()
	expectCall(t, calls, true, "the peer closed")
}

// After Remove, or once the connection is closed, no callback runs and
// Resume fails.
func TestRemoveAndClose(t *testing.T) {
	p := newPoller(t)
	sc, cc := tcpPair(t)
	d, calls := watch(t, p, sc)
	d.Remove()
	_, _ = cc.Write([]byte("x"))
	expectCall(t, calls, false, "after Remove")
	_ = sc.Close()
	if err := d.Resume(); err == nil {
		t.Fatal("Resume of a closed connection succeeded")
	}
}

// A descriptor number reused by a new connection gets only its own
// callbacks.
func TestReusedDescriptor(t *testing.T) {
	p := newPoller(t)
	sc1, _ := tcpPair(t)
	d1, old := watch(t, p, sc1)
	d1.Remove()
	_ = sc1.Close()
	sc2, cc2 := tcpPair(t)
	_, calls := watch(t, p, sc2)
	_, _ = cc2.Write([]byte("x"))
	expectCall(t, calls, true, "bytes for the new connection")
	expectCall(t, old, false, "the old connection's callback")
}
