//go:build linux

package turnserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// listenRaw binds a UDP socket on network/addr and wraps it, failing the
// test unless it becomes a *rawUDPConn.
func listenRaw(t *testing.T, network, addr string) *rawUDPConn {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	rc, ok := wrapUDP(c).(*rawUDPConn)
	if !ok {
		t.Fatalf("wrapUDP(%T) did not wrap", c)
	}
	return rc
}

func readRaw(t *testing.T, c net.PacketConn, buf []byte) (int, *net.UDPAddr) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, addr, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		t.Fatalf("ReadFrom address is %T, want *net.UDPAddr (pion requires it)", addr)
	}
	return n, ua
}

// The raw path must be indistinguishable from net.UDPConn: same bytes, same
// source address, both families, and a dual-stack socket reaching IPv4.
func TestRawUDPConnRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, network, addr, dial string }{
		{"ipv4", "udp4", "127.0.0.1:0", "127.0.0.1"},
		{"ipv6", "udp6", "[::1]:0", "::1"},
		{"dual-stack to ipv4", "udp", ":0", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := listenRaw(t, tc.network, tc.addr)
			b := listenRaw(t, tc.network, tc.addr)
			to := &net.UDPAddr{IP: net.ParseIP(tc.dial), Port: b.LocalAddr().(*net.UDPAddr).Port}
			msg := []byte("hello through recvfrom")
			if n, err := a.WriteTo(msg, to); err != nil || n != len(msg) {
				t.Fatalf("WriteTo = %d, %v", n, err)
			}
			buf := make([]byte, 1500)
			n, from := readRaw(t, b, buf)
			if !bytes.Equal(buf[:n], msg) {
				t.Fatalf("read %q, want %q", buf[:n], msg)
			}
			if from.Port != a.LocalAddr().(*net.UDPAddr).Port || !from.IP.Equal(to.IP) || from.Zone != "" {
				t.Fatalf("source %v, want %s port %d", from, tc.dial, a.LocalAddr().(*net.UDPAddr).Port)
			}
			// The reply goes back to the address ReadFrom returned, as
			// pion does with a client's 5-tuple.
			if _, err := b.WriteTo([]byte("reply"), from); err != nil {
				t.Fatalf("reply: %v", err)
			}
			if n, _ := readRaw(t, a, buf); string(buf[:n]) != "reply" {
				t.Fatalf("reply read %q", buf[:n])
			}
		})
	}
}

// A datagram larger than the buffer is truncated to the buffer, as with
// net.UDPConn; pion detects it by n == len(buffer).
func TestRawUDPConnTruncates(t *testing.T) {
	a := listenRaw(t, "udp4", "127.0.0.1:0")
	b := listenRaw(t, "udp4", "127.0.0.1:0")
	if _, err := a.WriteTo(bytes.Repeat([]byte("x"), 100), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if n, _ := readRaw(t, b, buf); n != len(buf) {
		t.Fatalf("n = %d, want %d", n, len(buf))
	}
}

// Closing the socket must end a blocked ReadFrom with net.ErrClosed: that is
// how pion's read loops, and with them allocations, end.
func TestRawUDPConnCloseEndsRead(t *testing.T) {
	c := listenRaw(t, "udp4", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 100))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it block in the netpoller
	_ = c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrom still blocked after Close")
	}
}

func TestRawUDPConnDeadline(t *testing.T) {
	c := listenRaw(t, "udp4", "127.0.0.1:0")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, _, err := c.ReadFrom(make([]byte, 100)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom past deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}

// Addresses the raw path does not handle go through net.UDPConn, which
// sends or refuses them as it always did.
func TestRawUDPConnFallbacks(t *testing.T) {
	a := listenRaw(t, "udp4", "127.0.0.1:0")
	b := listenRaw(t, "udp4", "127.0.0.1:0")
	if _, err := a.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("::1"), Port: 9}); err == nil {
		t.Error("IPv6 destination on an IPv4 socket: no error")
	}
	if _, err := a.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 70000}); err == nil {
		t.Error("port 70000: no error")
	}
	if _, err := a.WriteTo([]byte("x"), &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
		t.Error("*net.IPAddr destination: no error")
	}
	// An IPv4 address held as a 16-byte slice (net.IPv4's form) is sent
	// by the raw path itself.
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1).To16(), Port: b.LocalAddr().(*net.UDPAddr).Port}
	if _, err := a.WriteTo([]byte("sixteen"), to); err != nil {
		t.Fatalf("16-byte IPv4 address: %v", err)
	}
	buf := make([]byte, 100)
	if n, _ := readRaw(t, b, buf); string(buf[:n]) != "sixteen" {
		t.Fatalf("read %q", buf[:n])
	}

	// Other PacketConns are not wrapped.
	var other net.PacketConn = struct{ net.PacketConn }{a}
	if wrapUDP(other) != other {
		t.Error("wrapUDP wrapped a non-UDPConn")
	}
}

// pion writes to the listening socket from every allocation's goroutine at
// once; the pooled per-call state must not mix calls (run with -race).
func TestRawUDPConnConcurrent(t *testing.T) {
	sink := listenRaw(t, "udp4", "127.0.0.1:0")
	src := listenRaw(t, "udp4", "127.0.0.1:0")
	const writers, each = 8, 50
	// At most inFlight datagrams unread at once: far below what the
	// socket's receive buffer holds, so loopback drops none however slowly
	// the reader is scheduled (UDP would otherwise drop a burst's tail on
	// a loaded machine, and the test would measure the scheduler).
	const inFlight = 32
	slots := make(chan struct{}, inFlight)
	got := make(chan string, writers*each)
	go func() {
		buf := make([]byte, 100)
		for {
			n, _, err := sink.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
			<-slots
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				slots <- struct{}{}
				if _, err := src.WriteTo(fmt.Appendf(nil, "%d-%d", w, i), sink.LocalAddr()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for len(seen) < writers*each {
		select {
		case s := <-got:
			if seen[s] {
				t.Fatalf("datagram %q received twice", s)
			}
			seen[s] = true
		case <-timeout:
			t.Fatalf("received %d of %d distinct datagrams", len(seen), writers*each)
		}
	}
	wg.Wait()
}

// On Linux the server's listening socket and every relay socket take the
// raw path; this guards against a refactor silently dropping it.
func TestRelaySocketsAreRaw(t *testing.T) {
	s := startServer(t, testConfig())
	inner := &turn.RelayAddressGeneratorPortRange{
		RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1", MinPort: 42000, MaxPort: 42999,
	}
	if err := inner.Validate(); err != nil {
		t.Fatal(err)
	}
	gen := &relayGenerator{srv: s, inner: inner}
	conn, _, err := gen.AllocatePacketConn(turn.AllocateListenerConfig{Network: "udp4", UserID: "raw-check"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := conn.(*relayConn).PacketConn.(*rawUDPConn); !ok {
		t.Fatalf("relay socket is %T, want *rawUDPConn", conn.(*relayConn).PacketConn)
	}
}
