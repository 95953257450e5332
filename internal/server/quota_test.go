package server_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Issue 12, row 1, against a node built from the default configuration
// (with --max-waiting 20, as in the issue): 20 rounds of connect, join and
// TCP reset from one address. The attacker's quota stops it before the
// queue is full, a new user from another address gets waiting, and
// /metrics counts the refusals. This is the flags' wiring; the quotas
// themselves are tested in internal/signaling.
func TestQuotaRow1WithDefaults(t *testing.T) {
	c := testConfig()
	c.MaxWaiting = 20
	s := start(t, c)
	url := "ws://" + s.Addr() + "/ws"
	dial := func(src string) *websocket.Conn {
		t.Helper()
		d := websocket.Dialer{HandshakeTimeout: 3 * time.Second, NetDial: func(network, addr string) (net.Conn, error) {
			return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).Dial(network, addr)
		}}
		ws, resp, err := d.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial from %s: %v %v", src, err, resp)
		}
		t.Cleanup(func() { _ = ws.Close() })
		quotaRead(t, ws) // welcome
		return ws
	}
	refused := 0
	for range 20 {
		ws := dial("127.0.0.2")
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","mode":"text"}`)); err != nil {
			t.Fatal(err)
		}
		if f := quotaRead(t, ws); !strings.Contains(f, `"waiting"`) {
			if !strings.Contains(f, `"rate_limited"`) {
				t.Fatalf("attacker's join got %s, want waiting or rate_limited", f)
			}
			refused++
		}
		tc := ws.UnderlyingConn().(*net.TCPConn)
		_ = tc.SetLinger(0)
		_ = tc.Close()
		// The drop is seen before the next round, so the attacker's
		// sessions are not matched with each other.
		for deadline := time.Now().Add(3 * time.Second); s.Hub().Online() != 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the reset connection was not seen")
			}
		}
	}
	if refused != 10 {
		t.Errorf("attacker refused %d times, want 10 (the default --max-waiting-per-ip)", refused)
	}
	user := dial("127.0.0.3")
	if err := user.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","mode":"video"}`)); err != nil {
		t.Fatal(err)
	}
	if f := quotaRead(t, user); !strings.Contains(f, `"waiting"`) {
		t.Fatalf("new user's join got %s, want waiting", f)
	}
	code, body := get(t, "http://"+s.AdminAddr()+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `stranger_quota_refusals_total{reason="waiting_per_ip"} 10`) {
		t.Fatalf("/metrics (%d) does not count the 10 refusals:\n%s", code, quotaGrep(body, "stranger_quota"))
	}
}

func quotaRead(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func quotaGrep(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
