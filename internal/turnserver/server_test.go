package turnserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/turnserver/relaytest"
)

const testSecret = "test-secret-0123456789"

// testConfig is a server on loopback with a free port; relay ports come
// from a range no other test in the repo uses.
func testConfig() Config {
	return Config{
		Listen:        "127.0.0.1:0",
		PublicIP:      "127.0.0.1",
		Realm:         "stranger.test",
		RelayPortMin:  42000,
		RelayPortMax:  42999,
		Secret:        testSecret,
		AllowLoopback: true,
		Sockets:       2,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("TURN_DEBUG") != "" {
		level = levelTrace
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// client is a pion TURN client on a fresh loopback socket.
type cred struct{ user, pass string }

func client(t *testing.T, s *Server, cr cred) *turn.Client {
	t.Helper()
	return relaytest.Client(t, "127.0.0.1:0", "127.0.0.1:"+strconv.Itoa(s.Port()), cr.user, cr.pass, s.cfg.Realm)
}

func fresh(session string) cred {
	u, p := Mint(testSecret, session, time.Now().Add(time.Hour))
	return cred{u, p}
}

// peer is a UDP socket standing in for the remote side of a relay.
func peer(t *testing.T) net.PacketConn {
	t.Helper()
	p, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func readWithin(t *testing.T, c net.PacketConn, d time.Duration) (string, net.Addr) {
	t.Helper()
	buf := make([]byte, 1600)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n]), from
}

// eventually polls cond: allocation teardown in pion happens on its own
// goroutine after the socket closes, with no hook to wait on.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRelayBothWays(t *testing.T) {
	s := startServer(t, testConfig())
	c := client(t, s, fresh("s_one"))

	mapped, err := c.SendBindingRequest()
	if err != nil {
		t.Fatalf("STUN binding: %v", err)
	}
	if !strings.HasPrefix(mapped.String(), "127.0.0.1:") {
		t.Errorf("mapped address %v", mapped)
	}

	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	if ra := relay.LocalAddr().(*net.UDPAddr); !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) || ra.Port < 42000 || ra.Port > 42999 {
		t.Errorf("relay address %v outside 127.0.0.1:42000-42999", ra)
	}
	p := peer(t)
	if _, err := relay.WriteTo([]byte("to peer"), p.LocalAddr()); err != nil {
		t.Fatalf("write via relay: %v", err)
	}
	msg, from := readWithin(t, p, 5*time.Second)
	if msg != "to peer" || from.String() != relay.LocalAddr().String() {
		t.Errorf("peer got %q from %v, want %q from %v", msg, from, "to peer", relay.LocalAddr())
	}
	if _, err := p.WriteTo([]byte("to client"), from); err != nil {
		t.Fatal(err)
	}
	if msg, _ := readWithin(t, relay, 5*time.Second); msg != "to client" {
		t.Errorf("client got %q", msg)
	}
	// The relay counts a datagram after its sendto returns, which may be
	// after the receiver has it: wait for the count rather than race it.
	relayed := uint64(len("to peer") + len("to client"))
	eventually(t, "relayed bytes counted", func() bool { return s.Stats().RelayedBytes == relayed })
	if st := s.Stats(); st.AllocationsActive != 1 || st.AllocationsTotal != 1 || st.RelayedBytes != relayed {
		t.Errorf("stats %+v", st)
	}
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "allocation to end", func() bool { return s.Stats().AllocationsActive == 0 })
}

func TestAllocateRefusesBadCredentials(t *testing.T) {
	s := startServer(t, testConfig())
	expiredUser, expiredPass := Mint(testSecret, "s_old", time.Now().Add(-time.Second))
	user := fresh("s_forger").user
	_, forgedPass := Mint("not-the-secret-at-all", "s_forger", time.Now().Add(time.Hour))
	cases := map[string]cred{
		"expired":   {expiredUser, expiredPass},
		"forged":    {user, forgedPass},
		"no expiry": {"s_forger", forgedPass},
	}
	for name, up := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := client(t, s, up).Allocate()
			var te *stun.TurnError
			if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeUnauthorized {
				t.Fatalf("Allocate err = %v, want 401", err)
			}
		})
	}
	if st := s.Stats(); st.AllocationsTotal != 0 || st.AuthRefused < 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestPermissionPolicy(t *testing.T) {
	for _, allowLoopback := range []bool{false, true} {
		t.Run("allowLoopback="+strconv.FormatBool(allowLoopback), func(t *testing.T) {
			cfg := testConfig()
			cfg.AllowLoopback = allowLoopback
			s := startServer(t, cfg)
			c := client(t, s, fresh("s_perm"))
			if _, err := c.Allocate(); err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			// Only CreatePermission requests: nothing is sent to these
			// addresses either way.
			perm := func(ip string) error {
				return c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9})
			}
			forbidden := func(err error) bool {
				var te *stun.TurnError
				return errors.As(err, &te) && te.ErrorCodeAttr.Code == stun.CodeForbidden
			}
			for _, ip := range []string{"10.0.0.1", "169.254.169.254", "192.168.1.1", "100.64.0.1", "224.0.0.1", "0.0.0.0"} {
				if err := perm(ip); !forbidden(err) {
					t.Errorf("permission to %s: err = %v, want 403", ip, err)
				}
			}
			err := perm("127.0.0.1")
			if allowLoopback && err != nil {
				t.Errorf("permission to 127.0.0.1 with AllowLoopback: %v", err)
			}
			if !allowLoopback && !forbidden(err) {
				t.Errorf("permission to 127.0.0.1 without AllowLoopback: err = %v, want 403", err)
			}
			if err := perm("8.8.8.8"); err != nil {
				t.Errorf("permission to a public address: %v", err)
			}
			want := uint64(6)
			if !allowLoopback {
				want = 7
			}
			if got := s.Stats().PermissionsDenied; got != want {
				t.Errorf("PermissionsDenied = %d, want %d", got, want)
			}
		})
	}
}

func TestQuotas(t *testing.T) {
	allocErrCode := func(err error) int {
		var te *stun.TurnError
		if errors.As(err, &te) {
			return int(te.ErrorCodeAttr.Code)
		}
		return 0
	}
	t.Run("per user", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxAllocationsPerUser = 2
		s := startServer(t, cfg)
		var relays []net.PacketConn
		for range 2 {
			r, err := client(t, s, fresh("s_greedy")).Allocate()
			if err != nil {
				t.Fatalf("Allocate within quota: %v", err)
			}
			relays = append(relays, r)
		}
		// A renewed credential of the same session counts against the
		// same quota.
		user, pass := Mint(testSecret, "s_greedy", time.Now().Add(2*time.Hour))
		if _, err := client(t, s, cred{user, pass}).Allocate(); allocErrCode(err) != int(stun.CodeAllocQuotaReached) {
			t.Fatalf("third allocation: err = %v, want 486", err)
		}
		if _, err := client(t, s, fresh("s_other")).Allocate(); err != nil {
			t.Fatalf("another session: %v", err)
		}
		_ = relays[0].Close()
		eventually(t, "quota to free", func() bool { return s.Stats().AllocationsActive == 2 })
		if _, err := client(t, s, fresh("s_greedy")).Allocate(); err != nil {
			t.Fatalf("after freeing one: %v", err)
		}
		if st := s.Stats(); st.QuotaRefused != 1 {
			t.Errorf("QuotaRefused = %d, want 1", st.QuotaRefused)
		}
	})
	t.Run("total", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxAllocations = 2
		s := startServer(t, cfg)
		for _, session := range []string{"s_a", "s_b"} {
			if _, err := client(t, s, fresh(session)).Allocate(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := client(t, s, fresh("s_c")).Allocate(); allocErrCode(err) != int(stun.CodeAllocQuotaReached) {
			t.Fatalf("over total: err = %v, want 486", err)
		}
	})
}

func TestLifetimeCap(t *testing.T) {
	clk := clock.NewFake(time.Now())
	cfg := testConfig()
	cfg.AllocationLifetime = 30 * time.Minute
	cfg.Clock = clk
	s := startServer(t, cfg)
	user, pass := Mint(testSecret, "s_long", clk.Now().Add(24*time.Hour))
	relay, err := client(t, s, cred{user, pass}).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	p := peer(t)
	if _, err := relay.WriteTo([]byte("x"), p.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	readWithin(t, p, 5*time.Second)

	clk.Advance(29 * time.Minute)
	if got := s.Stats().AllocationsActive; got != 1 {
		t.Fatalf("before the cap: %d allocations, want 1", got)
	}
	clk.Advance(time.Minute)
	eventually(t, "capped allocation to end", func() bool { return s.Stats().AllocationsActive == 0 })
	// The relay port is closed: nothing reaches the client any more.
	if _, err := p.WriteTo([]byte("late"), relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := relay.ReadFrom(make([]byte, 100)); err == nil {
		t.Errorf("read %d bytes after the lifetime cap", n)
	}
}

func TestBandwidthCap(t *testing.T) {
	cfg := testConfig()
	cfg.BandwidthPerAllocation = 4000 // bytes/s: a 4000-byte burst, then 4 bytes per ms
	s := startServer(t, cfg)
	relay, err := client(t, s, fresh("s_bw")).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	p := peer(t)
	if _, err := relay.WriteTo([]byte("hi"), p.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	readWithin(t, p, 5*time.Second)

	// 20 × 1000 bytes in a burst: about 4 fit the budget, the rest drop.
	payload := make([]byte, 1000)
	const sent = 20
	for range sent {
		if _, err := p.WriteTo(payload, relay.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	var got int
	buf := make([]byte, 1600)
	for {
		_ = relay.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, _, err := relay.ReadFrom(buf); err != nil {
			break
		}
		got++
	}
	dropped := s.Stats().DroppedPackets
	if got < 3 || got > 6 {
		t.Errorf("client received %d of %d datagrams, want 3-6 within a 4000 B/s budget", got, sent)
	}
	if dropped < sent-6 {
		t.Errorf("DroppedPackets = %d, want at least %d", dropped, sent-6)
	}
}

func TestTwoPionPeersRelayOnly(t *testing.T) {
	s := startServer(t, testConfig())
	url := "turn:127.0.0.1:" + strconv.Itoa(s.Port()) + "?transport=udp"
	creds := Credentials{TURNURLs: []string{url}, Secret: testSecret, TTL: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var servers []webrtc.ICEServer
	for _, is := range creds.ICEServers("s_call", time.Now()) {
		servers = append(servers, webrtc.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	res, err := relaytest.ConnectRelayOnly(ctx, servers)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range res.Pairs {
		if p != "relay/relay" {
			t.Errorf("peer %d selected %s, want relay/relay", i, p)
		}
	}
	if st := s.Stats(); st.AllocationsTotal < 2 || st.RelayedBytes == 0 {
		t.Errorf("stats %+v: the call did not go through this server", st)
	}
	t.Logf("relay-only call connected in %v", res.Connected)
}

func TestValidate(t *testing.T) {
	ok := testConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Listen = "3478" }, "turn-listen"},
		{func(c *Config) { c.Listen = ":99999" }, "turn-listen"},
		{func(c *Config) { c.Listen = "example.org:3478" }, "turn-listen"},
		{func(c *Config) { c.PublicIP = "" }, "turn-public-ip"},
		{func(c *Config) { c.PublicIP = "0.0.0.0" }, "turn-public-ip"},
		{func(c *Config) { c.Realm = "" }, "turn-realm"},
		{func(c *Config) { c.RelayPortMin = 0 }, "turn-relay-ports"},
		{func(c *Config) { c.RelayPortMin, c.RelayPortMax = 50000, 40000 }, "turn-relay-ports"},
		{func(c *Config) { c.RelayPortMax = 70000 }, "turn-relay-ports"},
		{func(c *Config) { c.Secret = "change-me" }, "turn-secret"},
		{func(c *Config) { c.MaxAllocationsPerUser = -1 }, "turn-max-allocs-per-user"},
		{func(c *Config) { c.MaxAllocations = -1 }, "turn-max-allocs"},
		{func(c *Config) { c.AllocationLifetime = -time.Second }, "turn-allocation-lifetime"},
		{func(c *Config) { c.BandwidthPerAllocation = 100 }, "turn-bandwidth"},
	}
	for _, c := range cases {
		cfg := testConfig()
		c.mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want an error naming %s", err, c.want)
		}
	}
	if _, err := Start(context.Background(), Config{}, nil); err == nil {
		t.Error("Start with an empty config succeeded")
	}
}

// An IPv6 public address gives an IPv6 listener and IPv6 relays.
func TestRelayIPv6(t *testing.T) {
	cfg := testConfig()
	cfg.Listen, cfg.PublicIP = "[::1]:0", "::1"
	s := startServer(t, cfg)
	cr := fresh("s_v6")
	c := relaytest.Client(t, "[::1]:0", "[::1]:"+strconv.Itoa(s.Port()), cr.user, cr.pass, "")
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate over IPv6: %v", err)
	}
	defer relay.Close()
	if ra := relay.LocalAddr().(*net.UDPAddr); !ra.IP.Equal(net.IPv6loopback) {
		t.Errorf("relay address %v, want [::1]", ra)
	}
	p, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := relay.WriteTo([]byte("v6"), p.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if msg, _ := readWithin(t, p, 5*time.Second); msg != "v6" {
		t.Errorf("peer got %q", msg)
	}
	// fd00:ec2::254 (AWS metadata over IPv6) is refused.
	err = c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("fd00:ec2::254"), Port: 80})
	var te *stun.TurnError
	if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeForbidden {
		t.Errorf("permission to fd00:ec2::254: err = %v, want 403", err)
	}
}
