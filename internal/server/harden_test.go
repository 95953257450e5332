package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialFrom opens a WebSocket to the node from the local address from (any
// of 127.0.0.0/8 reaches the node on Linux), with X-Forwarded-For xff if
// not empty. It returns the HTTP status of a refused upgrade, 101 when
// upgraded.
func dialFrom(t *testing.T, addr, from, xff string) (int, *websocket.Conn) {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 3 * time.Second,
		NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext,
	}
	h := http.Header{}
	if xff != "" {
		h.Set("X-Forwarded-For", xff)
	}
	c, resp, err := d.Dial("ws://"+addr+"/ws", h)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial from %s: %v", from, err)
		}
		return resp.StatusCode, nil
	}
	t.Cleanup(func() { _ = c.Close() })
	return resp.StatusCode, c
}

// Issue 12 row 4: with --trusted-proxies 127.0.0.1/32 and a cap of 5
// connections per IP, a client at 127.0.0.2 that forges X-Forwarded-For
// is still counted as 127.0.0.2; through the trusted proxy the right-most
// untrusted address counts, and a forged left-most entry does not change it.
func TestTrustedProxies(t *testing.T) {
	c := testConfig()
	c.MaxConnsPerIP = 5
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	s := start(t, c)

	for i := range 6 {
		code, _ := dialFrom(t, s.Addr(), "127.0.0.2", "198.51.100."+string(rune('1'+i)))
		want := http.StatusSwitchingProtocols
		if i == 5 {
			want = http.StatusTooManyRequests
		}
		if code != want {
			t.Fatalf("untrusted peer, connection %d with a forged header: %d, want %d", i+1, code, want)
		}
	}

	for i := range 6 {
		code, _ := dialFrom(t, s.Addr(), "127.0.0.1", "6.6.6."+string(rune('1'+i))+", 203.0.113.7")
		want := http.StatusSwitchingProtocols
		if i == 5 {
			want = http.StatusTooManyRequests
		}
		if code != want {
			t.Fatalf("through the proxy, connection %d for 203.0.113.7 with a forged left-most entry: %d, want %d", i+1, code, want)
		}
	}
	// Another client behind the same proxy has its own count.
	if code, _ := dialFrom(t, s.Addr(), "127.0.0.1", "203.0.113.8"); code != http.StatusSwitchingProtocols {
		t.Fatalf("another client through the proxy: %d, want 101", code)
	}
	// Garbage in the header falls back to the peer: the proxy's own address.
	if code, _ := dialFrom(t, s.Addr(), "127.0.0.1", "203.0.113.9, not-an-ip"); code != http.StatusSwitchingProtocols {
		t.Fatalf("malformed header through the proxy: %d, want 101", code)
	}
	_, body := get(t, "http://"+s.AdminAddr()+"/metrics")
	for _, want := range []string{
		`stranger_forwarded_for_ignored_total{reason="untrusted_peer"} 6`,
		`stranger_forwarded_for_ignored_total{reason="malformed"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// Issue 12 row 10: /metrics is served on the admin listener only, unless
// --public-metrics.
func TestMetricsOnlyOnTheAdminListener(t *testing.T) {
	s := start(t, testConfig())
	if code, _ := get(t, "http://"+s.Addr()+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the public address: %d, want 404", code)
	}
	if code, body := get(t, "http://"+s.AdminAddr()+"/metrics"); code != 200 || !strings.Contains(body, "stranger_sessions_connected") {
		t.Errorf("/metrics on the admin address: %d", code)
	}

	c := testConfig()
	c.PublicMetrics = true
	s = start(t, c)
	if code, body := get(t, "http://"+s.Addr()+"/metrics"); code != 200 || !strings.Contains(body, "stranger_sessions_connected") {
		t.Errorf("/metrics on the public address with --public-metrics: %d", code)
	}
}

// Issue 12 row 8: the admin listener does not print the command line; a
// profile is bounded so the write timeout does not cut it off.
func TestAdminHasNoCmdline(t *testing.T) {
	s := start(t, testConfig())
	if code, _ := get(t, "http://"+s.AdminAddr()+"/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/cmdline: %d, want 404", code)
	}
	if code, _ := get(t, "http://"+s.AdminAddr()+"/debug/pprof/"); code != 200 {
		t.Errorf("/debug/pprof/ index: %d", code)
	}
	for _, q := range []string{"seconds=600", "seconds=0", "seconds=x"} {
		if code, _ := get(t, "http://"+s.AdminAddr()+"/debug/pprof/profile?"+q); code != http.StatusBadRequest {
			t.Errorf("/debug/pprof/profile?%s: %d, want 400", q, code)
		}
	}
	if code, _ := get(t, "http://"+s.AdminAddr()+"/debug/pprof/trace?seconds=0.1"); code != 200 {
		t.Errorf("/debug/pprof/trace?seconds=0.1: %d, want 200", code)
	}
}

// Issue 12 row 6: a keep-alive connection left idle is closed by the
// server after --http-idle-timeout, on the public and the admin listener.
func TestIdleKeepAliveClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	c := testConfig()
	c.HTTPIdleTimeout = idle
	s := start(t, c)
	for _, addr := range []string{s.Addr(), s.AdminAddr()} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		// Two requests on one connection: it is kept alive.
		for range 2 {
			if _, err := io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.Close {
				t.Fatalf("%s: the server did not keep the connection alive", addr)
			}
		}
		idleFrom := time.Now()
		_ = nc.SetReadDeadline(time.Now().Add(idle + 3*time.Second))
		_, err = br.ReadByte()
		took := time.Since(idleFrom)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: idle connection still open after %v", addr, took)
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("%s: read after idling: %v, want EOF", addr, err)
		}
		if took < idle-50*time.Millisecond {
			t.Fatalf("%s: closed after %v, before the idle timeout %v", addr, took, idle)
		}
	}
}

// The node's own timeouts do not end a WebSocket: one open longer than
// the HTTP timeouts would allow a request still works (the public write
// timeout is a minute; the idle timeout here is shorter than the wait).
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	c := testConfig()
	c.HTTPIdleTimeout = 200 * time.Millisecond
	s := start(t, c)
	_, ws := dialFrom(t, s.Addr(), "127.0.0.1", "")
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil { // welcome
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","mode":"text"}`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	for ctx.Err() == nil {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after idling past the HTTP idle timeout: %v", err)
		}
		if strings.Contains(string(b), `"waiting"`) {
			return
		}
	}
	t.Fatal("no answer to join")
}

// Issue 12 row 7 on a real node: a client that leaves a fragmented message
// unfinished while its connection stays open is closed with 1008 within
// the 10 s message timeout, and its session ends at once (no grace
// period): the partner is told peer_left "disconnected".
func TestUnfinishedMessageEndsTheSession(t *testing.T) {
	t.Parallel()
	s := start(t, testConfig())
	_, a := dialFrom(t, s.Addr(), "127.0.0.1", "")
	_, b := dialFrom(t, s.Addr(), "127.0.0.1", "")
	pairText(t, a, b)
	// The first frame of a text message (FIN clear), masked as a client's.
	payload := []byte(`{"type":"chat","te`)
	frame := []byte{0x01, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i, p := range payload {
		frame = append(frame, p^[]byte{1, 2, 3, 4}[i%4])
	}
	start := time.Now()
	if _, err := a.UnderlyingConn().Write(frame); err != nil {
		t.Fatal(err)
	}
	closed := make(chan int, 1)
	go func() { // reading answers the server's pings
		_ = a.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			if _, _, err := a.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					closed <- ce.Code
				} else {
					closed <- 0
				}
				return
			}
		}
	}()
	_ = b.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, msg, err := b.ReadMessage()
		if err != nil {
			t.Fatalf("partner: %v", err)
		}
		if strings.Contains(string(msg), `"peer_left"`) {
			if !strings.Contains(string(msg), `"disconnected"`) {
				t.Fatalf("partner got %s, want reason disconnected", msg)
			}
			break
		}
	}
	if took := time.Since(start); took < 9*time.Second || took > 14*time.Second {
		t.Errorf("partner told after %v, want about the 10 s message timeout (no grace period)", took)
	}
	if code := <-closed; code != websocket.ClosePolicyViolation {
		t.Errorf("close code %d, want 1008", code)
	}
	_, body := get(t, "http://"+s.AdminAddr()+"/metrics")
	if !strings.Contains(body, "stranger_ws_message_timeouts_total 1\n") {
		t.Error("stranger_ws_message_timeouts_total is not 1")
	}
}
