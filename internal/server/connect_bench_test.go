package server_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/server"
	"github.com/strangerchat/stranger/test/wsclient"
)

// BenchmarkConnectJoin is what a person's arrival costs a node: the
// WebSocket upgrade, the welcome, a join (which checks the ban) answered
// with waiting, a leave and the close. The quotas and proof of work are off
// (every arrival comes from 127.0.0.1, and the client's solve would
// dominate); docs/benchmarks.md compares it with the build before
// moderation.
func BenchmarkConnectJoin(b *testing.B) {
	c := testConfig()
	c.AdminAddr = ""
	c.MaxConnsPerIP, c.ConnRate, c.MaxWaitingPerIP, c.NextRate, c.PowDifficulty = 0, 0, 0, 0, 0
	s, err := server.New(c, slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	url := "ws://" + s.Addr() + "/ws"
	ctx := context.Background()
	for b.Loop() {
		conn, _, err := wsclient.Dial(ctx, url, wsclient.DialOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.ReadWelcome(ctx); err != nil {
			b.Fatal(err)
		}
		if err := conn.Send(map[string]any{"type": "join", "mode": "text"}); err != nil {
			b.Fatal(err)
		}
		if f, err := conn.NextWithin(5 * time.Second); err != nil || f.Type() != "waiting" {
			b.Fatalf("join: %v %v", f, err)
		}
		if err := conn.Send(map[string]any{"type": "leave"}); err != nil {
			b.Fatal(err)
		}
		conn.Close(1000)
		conn.Release()
	}
}
