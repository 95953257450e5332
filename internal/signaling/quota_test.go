package signaling

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
)

// The quotas tested as the attacks of issue 12 (rows 1 and 2, skip spam),
// over real sockets; each test client dials from its own loopback source
// address (127.0.0.x), which is how the server tells people apart.

// quotaNode is a hub with the in-memory engine on a fake clock (grace
// periods never run out unless the test advances it), served on loopback.
type quotaNode struct {
	h   *Hub
	clk *clock.Fake
	reg *prometheus.Registry
	url string
}

func newQuotaNode(t *testing.T, o Options, maxWaiting int) *quotaNode {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	o.Clock = clk
	reg := prometheus.NewRegistry()
	o.Metrics = NewMetrics(reg)
	h := New(o)
	h.UseEngine(match.NewMemory(match.MemoryConfig{Clock: clk, MaxWaiting: maxWaiting}, h))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &quotaNode{h: h, clk: clk, reg: reg, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

// dialFrom connects from source address src (e.g. "127.0.0.2"). On a
// refusal before the upgrade it returns the HTTP response.
func (n *quotaNode) dialFrom(t *testing.T, src, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 2 * time.Second,
		NetDial: func(network, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			return nd.Dial(network, addr)
		},
	}
	ws, resp, err := d.Dial(n.url+query, nil)
	if err == nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}

// mustDial is dialFrom that must succeed; it returns the welcome too.
func (n *quotaNode) mustDial(t *testing.T, src, query string) (*websocket.Conn, map[string]any) {
	t.Helper()
	ws, resp, err := n.dialFrom(t, src, query)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial from %s%s: %v (HTTP %d)", src, query, err, status)
	}
	return ws, readType(t, ws, "welcome")
}

// refusedWith dials from src and expects an HTTP refusal with status.
func (n *quotaNode) refusedWith(t *testing.T, src, query string, status int) *http.Response {
	t.Helper()
	ws, resp, err := n.dialFrom(t, src, query)
	if err == nil {
		_ = ws.Close()
		t.Fatalf("dial from %s%s was upgraded; want HTTP %d", src, query, status)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("dial from %s%s: %v, response %v; want HTTP %d", src, query, err, resp, status)
	}
	return resp
}

// reset ends ws's TCP connection with a RST, the way a vanished client's
// does: no close frame, so its session waits out a grace period.
func reset(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	tc := ws.UnderlyingConn().(*net.TCPConn)
	if err := tc.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	_ = tc.Close()
}

func send(t *testing.T, ws *websocket.Conn, typ string) {
	t.Helper()
	if err := ws.WriteJSON(map[string]any{"type": typ}); err != nil {
		t.Fatalf("send %s: %v", typ, err)
	}
}

// readFrame reads the next frame, failing after 2 s.
func readFrame(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	var f map[string]any
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	if err := ws.ReadJSON(&f); err != nil {
		t.Fatalf("reading: %v", err)
	}
	return f
}

// refusals is stranger_quota_refusals_total{reason} as /metrics shows it.
func (n *quotaNode) refusals(t *testing.T, reason string) float64 {
	t.Helper()
	fams, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "stranger_quota_refusals_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no stranger_quota_refusals_total{reason=%q}", reason)
	return 0
}

// Row 1: connect, join, reset the TCP connection, 20 times from one
// address, with a queue of 20. The dropped sessions wait out their grace
// period in the queue; the attacker's own quota stops it before the queue
// is full, so a new user from another address still gets a partner search.
func TestQuotaRow1QueueFillFromOneIP(t *testing.T) {
	attack := func(t *testing.T, o Options) (refused int, newUser map[string]any) {
		n := newQuotaNode(t, o, 20)
		for range 20 {
			ws, _, err := n.dialFrom(t, "127.0.0.2", "")
			if err != nil {
				refused++ // refused before the upgrade: just as good
				continue
			}
			readType(t, ws, "welcome")
			send(t, ws, "join")
			if f := readFrame(t, ws); f["type"] != "waiting" {
				refused++
			}
			reset(t, ws)
			// Dropped before the next round, so the engine does not match
			// the attacker's sessions with each other.
			waitFor(t, func() bool { return n.h.Online() == 0 })
		}
		user, _ := n.mustDial(t, "127.0.0.3", "")
		send(t, user, "join")
		return refused, readFrame(t, user)
	}
	t.Run("quota", func(t *testing.T) {
		refused, f := attack(t, Options{MaxConnsPerIP: 20, MaxWaitingPerIP: 10})
		if refused != 10 {
			t.Errorf("attacker refused %d times, want 10 (all past --max-waiting-per-ip 10)", refused)
		}
		if f["type"] != "waiting" {
			t.Fatalf("new user's join got %v, want waiting", f)
		}
	})
	// The same attack without the quota fills the queue: what the test
	// above would see if the quota did not work.
	t.Run("without", func(t *testing.T) {
		refused, f := attack(t, Options{})
		if refused != 0 || f["code"] != "overloaded" {
			t.Fatalf("without quotas: attacker refused %d times, new user got %v; want 0 and overloaded", refused, f)
		}
	})
}

// Sessions in grace count against their identity: a reset TCP connection
// does not free its place.
func TestQuotaSessionsInGraceCount(t *testing.T) {
	n := newQuotaNode(t, Options{MaxConnsPerIP: 5}, 0)
	for range 5 {
		ws, _ := n.mustDial(t, "127.0.0.2", "")
		reset(t, ws)
	}
	waitFor(t, func() bool { return n.h.Online() == 0 }) // all five in grace
	n.refusedWith(t, "127.0.0.2", "", http.StatusTooManyRequests)
	n.mustDial(t, "127.0.0.3", "") // someone else is not affected
	if got := n.refusals(t, refusedSessions); got != 1 {
		t.Errorf("sessions_per_ip refusals = %v, want 1", got)
	}
	// Once the grace periods are over the address has its places back.
	n.clk.Advance(16 * time.Second)
	waitFor(t, func() bool {
		ws, _, err := n.dialFrom(t, "127.0.0.2", "")
		if err == nil {
			_ = ws.Close()
		}
		return err == nil
	})
}

// Row 2: 30 rounds of connect and reset from one address against
// --max-sessions 25: the per-identity cap stops the attacker at 20, so a
// new user gets in; and ?resume= with a token that resumes nothing does not
// pass --max-sessions, while a real resume does.
func TestQuotaRow2MaxSessionsAndBogusResume(t *testing.T) {
	n := newQuotaNode(t, Options{MaxConnsPerIP: 20, MaxSessions: 25}, 0)
	var tokens []string
	refused := 0
	for range 30 {
		ws, resp, err := n.dialFrom(t, "127.0.0.2", "")
		if err != nil {
			if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("attacker refused with %v %v, want 429", err, resp)
			}
			refused++
			continue
		}
		w := readType(t, ws, "welcome")
		tokens = append(tokens, w["resumeToken"].(string))
		reset(t, ws)
	}
	if refused != 10 {
		t.Fatalf("attacker refused %d of 30, want 10", refused)
	}
	n.mustDial(t, "127.0.0.3", "") // a new user gets in: 21 sessions
	for i := range 4 {             // other people fill the node: 25
		n.mustDial(t, "127.0.0.1"+string(rune('0'+i)), "")
	}
	n.refusedWith(t, "127.0.0.9", "", http.StatusServiceUnavailable)
	n.refusedWith(t, "127.0.0.9", "?resume=x", http.StatusServiceUnavailable)
	n.refusedWith(t, "127.0.0.2", "?resume=x", http.StatusTooManyRequests)
	// A used token is as good as none.
	n.mustDial(t, "127.0.0.2", "?resume="+tokens[0])
	n.refusedWith(t, "127.0.0.9", "?resume="+tokens[0], http.StatusServiceUnavailable)
	if got := n.refusals(t, refusedNodeFull); got != 3 {
		t.Errorf("max_sessions refusals = %v, want 3", got)
	}
}

// A real resume takes over its session, so the caps do not apply to it.
func TestQuotaResumePassesCaps(t *testing.T) {
	n := newQuotaNode(t, Options{MaxConnsPerIP: 1, MaxSessions: 1}, 0)
	ws, w := n.mustDial(t, "127.0.0.2", "")
	reset(t, ws)
	n.refusedWith(t, "127.0.0.2", "", http.StatusTooManyRequests)
	n.refusedWith(t, "127.0.0.3", "", http.StatusServiceUnavailable)
	_, w2 := n.mustDial(t, "127.0.0.3", "?resume="+w["resumeToken"].(string))
	if w2["resumed"] != true || w2["session"] != w["session"] {
		t.Fatalf("resume welcome %v, want the session %v resumed", w2, w["session"])
	}
}

// Connection attempts per identity are a token bucket: past the burst,
// 429 with Retry-After before the upgrade; other addresses are not
// affected, and the bucket refills.
func TestQuotaConnectionRate(t *testing.T) {
	n := newQuotaNode(t, Options{ConnRate: 1, ConnBurst: 3}, 0)
	for range 3 {
		ws, _ := n.mustDial(t, "127.0.0.2", "")
		_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		_ = ws.Close()
	}
	resp := n.refusedWith(t, "127.0.0.2", "", http.StatusTooManyRequests)
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	n.mustDial(t, "127.0.0.3", "")
	n.clk.Advance(time.Second)
	n.mustDial(t, "127.0.0.2", "")
	n.refusedWith(t, "127.0.0.2", "", http.StatusTooManyRequests)
	if got := n.refusals(t, refusedConnRate); got != 2 {
		t.Errorf("conn_rate refusals = %v, want 2", got)
	}
}

// Waiting sessions per identity: the third join from one address while two
// of its sessions wait gets rate_limited; another address's join does not;
// once one of them leaves the queue there is a place again.
func TestQuotaWaitingPerIdentity(t *testing.T) {
	n := newQuotaNode(t, Options{MaxWaitingPerIP: 2}, 0)
	var waiting []*websocket.Conn
	for _, mode := range []string{"video", "text"} { // not a match for each other
		ws, _ := n.mustDial(t, "127.0.0.2", "")
		if err := ws.WriteJSON(map[string]any{"type": "join", "mode": mode}); err != nil {
			t.Fatal(err)
		}
		readType(t, ws, "waiting")
		waiting = append(waiting, ws)
	}
	third, _ := n.mustDial(t, "127.0.0.2", "")
	send(t, third, "join")
	if f := readType(t, third, "error"); f["code"] != "rate_limited" {
		t.Fatalf("third join got %v, want rate_limited", f)
	}
	send(t, third, "next") // next from idle queues too: the same cap
	if f := readType(t, third, "error"); f["code"] != "rate_limited" {
		t.Fatalf("third next got %v, want rate_limited", f)
	}
	if got := n.refusals(t, refusedWaiting); got != 2 {
		t.Errorf("waiting_per_ip refusals = %v, want 2", got)
	}
	// leave has no reply; a ping's pong comes after it is carried out.
	send(t, waiting[0], "leave")
	send(t, waiting[0], "ping")
	readType(t, waiting[0], "pong")
	send(t, third, "join")
	readType(t, third, "waiting")
	// 127.0.0.2 is at its cap again; another address is not.
	other, _ := n.mustDial(t, "127.0.0.3", "")
	send(t, other, "join")
	readType(t, other, "waiting")
}

// waitFor polls cond for up to 2 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 2 s")
}

// skipPair is two users from different addresses chatting; skip has a
// skip to a new partner: a sends next, b (left idle) joins again, and both
// are matched once more. It returns a's reply to its next.
type skipPair struct{ a, b *websocket.Conn }

func newSkipPair(t *testing.T, n *quotaNode) *skipPair {
	t.Helper()
	a, _ := n.mustDial(t, "127.0.0.2", "")
	b, _ := n.mustDial(t, "127.0.0.3", "")
	send(t, a, "join")
	readType(t, a, "waiting")
	send(t, b, "join")
	readType(t, b, "waiting")
	readType(t, a, "matched")
	readType(t, b, "matched")
	return &skipPair{a, b}
}

// skip sends next from a; if it was accepted it brings b back and returns
// nil, else the error frame a got.
func (p *skipPair) skip(t *testing.T) map[string]any {
	t.Helper()
	send(t, p.a, "next")
	if f := readFrame(t, p.a); f["type"] != "waiting" {
		return f
	}
	readType(t, p.b, "peer_left")
	send(t, p.b, "join")
	readType(t, p.b, "waiting")
	readType(t, p.a, "matched")
	readType(t, p.b, "matched")
	return nil
}

// Skip spam: a session that clicks next as fast as it can is refused after
// the burst with rate_limited saying when to retry; leave and join do not
// refill the budget; time does.
func TestQuotaNextSpam(t *testing.T) {
	// b joins once per skip, so its budget is larger: only a is measured.
	n := newQuotaNode(t, Options{NextRate: 0.5, NextBurst: 5}, 0)
	p := newSkipPair(t, n)
	// a's join was one of its five.
	for i := range 4 {
		if f := p.skip(t); f != nil {
			t.Fatalf("skip %d refused: %v", i+1, f)
		}
		n.clk.Advance(100 * time.Millisecond) // b's joins come back in time
	}
	f := p.skip(t)
	if f == nil || f["code"] != "rate_limited" || !strings.Contains(f["message"].(string), "try again in 2 s") {
		t.Fatalf("fifth skip in a row got %v, want rate_limited saying try again in 2 s", f)
	}
	// The refused next changed nothing: still chatting, so a leave and a
	// join (which would find a new partner just the same) are refused too.
	send(t, p.a, "leave")
	readType(t, p.b, "peer_left")
	send(t, p.a, "join")
	if f := readType(t, p.a, "error"); f["code"] != "rate_limited" {
		t.Fatalf("join after leave got %v, want rate_limited", f)
	}
	if got := n.refusals(t, refusedRequeue); got != 2 {
		t.Errorf("next_rate refusals = %v, want 2", got)
	}
	n.clk.Advance(2 * time.Second)
	send(t, p.a, "join")
	readType(t, p.a, "waiting")
}

// A person clicking next after every short chat (one every 2 s or slower)
// never meets the limit, with the default figures.
func TestQuotaNextNormalPace(t *testing.T) {
	n := newQuotaNode(t, Options{NextRate: 0.5, NextBurst: 5}, 0)
	p := newSkipPair(t, n)
	for i := range 30 {
		n.clk.Advance(2 * time.Second)
		if f := p.skip(t); f != nil {
			t.Fatalf("skip %d after 2 s refused: %v", i+1, f)
		}
	}
	if got := n.refusals(t, refusedRequeue); got != 0 {
		t.Errorf("next_rate refusals = %v, want 0", got)
	}
}

// The budget is the session's: a resume (a new connection) does not refill
// it, on this node or, through Transfer, on another.
func TestQuotaNextBudgetSurvivesResume(t *testing.T) {
	n := newQuotaNode(t, Options{NextRate: 0.5, NextBurst: 2}, 0)
	ws, w := n.mustDial(t, "127.0.0.2", "")
	for range 2 { // join, leave, join: both tokens
		send(t, ws, "join")
		readType(t, ws, "waiting")
		send(t, ws, "leave")
	}
	reset(t, ws)
	ws2, w2 := n.mustDial(t, "127.0.0.2", "?resume="+w["resumeToken"].(string))
	if w2["resumed"] != true {
		t.Fatalf("not resumed: %v", w2)
	}
	send(t, ws2, "join")
	if f := readType(t, ws2, "error"); f["code"] != "rate_limited" {
		t.Fatalf("join after resume got %v, want rate_limited", f)
	}

	// Handed over to another node: the new node's session has what was
	// left, not a full budget.
	var s *session
	for _, x := range n.h.snapshot() {
		s = x
	}
	s.mu.Lock()
	tr := s.transferLocked()
	s.mu.Unlock()
	tr, err := DecodeTransfer(EncodeTransfer(tr))
	if err != nil {
		t.Fatal(err)
	}
	other := newQuotaNode(t, Options{NextRate: 0.5, NextBurst: 2}, 0)
	arrived := &session{id: s.id, hub: other.h, phase: phaseArriving}
	if !arrived.arrive(&conn{ip: "127.0.0.2"}, tr, "tok", "") {
		t.Fatal("arrive failed")
	}
	arrived.mu.Lock()
	ok := arrived.requeue.take(other.clk.Now(), 0.5, 2)
	arrived.mu.Unlock()
	if ok {
		t.Fatal("the arrived session had a join/next token; its budget was spent on the old node")
	}
}

// Connections that arrive together cannot pass the per-identity cap
// together: each is counted from admission, before its upgrade.
func TestQuotaConcurrentAdmissions(t *testing.T) {
	n := newQuotaNode(t, Options{MaxConnsPerIP: 20}, 0)
	results := make(chan int, 30)
	for range 30 {
		go func() {
			ws, resp, err := n.dialFrom(t, "127.0.0.2", "")
			switch {
			case err == nil:
				_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, _, err = ws.ReadMessage() // welcome
				if err != nil {
					results <- -1
					return
				}
				results <- http.StatusSwitchingProtocols
			case resp != nil:
				results <- resp.StatusCode
			default:
				results <- -1
			}
		}()
	}
	got := map[int]int{}
	for range 30 {
		got[<-results]++
	}
	if got[http.StatusSwitchingProtocols] != 20 || got[http.StatusTooManyRequests] != 10 {
		t.Fatalf("results %v, want 20 upgraded and 10 refused with 429", got)
	}
}

// BenchmarkQuotaAdmission is what the quotas add to one connection: its
// attempt bucket, a reservation and its release, over 1000 identities.
func BenchmarkQuotaAdmission(b *testing.B) {
	h := New(Options{MaxConnsPerIP: 20, MaxSessions: 1 << 20, ConnRate: 5, ConnBurst: 40})
	ids := make([]identity.Identity, 1000)
	for i := range ids {
		ids[i] = identityOf(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String())
	}
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		id := ids[i%len(ids)]
		now = now.Add(time.Millisecond) // 1000 attempts a second in all: 1 per identity
		if _, ok := h.allowAttempt(id, now); !ok {
			b.Fatal("refused")
		}
		if st, _, _ := h.reserve(id); st != 0 {
			b.Fatal("no room")
		}
		h.unreserve(id)
	}
}

// BenchmarkQuotaMayQueue is the waiting cap's check for a session whose
// identity holds the most sessions the default allows (20).
func BenchmarkQuotaMayQueue(b *testing.B) {
	h := New(Options{MaxWaitingPerIP: 10})
	id := identityOf("10.0.0.1")
	var first *session
	for i := range 20 {
		s := &session{id: ids.SessionID("s" + strconv.Itoa(i)), hub: h, phase: phaseConnected}
		h.mu.Lock()
		h.reserved++
		h.useLocked(id).reserved++
		h.mu.Unlock()
		h.register(s, "t"+strconv.Itoa(i), id)
		if first == nil {
			first = s
		}
	}
	b.ResetTimer()
	for range b.N {
		if !h.mayQueue(first) {
			b.Fatal("refused")
		}
		h.queued(first)
	}
}

// A token valid when its connection was admitted, whose session ends
// before the takeover, makes a new session only if there is room: here
// there is none, so attach refuses (ServeHTTP then closes with 1013).
func TestQuotaResumeThatFailsLateMeetsTheCap(t *testing.T) {
	n := newQuotaNode(t, Options{MaxConnsPerIP: 1}, 0)
	ws, w := n.mustDial(t, "127.0.0.2", "")
	cl := n.h.claimToken(w["resumeToken"].(string))
	if cl.local == nil {
		t.Fatal("token not claimed")
	}
	// The session ends (a clean close), and another takes the one place.
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	waitFor(t, func() bool { return len(n.h.snapshot()) == 0 })
	n.mustDial(t, "127.0.0.2", "")
	c := &conn{ip: "127.0.0.2", id: identityOf("127.0.0.2")}
	if n.h.attach(c, cl, "", false) {
		t.Fatal("attach made a session past the cap")
	}
	if c.s != nil || len(n.h.snapshot()) != 1 {
		t.Fatalf("refused connection got a session (%d sessions)", len(n.h.snapshot()))
	}
	if got := n.refusals(t, refusedLateResume); got != 1 {
		t.Errorf("resume_then_full refusals = %v, want 1", got)
	}
}
