package webrtc_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/logbuf"
	"github.com/strangerchat/stranger/internal/server"
	"github.com/strangerchat/stranger/test/webrtc/webrtctest"
)

// TestRelayOnlyCallWithMatchedCredentials: protocol 1.1. Two peers that
// allow only relayed candidates connect through the node's embedded TURN
// relay with the credentials that came with matched; their welcomes
// carried none.
func TestRelayOnlyCallWithMatchedCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.STUN = nil
	cfg.TURNListen = "127.0.0.1:0"
	cfg.TURNPublicIP = "127.0.0.1"
	cfg.TURNSecret = "webrtc-test-secret-0123456789"
	cfg.TURNRelayPorts = "41000-41999"
	cfg.TURNAllowLoopback = true
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	})
	e := &env{t: t, wsURL: "ws://" + srv.Addr() + "/ws", logs: &logbuf.Buffer{}}
	a := e.peer(ctx, webrtctest.Options{Name: "A", RelayOnly: true})
	b := e.peer(ctx, webrtctest.Options{Name: "B", RelayOnly: true})
	for _, p := range []*webrtctest.Peer{a, b} {
		for _, s := range p.Welcome().ICEServers {
			if s.Username != "" || s.Credential != "" {
				e.fatal("welcome carries a TURN credential: %+v", p.Welcome())
			}
		}
	}
	init, ans, _ := e.match(ctx, a, b)
	for _, p := range []*webrtctest.Peer{init, ans} {
		c, _ := p.Chat()
		var turn bool
		for _, s := range c.ICEServers {
			turn = turn || (strings.HasPrefix(s.URLs[0], "turn:") && strings.HasSuffix(s.Username, ":"+p.Welcome().Session))
		}
		if !turn {
			e.fatal("matched.iceServers %+v: want a TURN entry for %s", c.ICEServers, p.Welcome().Session)
		}
		if err := p.WaitConnected(ctx); err != nil {
			e.fatal("%v", err)
		}
	}
	if err := init.SendData("through the relay"); err != nil {
		e.fatal("%v", err)
	}
	if got, err := ans.RecvData(ctx); err != nil || got != "through the relay" {
		e.fatal("data channel: %q, %v", got, err)
	}
	for _, p := range []*webrtctest.Peer{init, ans} {
		pair, err := p.SelectedPair()
		if err != nil {
			e.fatal("%v", err)
		}
		if pair.Local.Typ != webrtc.ICECandidateTypeRelay {
			e.fatal("selected pair %s: want a relayed local candidate", pair)
		}
	}
}
