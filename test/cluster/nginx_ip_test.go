package cluster_test

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/strangerchat/stranger/internal/redistest"
)

// TestNginxForwardsTheClientAddress: behind deploy/nginx.conf, a node with
// --trusted-proxies 127.0.0.1/32 counts each client by the address nginx
// saw, whatever the client wrote into X-Forwarded-For itself (issue 12
// row 4, end to end): a client at 127.0.0.2 forging a new address on every
// connection meets the per-IP cap of 2 at its third, and a client at
// 127.0.0.3 still gets in.
func TestNginxForwardsTheClientAddress(t *testing.T) {
	t.Parallel()
	rd := redistest.StartServer(t)
	n := startNode(t, "node", rd.URL(), "--trusted-proxies", "127.0.0.1/32", "--max-conns-per-ip", "2")
	// One node behind all three upstream lines: the per-IP count is a
	// node's own.
	lb := "ws://127.0.0.1:" + strconv.Itoa(startNginx(t, []int{n.port, n.port, n.port})) + "/ws"

	dialFrom := func(from, xff string) int {
		t.Helper()
		d := websocket.Dialer{
			HandshakeTimeout: 5 * time.Second,
			NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext,
		}
		c, resp, err := d.Dial(lb, http.Header{"X-Forwarded-For": {xff}})
		if err != nil {
			if resp == nil {
				t.Fatalf("dial from %s: %v", from, err)
			}
			return resp.StatusCode
		}
		t.Cleanup(func() { _ = c.Close() })
		return resp.StatusCode
	}
	for i, want := range []int{http.StatusSwitchingProtocols, http.StatusSwitchingProtocols, http.StatusTooManyRequests} {
		if code := dialFrom("127.0.0.2", "198.51.100."+strconv.Itoa(i+1)); code != want {
			t.Fatalf("127.0.0.2 through nginx with a forged header, connection %d: %d, want %d", i+1, code, want)
		}
	}
	if code := dialFrom("127.0.0.3", "198.51.100.1"); code != http.StatusSwitchingProtocols {
		t.Fatalf("127.0.0.3 through nginx: %d, want 101", code)
	}
}
