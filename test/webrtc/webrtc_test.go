// System tests of issue 2: two pion/webrtc peers that only have a WebSocket
// to a real in-process server get matched, negotiate through `signal` with
// trickle ICE and talk over a data channel on loopback.
package webrtc_test

import (
	"context"
	"fmt"
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

// testTimeout bounds each test: on loopback a call connects in tens of
// milliseconds, so anything near this is a hang.
const testTimeout = 10 * time.Second

// env is one test's server and peers, for failure reports.
type env struct {
	t     *testing.T
	wsURL string
	logs  *logbuf.Buffer
	peers []*webrtctest.Peer
}

// startServer runs a real node on 127.0.0.1:0 with no STUN servers (no
// packet leaves loopback) and shuts it down when the test ends.
func startServer(t *testing.T) *env {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.STUN = nil
	cfg.PowDifficulty = 0
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg, log, server.Options{})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	e := &env{t: t, wsURL: "ws://" + srv.Addr() + "/ws", logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return e
}

func (e *env) peer(ctx context.Context, opts webrtctest.Options) *webrtctest.Peer {
	e.t.Helper()
	p := webrtctest.NewPeer(ctx, e.t, e.wsURL, opts)
	e.peers = append(e.peers, p)
	return p
}

// fatal fails the test with err and every peer's transcript.
func (e *env) fatal(format string, args ...any) {
	e.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, format, args...)
	for _, p := range e.peers {
		fmt.Fprintf(&b, "\n--- transcript ---\n%s", p.Transcript())
	}
	e.t.Fatal(b.String())
}

func (e *env) send(p *webrtctest.Peer, m webrtctest.Msg) int64 {
	e.t.Helper()
	seq, err := p.Send(m)
	if err != nil {
		e.fatal("%v", err)
	}
	return seq
}

// checkFreshWelcome checks the welcome of a new session on this server.
func (e *env) checkFreshWelcome(p *webrtctest.Peer) {
	e.t.Helper()
	w := p.Welcome()
	if w.Session == "" || w.ResumeToken == "" || w.Resumed {
		e.fatal("welcome: want a session, a resume token and resumed:false, got %+v", w)
	}
	if len(w.ICEServers) != 0 {
		e.fatal("welcome.iceServers: want none (STUN configured empty), got %+v", w.ICEServers)
	}
}

// match joins both peers in text mode and returns them as initiator,
// answerer.
func (e *env) match(ctx context.Context, a, b *webrtctest.Peer) (init, ans *webrtctest.Peer, room string) {
	e.t.Helper()
	e.send(a, webrtctest.Msg{"type": "join", "mode": "text"})
	e.send(b, webrtctest.Msg{"type": "join", "mode": "text"})
	var chats [2]webrtctest.Chat
	for i, p := range []*webrtctest.Peer{a, b} {
		f, err := p.Await(ctx, "matched", "waiting")
		if err != nil {
			e.fatal("%v", err)
		}
		if err := f.Decode(&chats[i]); err != nil {
			e.fatal("matched: %v", err)
		}
	}
	if chats[0].Room == "" || chats[0].Room != chats[1].Room {
		e.fatal("matched rooms differ or are empty: %+v", chats)
	}
	if chats[0].Initiator == chats[1].Initiator {
		e.fatal("want exactly one initiator, got %+v", chats)
	}
	for _, c := range chats {
		if c.Mode != "text" {
			e.fatal("matched mode %q, want text", c.Mode)
		}
	}
	if chats[0].Initiator {
		return a, b, chats[0].Room
	}
	return b, a, chats[0].Room
}

// checkCall waits for both data channels, sends a message each way and
// checks ICE went host to host over 127.0.0.1.
func (e *env) checkCall(ctx context.Context, init, ans *webrtctest.Peer) {
	e.t.Helper()
	for _, p := range []*webrtctest.Peer{init, ans} {
		if err := p.WaitConnected(ctx); err != nil {
			e.fatal("%v", err)
		}
	}
	for _, m := range []struct {
		from, to *webrtctest.Peer
		text     string
	}{
		{init, ans, "hello from the initiator"},
		{ans, init, "hello back from the answerer"},
	} {
		if err := m.from.SendData(m.text); err != nil {
			e.fatal("%v", err)
		}
		got, err := m.to.RecvData(ctx)
		if err != nil {
			e.fatal("%v", err)
		}
		if got != m.text {
			e.fatal("data channel: got %q, want %q", got, m.text)
		}
	}
	for _, p := range []*webrtctest.Peer{init, ans} {
		if s := p.ICEConnectionState(); s != webrtc.ICEConnectionStateConnected {
			e.fatal("ICE state %s, want connected", s)
		}
		pair, err := p.SelectedPair()
		if err != nil {
			e.fatal("%v", err)
		}
		// A direct path on loopback: host candidates, or a peer-reflexive
		// one for the same address — the remote's connectivity check can
		// arrive before its host candidate does (always possible with
		// trickle ICE; likely when the candidates wait out a resume).
		for _, c := range []*webrtc.ICECandidate{pair.Local, pair.Remote} {
			direct := c.Typ == webrtc.ICECandidateTypeHost || c.Typ == webrtc.ICECandidateTypePrflx
			if !direct || c.Address != "127.0.0.1" {
				e.fatal("selected pair %s: want a direct path on 127.0.0.1 (host or peer-reflexive candidates)", pair)
			}
		}
		if err := p.Err(); err != nil {
			e.fatal("peer error: %v", err)
		}
	}
}

// checkLeave: one side leaves, the other is told `left` and nothing else
// happened in between.
func (e *env) checkLeave(ctx context.Context, leaver, other *webrtctest.Peer) {
	e.t.Helper()
	e.send(leaver, webrtctest.Msg{"type": "leave"})
	f, err := other.Await(ctx, "peer_left")
	if err != nil {
		e.fatal("%v", err)
	}
	if r := f.Str("reason"); r != "left" {
		e.fatal("peer_left reason %q, want left: %s", r, f)
	}
}

func TestCallOverSignaling(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	e := startServer(t)
	a := e.peer(ctx, webrtctest.Options{Name: "A"})
	b := e.peer(ctx, webrtctest.Options{Name: "B"})
	e.checkFreshWelcome(a)
	e.checkFreshWelcome(b)

	start := time.Now()
	init, ans, _ := e.match(ctx, a, b)
	e.checkCall(ctx, init, ans)
	t.Logf("matched to both messages delivered: %v", time.Since(start))
	e.checkLeave(ctx, init, ans)
}

// TestCallSurvivesResumeMidNegotiation cuts the initiator's socket right
// after it sent the offer. Its candidates go nowhere (kept), the answerer's
// answer and candidates are held by the server; the initiator resumes with
// ?resume=TOKEN&last=N, re-sends what the server had not processed and gets
// what it missed, and the call connects: resume keeps signaling lossless.
func TestCallSurvivesResumeMidNegotiation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	e := startServer(t)

	type sent struct {
		p   *webrtctest.Peer
		seq int64
	}
	offered := make(chan sent, 1)
	cut := func(p *webrtctest.Peer, kind string, seq int64) {
		if kind == "offer" {
			p.Drop()
			offered <- sent{p, seq}
		}
	}
	a := e.peer(ctx, webrtctest.Options{Name: "A", AfterSignal: cut})
	b := e.peer(ctx, webrtctest.Options{Name: "B", AfterSignal: cut})
	e.checkFreshWelcome(a)
	e.checkFreshWelcome(b)

	start := time.Now()
	init, ans, room := e.match(ctx, a, b)
	var offer sent
	select {
	case offer = <-offered:
	case <-ctx.Done():
		e.fatal("no offer sent: %v", ctx.Err())
	}
	if offer.p != init {
		e.fatal("the offer came from the answerer")
	}
	// Let both sides finish trickling: the initiator's candidates are kept
	// unsent, the answerer's answer and candidates wait in the server for a
	// session without a connection.
	for _, p := range []*webrtctest.Peer{init, ans} {
		select {
		case <-p.Gathered():
		case <-p.Failed():
			e.fatal("%v", p.Err())
		case <-ctx.Done():
			e.fatal("waiting for end of candidates: %v", ctx.Err())
		}
	}
	select {
	case <-init.Connected():
		e.fatal("the initiator connected without the answer")
	default:
	}
	lastBefore := init.LastReceived()

	res, err := init.Resume(ctx, e.wsURL)
	if err != nil {
		e.fatal("%v", err)
	}
	w := res.Welcome
	if w.State != "chatting" || w.Chat == nil || w.Chat.Room != room || !w.Chat.Initiator || w.Chat.Mode != "text" {
		e.fatal("resumed welcome: want state chatting in room %s as initiator, got %+v chat %+v", room, w, w.Chat)
	}
	if *w.LastSeq < offer.seq {
		// Not a protocol failure (the offer is then re-sent), but on loopback
		// the server reads the offer before the connection's end.
		t.Logf("the server had not processed the offer (seq %d) before the drop: lastSeq %d", offer.seq, *w.LastSeq)
	}
	if len(res.Resent) == 0 {
		e.fatal("nothing re-sent: the candidates sent while the socket was down are lost (lastSeq %d)", *w.LastSeq)
	}
	for i, s := range res.Resent {
		if s != *w.LastSeq+1+int64(i) {
			e.fatal("re-sent seqs %v do not follow lastSeq %d", res.Resent, *w.LastSeq)
		}
	}
	t.Logf("resumed with last=%d: server lastSeq %d, client re-sent seqs %v", lastBefore, *w.LastSeq, res.Resent)

	e.checkCall(ctx, init, ans)
	if got := init.LastReceived(); got <= lastBefore {
		e.fatal("the initiator received nothing after the resume (last %d)", got)
	}
	t.Logf("matched to both messages delivered, through a resume: %v", time.Since(start))
	// The partner noticed nothing: its next frame is the peer_left of the
	// initiator's leave.
	e.checkLeave(ctx, init, ans)
}
