package test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/server"
	"github.com/strangerchat/stranger/test/conformance"
)

// TestConformanceMemory runs the protocol conformance suite against one
// in-memory node.
func TestConformanceMemory(t *testing.T) {
	conformance.Run(t, newMemoryDeployment)
}

// suiteConfig is a node's configuration for the suite's options, on a
// free loopback port with no admin listener and no per-IP quotas (every
// test client comes from 127.0.0.1) nor join/next budget: the suite is the
// protocol; the quotas have tests of their own (internal/signaling).
func suiteConfig(o conformance.Options) config.Config {
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.MaxConnsPerIP = 0
	cfg.ConnRate, cfg.MaxWaitingPerIP, cfg.NextRate = 0, 0, 0
	cfg.InterestTimeout = o.InterestTimeout
	cfg.ResumeGrace = o.ResumeGrace
	cfg.MsgRate = o.MsgRate
	cfg.MsgBurst = o.MsgBurst
	cfg.AllowedOrigins = o.AllowedOrigins
	cfg.PingInterval = o.PingInterval
	cfg.PongTimeout = o.PongTimeout
	if o.MaxWaiting > 0 {
		cfg.MaxWaiting = o.MaxWaiting
	}
	// An external TURN server (never contacted): matched carries its
	// credentials (protocol 1.1).
	cfg.TURNURLs = []string{"turn:127.0.0.1:3478?transport=udp"}
	cfg.TURNSecret = "conformance-secret-0123456789"
	cfg.PowDifficulty = conformancePow()
	return cfg
}

// conformancePow is --pow-difficulty for the suite: 0 (off), or the value
// of CONFORMANCE_POW for the second run with proof of work on, in which
// the suite's clients (test/wsclient) solve every challenge by themselves
// and every test must pass unchanged.
func conformancePow() int64 {
	s := os.Getenv("CONFORMANCE_POW")
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		panic("CONFORMANCE_POW must be a difficulty (ALTCHA maxnumber), not " + strconv.Quote(s))
	}
	return n
}

// memoryDeployment is one node with the in-memory engine on a fake clock.
type memoryDeployment struct {
	srv *server.Server
	clk *clock.Fake // nil with Options.RealClock
	url string
}

func newMemoryDeployment(t *testing.T, o conformance.Options) conformance.Deployment {
	t.Helper()
	cfg := suiteConfig(o)
	d := &memoryDeployment{}
	var clk clock.Clock = clock.Real{}
	if !o.RealClock {
		d.clk = clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		clk = d.clk
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler), server.Options{Clock: clk})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	d.srv = srv
	d.url = "ws://" + srv.Addr() + "/ws"
	return d
}

func (d *memoryDeployment) URL(int) string { return d.url }
func (d *memoryDeployment) Nodes() int     { return 1 }

func (d *memoryDeployment) Advance(dt time.Duration) {
	if d.clk == nil {
		panic("Advance on a deployment with the real clock")
	}
	d.clk.Advance(dt)
}

func (d *memoryDeployment) CheckInvariants() error {
	return d.srv.Engine().(interface{ CheckInvariants() error }).CheckInvariants()
}

func (d *memoryDeployment) Drain(int) { d.srv.Hub().Drain() }

func (d *memoryDeployment) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
}
