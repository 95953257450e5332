package conformance

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/strangerchat/stranger/test/wsclient"
)

// transportCases: protocol.md "Transport" and "Other HTTP endpoints".
func transportCases() []testCase {
	return []testCase{
		{name: "transport/binary_frame_closes_1003_session_resumable", run: testBinaryFrame},
		{name: "transport/frame_over_64KiB_closes_1009_session_resumable", run: testFrameTooBig},
		{name: "transport/frame_of_64KiB_is_accepted", run: testFrameAtLimit},
		{name: "transport/origin_absent_allowed", run: testOriginAbsent},
		{name: "transport/origin_same_host_allowed", run: testOriginSameHost},
		{name: "transport/origin_other_host_403", run: testOriginOtherHost},
		{name: "transport/origin_null_403", run: testOriginNull},
		{name: "transport/origin_missing_port_is_scheme_default", run: testOriginDefaultPort},
		{name: "transport/origin_configured_allowed", run: testOriginConfigured,
			opts: func(o *Options) { o.AllowedOrigins = []string{"https://chat.example.com"} }},
		{name: "transport/client_close_1000_ends_session", run: func(t *testing.T, e *env) { testClientCloseEnds(t, e, 1000) }},
		{name: "transport/client_close_1001_ends_session", run: func(t *testing.T, e *env) { testClientCloseEnds(t, e, 1001) }},
		{name: "transport/client_close_other_code_starts_grace", run: testClientCloseOther},
		{name: "transport/server_pings", run: testServerPings, opts: pingOpts},
		{name: "transport/answered_pings_keep_connection", run: testPingsAnswered, opts: pingOpts},
		{name: "transport/missed_pongs_drop_connection_grace", run: testPongsMissed, opts: pingOpts},
		{name: "http/healthz_200", run: testHealthz},
		{name: "http/readyz_200_then_503_draining_sockets_1012", run: testReadyzDrain},
	}
}

func pingOpts(o *Options) {
	o.RealClock = true
	// Short, but with room for a loaded machine (2 cores, the race
	// detector): a pong answered late must not look like a dead client.
	o.PingInterval = 100 * time.Millisecond
	o.PongTimeout = 600 * time.Millisecond
}

// A binary frame closes the connection with 1003; that close is not the
// client's 1000/1001, so the session keeps its grace period and resumes.
func testBinaryFrame(t *testing.T, e *env) {
	a, b, ma, _ := e.pair(t, "")
	if err := a.SendBinary([]byte(`{"type":"chat","text":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	a.ExpectClose(t, websocket.CloseUnsupportedData)
	b.ExpectNothing(t)
	a2 := e.resumeLast(t, a)
	if got := a2.Welcome.Str("state"); got != "chatting" {
		t.Fatalf("resumed state %q, want chatting: %s", got, a2.Welcome)
	}
	if chat, _ := a2.Welcome["chat"].(map[string]any); chat == nil || chat["room"] != ma.Str("room") {
		t.Fatalf("resumed chat %v, want room %s", a2.Welcome["chat"], ma.Str("room"))
	}
	b.ExpectNothing(t)
}

func testFrameTooBig(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	big := `{"type":"chat","text":"` + strings.Repeat("x", 64<<10) + `"}`
	_ = a.TrySend(big) // the server may close before it has read it all
	a.ExpectClose(t, websocket.CloseMessageTooBig)
	b.ExpectNothing(t)
	a2 := e.resumeLast(t, a)
	if got := a2.Welcome.Str("state"); got != "chatting" {
		t.Fatalf("resumed state %q, want chatting", got)
	}
}

// A frame of exactly 64 KiB is read and checked (here: a signal with too
// much data, so too_long) and the connection stays open.
func testFrameAtLimit(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	prefix, suffix := `{"type":"signal","data":"`, `"}`
	frame := prefix + strings.Repeat("y", 64<<10-len(prefix)-len(suffix)) + suffix
	if len(frame) != 64<<10 {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	a.Send(t, frame)
	a.ExpectError(t, "too_long")
	b.ExpectNothing(t)
	a.Send(t, M{"type": "chat", "text": "still here"})
	b.Expect(t, "chat")
}

// originDial connects to node 0 (whose host the Origin cases name) with
// the given Host and Origin headers ("" = not set) and returns the status.
func originDial(t *testing.T, e *env, host, origin string) (int, *Client) {
	t.Helper()
	h := http.Header{}
	if host != "" {
		h.Set("Host", host)
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := e.dial(t, 0, "", DialOptions{Header: h})
	if err != nil {
		if resp == nil {
			t.Fatalf("dial with Origin %q: %v", origin, err)
		}
		return resp.StatusCode, nil
	}
	c.Expect(t, "welcome")
	return http.StatusSwitchingProtocols, c
}

func nodeHost(e *env, i int) string {
	u := strings.TrimPrefix(e.d.URL(i), "ws://")
	host, _, _ := strings.Cut(u, "/")
	return host
}

func testOriginAbsent(t *testing.T, e *env) {
	if code, _ := originDial(t, e, "", ""); code != http.StatusSwitchingProtocols {
		t.Fatalf("no Origin: status %d, want 101", code)
	}
}

func testOriginSameHost(t *testing.T, e *env) {
	i := e.node()
	h := nodeHost(e, i)
	c, resp, err := e.dial(t, i, "", DialOptions{Header: http.Header{"Origin": {"http://" + h}}})
	if err != nil {
		t.Fatalf("Origin http://%s: %v (response %v)", h, err, resp)
	}
	c.Expect(t, "welcome")
}

func testOriginOtherHost(t *testing.T, e *env) {
	for _, o := range []string{"http://evil.example", "http://127.0.0.2:" + portOf(nodeHost(e, 0)), "http://" + nodeHost(e, 0) + "0"} {
		if code, _ := originDial(t, e, "", o); code != http.StatusForbidden {
			t.Errorf("Origin %q: status %d, want 403", o, code)
		}
	}
}

func portOf(hostport string) string {
	_, p, _ := strings.Cut(hostport, ":")
	return p
}

func testOriginNull(t *testing.T, e *env) {
	if code, _ := originDial(t, e, "", "null"); code != http.StatusForbidden {
		t.Fatalf("Origin null: status %d, want 403", code)
	}
}

// A missing port is the default port of the Origin's scheme, on either
// side: Host "chat.example" matches http://chat.example and, behind a proxy
// that terminates TLS, https://chat.example.
func testOriginDefaultPort(t *testing.T, e *env) {
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{"chat.example", "http://chat.example", http.StatusSwitchingProtocols},
		{"chat.example", "http://chat.example:80", http.StatusSwitchingProtocols},
		{"chat.example:80", "http://chat.example", http.StatusSwitchingProtocols},
		{"chat.example", "https://chat.example", http.StatusSwitchingProtocols},
		{"chat.example:443", "https://chat.example", http.StatusSwitchingProtocols},
		{"chat.example", "https://chat.example:443", http.StatusSwitchingProtocols},
		{"chat.example:80", "https://chat.example", http.StatusForbidden},
		{"chat.example:443", "http://chat.example", http.StatusForbidden},
		{"chat.example", "http://chat.example:8080", http.StatusForbidden},
		{"chat.example:8080", "http://chat.example", http.StatusForbidden},
		{"chat.example", "http://other.example", http.StatusForbidden},
	} {
		if code, _ := originDial(t, e, tc.host, tc.origin); code != tc.want {
			t.Errorf("Host %q, Origin %q: status %d, want %d", tc.host, tc.origin, code, tc.want)
		}
	}
}

func testOriginConfigured(t *testing.T, e *env) {
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"https://chat.example.com", http.StatusSwitchingProtocols},
		{"https://chat.example.com:443", http.StatusSwitchingProtocols},
		{"https://CHAT.example.com", http.StatusSwitchingProtocols},
		{"http://chat.example.com", http.StatusForbidden},
		{"https://chat.example.com:8443", http.StatusForbidden},
		{"https://other.example.com", http.StatusForbidden},
		{"http://" + nodeHost(e, 0), http.StatusSwitchingProtocols}, // its own host still is allowed
	} {
		if code, _ := originDial(t, e, "", tc.origin); code != tc.want {
			t.Errorf("Origin %q: status %d, want %d", tc.origin, code, tc.want)
		}
	}
}

// A close the client starts with 1000 or 1001 ends the session at once:
// the partner gets peer_left left, and the token no longer resumes.
func testClientCloseEnds(t *testing.T, e *env, code int) {
	a, b, _, _ := e.pair(t, "")
	a.Close(code)
	pl := b.Expect(t, "peer_left")
	if pl.Str("reason") != "left" {
		t.Fatalf("peer_left %s, want reason left", pl)
	}
	e.resumeFails(t, a.Token, a.Session)
	// b is idle: join is valid.
	join(t, b, "")
}

// Any other client close (here 4000) is a drop: the grace period starts.
func testClientCloseOther(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Close(4000)
	b.ExpectNothing(t)
	a2 := e.resumeLast(t, a)
	if a2.Welcome.Str("state") != "chatting" {
		t.Fatalf("resumed state %q, want chatting", a2.Welcome.Str("state"))
	}
	a2.Send(t, M{"type": "chat", "text": "back"})
	if b.Expect(t, "chat").Str("text") != "back" {
		t.Fatal("relay after resume failed")
	}
}

func testServerPings(t *testing.T, e *env) {
	c := e.client(t)
	deadline := time.Now().Add(expectTimeout)
	for c.Pings() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d server pings within %v, want at least 2 (ping interval %v)", c.Pings(), expectTimeout, e.o.PingInterval)
		}
		c.ExpectNothingFor(t, e.o.PingInterval)
	}
}

// A client that answers pings keeps its connection well past the pong
// timeout.
func testPingsAnswered(t *testing.T, e *env) {
	c := e.client(t)
	c.ExpectNothingFor(t, 2*e.o.PongTimeout)
	if c.Pings() == 0 {
		t.Fatal("no pings seen")
	}
}

// A client whose pongs stop is dropped after the pong timeout; that is a
// drop, so its session resumes.
func testPongsMissed(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	start := time.Now() // the server's pong clock starts after this
	deaf, _, err := e.dial(t, e.node(), "?"+wsclient.ResumeQuery(a.Token, itoa(a.Last())), DialOptions{IgnorePings: true})
	if err != nil {
		t.Fatal(err)
	}
	w := deaf.Expect(t, "welcome")
	if r, _ := w.Bool("resumed"); !r {
		t.Fatalf("resume failed: %s", w)
	}
	deaf.Session, deaf.Token = w.Str("session"), w.Str("resumeToken")
	deaf.SetLast(a.Last())
	a.ExpectClose(t, 4001) // the resume took the session over
	deaf.ExpectClose(t, websocket.CloseAbnormalClosure)
	if d := time.Since(start); d < e.o.PongTimeout {
		t.Fatalf("dropped after %v, before the pong timeout %v", d, e.o.PongTimeout)
	}
	b.ExpectNothing(t)
	a3 := e.resumeLast(t, deaf)
	if a3.Welcome.Str("state") != "chatting" {
		t.Fatalf("state %q after resume, want chatting", a3.Welcome.Str("state"))
	}
}

func testHealthz(t *testing.T, e *env) {
	for i := range e.d.Nodes() {
		if code := e.httpGet(t, i, "/healthz"); code != http.StatusOK {
			t.Fatalf("node %d /healthz: %d", i, code)
		}
	}
}

func testReadyzDrain(t *testing.T, e *env) {
	for i := range e.d.Nodes() {
		if code := e.httpGet(t, i, "/readyz"); code != http.StatusOK {
			t.Fatalf("node %d /readyz: %d, want 200", i, code)
		}
	}
	c := e.connectAt(t, 0, "", DialOptions{})
	e.d.Drain(0)
	c.ExpectClose(t, websocket.CloseServiceRestart)
	if code := e.httpGet(t, 0, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining: %d, want 503", code)
	}
	if code := e.httpGet(t, 0, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while draining: %d, want 200 (the process still serves)", code)
	}
}
