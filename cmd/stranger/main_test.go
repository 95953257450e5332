package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/turnserver"
)

func noEnv(string) string { return "" }

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--version"}, noEnv, &out, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out.String(), "stranger "+version+" (commit ") {
		t.Fatalf("--version printed %q", out.String())
	}
}

func TestCheckConfig(t *testing.T) {
	const secret = "0123456789abcdef0123"
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"--check-config"}, nil, 0, "configuration valid (node)"},
		{[]string{"--check-config", "--redis", "http://x"}, nil, 2, "--redis"},
		{[]string{"--check-config"}, map[string]string{"STRANGER_TURN_LISTEN": ":3478"}, 2, "--turn-secret"},
		{[]string{"turn", "--check-config", "--turn-listen", ":3478", "--turn-public-ip", "203.0.113.10", "--turn-secret", secret}, nil, 0, "configuration valid (relay)"},
		{[]string{"turn", "--check-config"}, nil, 2, "--turn-listen"},
		// A node-only flag is not a relay flag: the compose file cannot
		// give a relay what it ignores.
		{[]string{"turn", "--check-config", "--max-waiting", "5"}, nil, 2, "flag provided but not defined"},
		// --redis is a relay flag too: the relay checks sessions there.
		{[]string{"turn", "--check-config", "--turn-listen", ":3478", "--turn-public-ip", "203.0.113.10", "--turn-secret", secret, "--redis", "redis://r:6379/0"}, nil, 0, "configuration valid (relay)"},
		{[]string{"--check-config", "--tls-domain", "chat.example.org", "--tls-cert", "x.pem", "--tls-key", "y.pem"}, nil, 2, "not both"},
	} {
		var out, errOut bytes.Buffer
		env := func(k string) string { return tc.env[k] }
		code := run(tc.args, env, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("%q: exit %d, output %q %q; want exit %d mentioning %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.want)
		}
	}
}

// TestRelayRole starts `stranger turn` from its command line and
// allocates through it; its metrics count the allocation.
func TestRelayRole(t *testing.T) {
	const secret = "0123456789abcdef0123"
	cfg, err := config.Parse([]string{"turn", "--turn-listen", "127.0.0.1:0", "--turn-public-ip", "127.0.0.1",
		"--turn-secret", secret, "--turn-allow-loopback", "--turn-relay-ports", "43000-43099",
		"--admin-addr", "127.0.0.1:0", "--gomaxprocs", "0"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := startRelay(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.close(); err != nil {
			t.Error(err)
		}
	}()

	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	user, pass := turnserver.Mint(secret, "s_relay", time.Now().Add(time.Hour))
	addr := "127.0.0.1:" + strconv.Itoa(r.turn.Port())
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr,
		Username: user, Password: pass, Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	alloc, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate through stranger turn: %v", err)
	}
	defer alloc.Close()

	resp, err := http.Get("http://" + r.admin.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(body), "stranger_turn_allocations_total 1") {
		t.Fatalf("metrics do not count the allocation:\n%s", body)
	}
}
