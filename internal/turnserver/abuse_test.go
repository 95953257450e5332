package turnserver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/turnserver/relaytest"
)

// fakeSessions is a Sessions whose answers the test sets.
type fakeSessions struct {
	mu    sync.Mutex
	alive map[ids.SessionID]bool
	err   error
	asked int
}

func (f *fakeSessions) Chatting(_ context.Context, id ids.SessionID) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	return f.alive[id], f.err
}

func (f *fakeSessions) set(id ids.SessionID, alive bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alive[id] = alive
	f.err = err
}

func turnCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// TestEndedSessionRefused: a credential is good only while its session is
// in a chat. A new allocation and the requests of an existing one (here a
// CreatePermission; a Refresh goes through the same check) are refused
// once the chat has ended and the cached answer has run out; the session's
// next chat, with a newly minted credential, is served at once.
func TestEndedSessionRefused(t *testing.T) {
	clk := clock.NewFake(time.Now())
	sessions := &fakeSessions{alive: map[ids.SessionID]bool{"s_live": true}}
	cfg := testConfig()
	cfg.Clock = clk
	cfg.Sessions = sessions
	s := startServer(t, cfg)
	mint := func(session string) cred {
		u, p := Mint(testSecret, session, clk.Now().Add(time.Hour))
		return cred{u, p}
	}

	if _, err := client(t, s, mint("s_gone")).Allocate(); turnCode(err) != int(stun.CodeUnauthorized) {
		t.Fatalf("ended session's credential: Allocate err = %v, want 401", err)
	}
	live := mint("s_live")
	relay, err := client(t, s, live).Allocate()
	if err != nil {
		t.Fatalf("live session: %v", err)
	}
	p1 := peer(t)
	// Permissions are per peer IP: the second peer needs another one.
	p2, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p2.Close() })
	if _, err := relay.WriteTo([]byte("x"), p1.LocalAddr()); err != nil {
		t.Fatalf("permission while alive: %v", err)
	}
	readWithin(t, p1, 5*time.Second)

	// The burst of requests a browser sends at ICE start asks Sessions
	// once.
	sessions.mu.Lock()
	asked := sessions.asked
	sessions.mu.Unlock()
	if asked > 2 { // s_gone and s_live
		t.Errorf("Sessions asked %d times, want the answers cached", asked)
	}

	sessions.set("s_live", false, nil)
	clk.Advance(answerFor + time.Second)
	if _, err := client(t, s, live).Allocate(); turnCode(err) != int(stun.CodeUnauthorized) {
		t.Fatalf("after the session ended: Allocate err = %v, want 401", err)
	}
	if _, err := relay.WriteTo([]byte("y"), p2.LocalAddr()); err == nil {
		t.Fatal("CreatePermission of an ended session's allocation succeeded")
	}
	if st := s.Stats(); st.EndedRefused < 3 || st.AllocationsTotal != 1 {
		t.Errorf("stats %+v: want EndedRefused >= 3, one allocation", st)
	}
	// The next chat of the same session: a new credential, not held back
	// by the cached "no" about the last one.
	sessions.set("s_live", true, nil)
	clk.Advance(time.Second)
	if _, err := client(t, s, mint("s_live")).Allocate(); err != nil {
		t.Fatalf("the session's next chat: %v", err)
	}
}

// TestSessionCheckFailingLetsThrough: with the session store away the relay
// keeps serving (refusing would end every call at its next refresh) and
// counts it.
func TestSessionCheckFailingLetsThrough(t *testing.T) {
	sessions := &fakeSessions{alive: map[ids.SessionID]bool{}, err: errors.New("redis away")}
	cfg := testConfig()
	cfg.Sessions = sessions
	s := startServer(t, cfg)
	if _, err := client(t, s, fresh("s_unknown")).Allocate(); err != nil {
		t.Fatalf("Allocate with the check failing: %v", err)
	}
	if st := s.Stats(); st.SessionCheckErrs == 0 {
		t.Errorf("SessionCheckErrs = 0, want counted")
	}
}

// TestQuotaPerIP: one address cannot take more than its share of
// allocations however many credentials it collected; another address is
// not affected.
func TestQuotaPerIP(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAllocationsPerIP = 2
	s := startServer(t, cfg)
	addr := "127.0.0.1:" + strconv.Itoa(s.Port())
	for i := range 2 {
		if _, err := client(t, s, fresh("s_collected"+strconv.Itoa(i))).Allocate(); err != nil {
			t.Fatalf("allocation %d within the per-IP cap: %v", i, err)
		}
	}
	if _, err := client(t, s, fresh("s_collected2")).Allocate(); turnCode(err) != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("third allocation from one IP: err = %v, want 486", err)
	}
	cr := fresh("s_neighbour")
	other := relaytest.Client(t, "127.0.0.2:0", addr, cr.user, cr.pass, cfg.Realm)
	if _, err := other.Allocate(); err != nil {
		t.Fatalf("another IP: %v", err)
	}
	if st := s.Stats(); st.QuotaRefusedIP != 1 || st.QuotaRefused != 1 {
		t.Errorf("stats %+v: want one refusal, by the per-IP cap", st)
	}
}

func TestIdentity(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:3478":              "192.0.2.7",
		"[::ffff:192.0.2.7]:3478":     "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:3478": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:9":    "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:9":         "2001:db8:1:3::/64",
	} {
		ap := net.TCPAddrFromAddrPort(mustAddrPort(t, in))
		if got := identity(ap); got != want {
			t.Errorf("identity(%s) = %q, want %q", in, got, want)
		}
	}
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a.AddrPort()
}

// dialFrom opens a TCP connection from local IP ip to addr.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d (a read
// returns EOF or a reset rather than timing out).
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && (errors.Is(err, io.EOF) || !(errors.As(err, &ne) && ne.Timeout()))
}

// bindingOverTCP sends a STUN Binding request on c and waits for the
// success response.
func bindingOverTCP(t *testing.T, c net.Conn) {
	t.Helper()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatalf("binding over TCP: write: %v", err)
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("binding over TCP: no answer: %v", err)
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil || res.Type != stun.BindingSuccess {
		t.Fatalf("binding over TCP: got %v (%v), want a Binding success", res.Type, err)
	}
	_ = c.SetDeadline(time.Time{})
}

// TestTCPIdleSockets is issue 12 row 5 as the attack: one address opens
// idle TCP connections to the relay. Past its per-IP cap they are refused
// at once; they never keep another address from a STUN Binding over TCP;
// and the idle ones are closed after the auth timeout, while a connection
// that authenticated stays open.
func TestTCPIdleSockets(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAllocations = 6 // the figure of the issue: the old TCP limit followed it
	cfg.MaxTCPPerIP = 5
	cfg.AuthTimeout = 700 * time.Millisecond
	s := startServer(t, cfg)
	addr := "127.0.0.1:" + strconv.Itoa(s.Port())

	// A real user on TCP from another address authenticates in time.
	tcp := dialFrom(t, "127.0.0.3", addr)
	cr := fresh("s_user")
	user, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Username: cr.user, Password: cr.pass, Realm: cfg.Realm,
		Conn: turn.NewSTUNConn(tcp), RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(user.Close)
	if err := user.Listen(); err != nil {
		t.Fatal(err)
	}
	if _, err := user.Allocate(); err != nil {
		t.Fatalf("allocation over TCP: %v", err)
	}

	idle := make([]net.Conn, 6)
	for i := range idle {
		idle[i] = dialFrom(t, "127.0.0.1", addr)
	}
	if !closedWithin(idle[5], 300*time.Millisecond) {
		t.Fatal("the 6th idle connection from one IP was not refused at once")
	}
	bindingOverTCP(t, dialFrom(t, "127.0.0.2", addr))
	for i, c := range idle[:5] {
		if !closedWithin(c, 3*time.Second) {
			t.Fatalf("idle connection %d still open after the auth timeout", i)
		}
	}
	if tcp.SetReadDeadline(time.Now().Add(300*time.Millisecond)) != nil || closedWithin(tcp, 300*time.Millisecond) {
		t.Fatal("the authenticated TCP connection was closed")
	}
	if got := s.Stats().AllocationsActive; got != 1 {
		t.Errorf("allocations active = %d, want the user's 1", got)
	}
	st := s.Stats()
	if st.TCPRefusedIP != 1 || st.TCPAuthTimeouts < 5 {
		t.Errorf("stats %+v: want 1 refused by the per-IP cap, >= 5 timed out", st)
	}
	// The places are given back: the address may connect again.
	bindingOverTCP(t, dialFrom(t, "127.0.0.1", addr))
}

// BenchmarkSessionCacheHit is the cost of the session check on a cached
// answer: what a burst of requests at ICE start pays after the first.
func BenchmarkSessionCacheHit(b *testing.B) {
	c := &sessionCache{sessions: &fakeSessions{alive: map[ids.SessionID]bool{"s": true}}, clock: clock.Real{}, answers: map[string]cachedAnswer{}}
	for b.Loop() {
		if ok, _ := c.check("1700000000:s", "s"); !ok {
			b.Fatal("refused")
		}
	}
}

// TestTLSIdleSockets: the TURN-over-TLS listener has the same guard. A
// socket that never starts its handshake is closed after the auth timeout,
// the per-IP cap counts TLS connections too, and an authenticated TLS
// client keeps its connection.
func TestTLSIdleSockets(t *testing.T) {
	cert, roots := testCert(t)
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	cfg.TLS = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }}
	cfg.MaxTCPPerIP = 2
	cfg.AuthTimeout = 700 * time.Millisecond
	s := startServer(t, cfg)
	addr := "127.0.0.1:" + strconv.Itoa(s.TLSPort())

	c, err := tlsClient(t, s, roots, fresh("s_tls_user")) // from 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Allocate(); err != nil {
		t.Fatalf("Allocate over TLS: %v", err)
	}
	idle := dialFrom(t, "127.0.0.1", addr)
	if !closedWithin(dialFrom(t, "127.0.0.1", addr), 300*time.Millisecond) {
		t.Fatal("a third TLS connection from one IP past a cap of 2 was not refused")
	}
	if !closedWithin(idle, 3*time.Second) {
		t.Fatal("a TLS socket without a handshake is still open after the auth timeout")
	}
	time.Sleep(cfg.AuthTimeout)
	if _, err := c.SendBindingRequest(); err != nil {
		t.Errorf("the authenticated TLS client lost its connection: %v", err)
	}
	if st := s.Stats(); st.TCPRefusedIP != 1 || st.TCPAuthTimeouts != 1 {
		t.Errorf("stats %+v: want one refusal by the per-IP cap and one auth timeout", st)
	}
}
