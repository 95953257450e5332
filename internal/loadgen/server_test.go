package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/logbuf"
	"github.com/strangerchat/stranger/internal/server"
)

var errEnough = errors.New("seen enough")

// startNode runs a real node on a free loopback port, configured as for a
// benchmark: no per-IP cap, a message budget no load client reaches.
func startNode(t *testing.T) string { return startNodePow(t, 0) }

// startNodePow is startNode asking for proof of work of difficulty pow (0: off).
func startNodePow(t *testing.T, pow int64) string {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.STUN = nil
	cfg.MaxConnsPerIP = 0
	cfg.ConnRate, cfg.MaxWaitingPerIP, cfg.NextRate = 0, 0, 0 // no quota: one address is everyone
	cfg.MsgRate, cfg.MsgBurst = 10000, 10000
	cfg.PowDifficulty = pow
	logs := &logbuf.Buffer{}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})), server.Options{})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return "ws://" + srv.Addr() + "/ws"
}

// 200 clients against the real server for 2 s: they match, exchange offer,
// answer, candidates and chats, move on with next or leave, and churn;
// nothing is refused and every latency is recorded.
func TestAgainstRealServer(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "frame per write", true: "batched"}[batch], func(t *testing.T) {
			testAgainstRealServer(t, batch)
		})
	}
}

func testAgainstRealServer(t *testing.T, batch bool) {
	url := startNode(t)
	cfg := Default()
	cfg.Batch = batch
	cfg.URLs = []string{url}
	cfg.Clients = 200
	cfg.Duration = 60 * time.Second // a cap: the test stops the run when it has seen enough
	cfg.Ramp = 100 * time.Millisecond
	cfg.ChatDuration = 50 * time.Millisecond
	cfg.LeaveRatio = 0.2
	cfg.Churn = 20
	cfg.Seed = 42
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// Under -race on a busy 2-core machine connecting 200 clients alone
	// can take seconds, so the run goes on until every client has been
	// connected and 100 more chats have started.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var progress []Progress
	var base uint64
	allIn := false
	r := newRunner(cfg)
	r.stuckAfter = time.Minute
	res := r.run(ctx, time.Now(), hooks{progress: func(p Progress) {
		progress = append(progress, p)
		if !allIn && p.Conns >= 190 {
			allIn, base = true, p.Matched
		}
		if allIn && p.Matched-base >= 200 {
			cancel(errEnough)
		}
	}})

	var buf bytes.Buffer
	writeReport(&buf, res)
	t.Logf("report:\n%s", buf.String())
	if res.Total.Errors != 0 {
		t.Errorf("errors: codes %v kinds %v", res.ErrorCodes, res.ErrorKinds)
	}
	if !allIn || res.Total.Matches() < 100 {
		t.Errorf("%.0f matches; every client connected: %v", res.Total.Matches(), allIn)
	}
	if res.PeakConns < 190 || res.EndConns < 150 {
		t.Errorf("connections peak %d end %d, want about 200 held", res.PeakConns, res.EndConns)
	}
	if res.Total.Churned == 0 {
		t.Errorf("churn closed no session")
	}
	for name, h := range map[string]HistSnapshot{"time to match": res.TimeToMatch, "signal": res.SignalLatency, "chat": res.ChatLatency, "connect": res.ConnectLatency} {
		if h.Count == 0 || h.Max <= 0 || h.Quantile(0.5) <= 0 {
			t.Errorf("%s latency not recorded: %+v", name, h)
		}
	}
	if res.Total.RelayedSignal < uint64(res.Total.Matches()) || res.Total.RelayedChat == 0 || res.Total.RelayedTyping == 0 {
		t.Errorf("relayed %+v", res.Total)
	}
	if res.PeerLeft["next"] == 0 {
		t.Errorf("peer_left reasons %v: want next", res.PeerLeft)
	}
	if len(progress) < 1 || progress[len(progress)-1].Conns == 0 {
		t.Errorf("progress %+v", progress)
	}
	if res.StoppedBy != "interrupted" {
		t.Errorf("stopped by %s after %.2fs: the 60 s cap, not the test", res.StoppedBy, res.Elapsed)
	}
}

// Idle clients connect and hold without sending anything.
func TestIdleAgainstRealServer(t *testing.T) {
	url := startNode(t)
	cfg := Default()
	cfg.URLs = []string{url}
	cfg.Clients = 300
	cfg.Idle = true
	cfg.Duration = time.Minute // a cap: stop once all are in
	cfg.Ramp = 300 * time.Millisecond
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	res := newRunner(cfg).run(ctx, time.Now(), hooks{progress: func(p Progress) {
		if p.Conns == 300 {
			cancel(errEnough)
		}
	}})
	if res.Total.Errors != 0 || res.EndConns != 300 || res.Total.Sent != 0 || res.Total.Matched != 0 {
		t.Fatalf("idle run: end conns %d, sent %d, matched %d, errors %v %v", res.EndConns, res.Total.Sent, res.Total.Matched, res.ErrorCodes, res.ErrorKinds)
	}
}

// A stopped node shows up as dial errors, and --max-errors style stop works
// through the context cause.
func TestDeadServerCountsDialErrors(t *testing.T) {
	cfg := Default()
	cfg.URLs = []string{"ws://127.0.0.1:1/ws"}
	cfg.Clients = 5
	cfg.Duration = 5 * time.Second
	ctx, cancel := context.WithCancelCause(context.Background())
	res := newRunner(cfg).run(ctx, time.Now(), hooks{progress: func(p Progress) {
		if p.Errors > 0 {
			cancel(errMaxErrors)
		}
	}})
	if res.ErrorKinds["dial_refused"] == 0 || res.StoppedBy != "max-errors" || res.Elapsed > 3 {
		t.Fatalf("kinds %v, stopped by %s after %.1fs", res.ErrorKinds, res.StoppedBy, res.Elapsed)
	}
}

// The command line end to end: flags, /proc sampling (the server runs in
// this very process), progress lines on stderr, JSON on stdout.
func TestMainJSON(t *testing.T) {
	url := startNode(t)
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{
		"--url", url, "--clients", "20", "--duration", "2s", "--chat-duration", "0",
		"--pid", strconv.Itoa(os.Getpid()), "--json", "--procs", "1",
	}, &stdout, &stderr)
	var res Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("exit %d, stdout not JSON: %v\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	if code != 0 || res.Total.Errors != 0 {
		t.Errorf("exit %d, errors %v %v", code, res.ErrorCodes, res.ErrorKinds)
	}
	if res.Clients != 20 || res.Procs != 1 || res.StoppedBy != "duration" || res.Total.Connects == 0 || res.FDLimit == 0 {
		t.Errorf("result %+v", res)
	}
	if s := res.Server; s == nil || len(s.PIDs) != 1 || s.RSSBaselineKiB == 0 || s.RSSEndKiB == 0 || s.CPUSeconds <= 0 {
		t.Errorf("server stats %+v", res.Server)
	}
	if !strings.Contains(stderr.String(), "conns ") {
		t.Errorf("no progress line on stderr:\n%s", stderr.String())
	}
	if code := Main(context.Background(), []string{"--clients", "0"}, &stdout, &stderr); code != 2 {
		t.Errorf("usage error exits %d, want 2", code)
	}
}
