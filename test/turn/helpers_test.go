// Package turn_test holds the TURN system tests that need coturn's binaries
// (Debian package coturn): a relay-only pion call through a real coturn with
// credentials from turnserver.Mint, and coturn's client tools against the
// embedded server. Go-only TURN tests live beside the code in
// internal/turnserver. Everything runs on 127.0.0.1.
package turn_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/logbuf"
	"github.com/strangerchat/stranger/internal/turnserver"
)

const (
	secret = "system-test-secret-0123456789"
	realm  = "stranger.test"
)

// requireBinary fails (never skips) when a coturn tool is missing: CI must
// run these tests, so a missing package is an error to fix.
func requireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): install coturn: apt-get install -y coturn", name, err)
	}
	return path
}

// freePort returns a port that is free for both UDP and TCP on 127.0.0.1
// at the time of the call.
func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		_ = u.Close()
		if err == nil {
			_ = l.Close()
			return port
		}
	}
	t.Fatal("no free UDP+TCP port on 127.0.0.1")
	return 0
}

// relayRange picks a block of 200 relay ports; turn servers retry another
// port in the block when one is taken.
func relayRange() (int, int) {
	base := 45000 + 200*rand.IntN(50)
	return base, base + 199
}

// coturn is a running turnserver child process.
type coturn struct {
	Port int
	Cmd  *exec.Cmd
	Out  *logbuf.Buffer
}

// startCoturn runs coturn on 127.0.0.1 with the TURN REST API secret, the
// way docs/deploy.md and ../shared/e2e.md describe (-m 1: one relay thread;
// with more, replies to pion clients were lost on this machine), and waits
// until it answers a STUN binding.
// With configFile empty coturn reads no config (-n) and may relay to
// loopback peers, so two local clients can reach each other. With a config
// file (the deploy sample) its relay rules apply unchanged and only the
// listening, relay, credential and logging settings are overridden for
// loopback.
func startCoturn(t testing.TB, configFile string) *coturn {
	t.Helper()
	bin := requireBinary(t, "turnserver")
	stunclient := requireBinary(t, "turnutils_stunclient")
	port := freePort(t)
	lo, hi := relayRange()
	args := []string{"-n", "--allow-loopback-peers"}
	if configFile != "" {
		args = []string{"-c", configFile}
	}
	args = append(args,
		"--log-file=stdout", "--simple-log", "--pidfile="+t.TempDir()+"/turnserver.pid",
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port="+strconv.Itoa(port),
		"--use-auth-secret", "--static-auth-secret="+secret, "--realm="+realm,
		"--no-cli", "--no-tls", "--no-dtls",
		"--min-port="+strconv.Itoa(lo), "--max-port="+strconv.Itoa(hi), "-m", "1",
	)
	out := &logbuf.Buffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start coturn: %v", err)
	}
	c := &coturn{Port: port, Cmd: cmd, Out: out}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("coturn output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := exec.CommandContext(ctx, stunclient, "-p", strconv.Itoa(port), "127.0.0.1").Run()
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("coturn on port %d not ready after 10 s (last stunclient error %v); output:\n%s", port, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startEmbedded runs the embedded TURN server in process on a free port.
func startEmbedded(t testing.TB, allowLoopback bool) *turnserver.Server {
	t.Helper()
	lo, hi := relayRange()
	cfg := turnserver.Config{
		Listen:        "127.0.0.1:0",
		PublicIP:      "127.0.0.1",
		Realm:         realm,
		RelayPortMin:  lo,
		RelayPortMax:  hi,
		Secret:        secret,
		AllowLoopback: allowLoopback,
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := turnserver.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start embedded TURN: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// uclient runs turnutils_uclient against 127.0.0.1:port and returns its
// combined output and error.
func uclient(t testing.TB, port int, args ...string) (string, error) {
	t.Helper()
	bin := requireBinary(t, "turnutils_uclient")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append(append([]string{}, args...), "-p", strconv.Itoa(port), "127.0.0.1")
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("turnutils_uclient %v: %w", args, ctx.Err())
	}
	return string(out), err
}
