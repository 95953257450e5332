package turn_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/server"
	"github.com/strangerchat/stranger/internal/turnserver/relaytest"
	"github.com/strangerchat/stranger/test/wsclient"
)

// startNode runs a node on 127.0.0.1; with turnURLs empty it runs the
// embedded relay (total cap 6 allocations, 2 per IP), else it offers
// turnURLs with the shared secret (an external coturn).
func startNode(t *testing.T, turnURLs []string) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.STUN = []string{"stun:127.0.0.1:3478"}
	cfg.MaxConnsPerIP = 0
	cfg.TURNSecret = secret
	cfg.TURNRealm = realm
	if len(turnURLs) > 0 {
		cfg.TURNURLs = turnURLs
	} else {
		lo, hi := relayRange()
		cfg.TURNListen = "127.0.0.1:0"
		cfg.TURNPublicIP = "127.0.0.1"
		cfg.TURNRelayPorts = strconv.Itoa(lo) + "-" + strconv.Itoa(hi)
		cfg.TURNAllowLoopback = true
		cfg.TURNMaxAllocs = 6 // the figure of issue 12, row 3
		cfg.TURNMaxAllocsPerIP = 2
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

func connect(t *testing.T, srv *server.Server) *wsclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wsclient.Connect(ctx, "ws://"+srv.Addr()+"/ws", wsclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// await returns the next frame of c of type typ, skipping the others.
func await(t *testing.T, c *wsclient.Client, typ string) wsclient.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f.Type() == typ {
			return f
		}
	}
}

// turnCred is the TURN entry of a call's list.
type turnCred struct{ user, pass string }

// matchPair joins a and b and returns the TURN credential each got with
// its matched.
func matchPair(t *testing.T, a, b *wsclient.Client) (ca, cb turnCred) {
	t.Helper()
	for _, c := range []*wsclient.Client{a, b} {
		if _, err := c.Send(map[string]any{"type": "join", "mode": "video"}); err != nil {
			t.Fatal(err)
		}
		await(t, c, "waiting")
	}
	creds := make([]turnCred, 2)
	for i, c := range []*wsclient.Client{a, b} {
		m := await(t, c, "matched")
		servers, err := wsclient.CallICEServers(m, c.Welcome())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if strings.HasPrefix(s.URLs[0], "turn") {
				creds[i] = turnCred{s.Username, s.Credential}
			}
		}
		if !strings.HasSuffix(creds[i].user, ":"+c.Session()) || creds[i].pass == "" {
			t.Fatalf("matched.iceServers %v: want a TURN credential for %s", m["iceServers"], c.Session())
		}
	}
	return creds[0], creds[1]
}

func turnErrCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// TestCredentialHoarding is issue 12 row 3 as the attack: collect TURN
// credentials without chatting, or keep those of chats that ended, and use
// them to fill the embedded relay so that real users cannot allocate.
func TestCredentialHoarding(t *testing.T) {
	srv := startNode(t, nil)
	turnAddr := "127.0.0.1:" + strconv.Itoa(srv.TURNPort())
	allocate := func(local string, c turnCred) error {
		cl := relaytest.Client(t, local, turnAddr, c.user, c.pass, "")
		_, err := cl.Allocate()
		return err
	}

	// 1. Sessions that never match hold no credential, however many.
	for range 10 {
		w := connect(t, srv).Welcome()
		servers, _, err := w.ICEServers()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if s.Username != "" || s.Credential != "" {
				t.Fatalf("welcome of an unmatched session carries a credential: %s", w)
			}
		}
		if len(servers) != 1 {
			t.Fatalf("welcome.iceServers = %+v, want the STUN entry only", servers)
		}
		if turn, _ := w.Bool("turn"); !turn {
			t.Fatalf("welcome.turn missing: %s", w)
		}
	}

	// 2. Credentials of chats that ended: the attacker matches two of its
	// own sessions, keeps their credentials and leaves (one session goes
	// on, idle; the other is closed and ends).
	a, b := connect(t, srv), connect(t, srv)
	ca, cb := matchPair(t, a, b)
	if _, err := a.Send(map[string]any{"type": "leave"}); err != nil {
		t.Fatal(err)
	}
	await(t, b, "peer_left")
	b.Close()
	for name, c := range map[string]turnCred{"idle session": ca, "closed session": cb} {
		if err := allocate("127.0.0.1:0", c); turnErrCode(err) != int(stun.CodeUnauthorized) {
			t.Errorf("%s's credential after its chat: Allocate err = %v, want 401", name, err)
		}
	}

	// 3. In a live chat of its own, the attacker's one address gets its
	// per-IP share of the relay and no more.
	x, y := connect(t, srv), connect(t, srv)
	cx, cy := matchPair(t, x, y)
	for i, c := range []turnCred{cx, cy} {
		if err := allocate("127.0.0.1:0", c); err != nil {
			t.Fatalf("allocation %d within the per-IP cap: %v", i, err)
		}
	}
	if err := allocate("127.0.0.1:0", cx); turnErrCode(err) != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("third allocation from one IP: err = %v, want 486", err)
	}

	// 4. A real user, matched, from another address, still gets a relay.
	u, p := connect(t, srv), connect(t, srv)
	cu, cp := matchPair(t, u, p)
	if err := allocate("127.0.0.2:0", cu); err != nil {
		t.Fatalf("real user: %v", err)
	}
	if err := allocate("127.0.0.3:0", cp); err != nil {
		t.Fatalf("real user's partner: %v", err)
	}
}

// TestCoturnAcceptsMatchedCredentials: the credentials a node hands out
// with matched are accepted by a real coturn sharing the secret
// (use-auth-secret), as docs/deploy.md sets it up.
func TestCoturnAcceptsMatchedCredentials(t *testing.T) {
	c := startCoturn(t, "")
	url := "turn:127.0.0.1:" + strconv.Itoa(c.Port) + "?transport=udp"
	srv := startNode(t, []string{url})
	a, b := connect(t, srv), connect(t, srv)
	for _, cl := range []*wsclient.Client{a, b} {
		servers, _, err := cl.Welcome().ICEServers()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if s.Username != "" {
				t.Fatalf("welcome carries a credential: %s", cl.Welcome())
			}
		}
	}
	ca, _ := matchPair(t, a, b)
	cl := relaytest.Client(t, "127.0.0.1:0", "127.0.0.1:"+strconv.Itoa(c.Port), ca.user, ca.pass, "")
	relay, err := cl.Allocate()
	if err != nil {
		t.Fatalf("coturn refused the credential from matched: %v", err)
	}
	_ = relay.Close()
}
