package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/redistest"
	"github.com/strangerchat/stranger/internal/turnserver"
)

// TestRelayRoleChecksSessionsInRedis: `stranger turn --redis` honours a
// credential only while the nodes' record of its session says chatting.
func TestRelayRoleChecksSessionsInRedis(t *testing.T) {
	const secret = "0123456789abcdef0123"
	srv := redistest.StartServer(t)
	cfg, err := config.Parse([]string{"turn", "--turn-listen", "127.0.0.1:0", "--turn-public-ip", "127.0.0.1",
		"--turn-secret", secret, "--turn-allow-loopback", "--turn-relay-ports", "43100-43199",
		"--admin-addr", "", "--redis", srv.URL()}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := startRelay(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.close(); err != nil {
			t.Error(err)
		}
	})
	rdb, err := cluster.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	addr := "127.0.0.1:" + strconv.Itoa(r.turn.Port())
	allocate := func(session string) error {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		user, pass := turnserver.Mint(secret, session, time.Now().Add(time.Hour))
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
		if err == nil {
			_ = alloc.Close()
		}
		return err
	}
	var te *stun.TurnError
	if err := allocate("s_unknown"); !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeUnauthorized {
		t.Fatalf("session without a record: err = %v, want 401", err)
	}
	if err := rdb.HSet(context.Background(), cluster.SessionKey(cluster.DefaultPrefix, "s_chatting"), "st", 2).Err(); err != nil {
		t.Fatal(err)
	}
	if err := allocate("s_chatting"); err != nil {
		t.Fatalf("chatting session: %v", err)
	}
}
