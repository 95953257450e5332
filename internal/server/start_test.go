package server_test

import (
	"context"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/redistest"
	"github.com/strangerchat/stranger/internal/server"
)

// settledGoroutines is the goroutine count once it has stopped changing
// (goroutines of earlier tests may still be ending).
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for stable := 0; stable < 5; {
		time.Sleep(20 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			stable++
		} else {
			n, stable = m, 0
		}
	}
	return n
}

// waitGoroutines fails t unless the goroutine count comes back to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left running, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAddr is a loopback TCP address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// withTURN turns the embedded TURN server on, on a fixed loopback port.
func withTURN(t *testing.T, c *config.Config) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(freeAddr(t))
	c.TURNListen = "127.0.0.1:" + p
	c.TURNPublicIP = "127.0.0.1"
	c.TURNSecret = "start-test-turn-secret-0123456789"
	c.TURNAllowLoopback = true
	port, _ := strconv.Atoi(p)
	return port
}

// requireFree fails t unless the TCP address (and, with udp, the same UDP
// port) can be bound again: whoever held it closed it.
func requireFree(t *testing.T, addr string, udp bool) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s still held: %v", addr, err)
	}
	_ = ln.Close()
	if udp {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("udp %s still held: %v", addr, err)
		}
		_ = pc.Close()
	}
}

// A start that fails half-way (the admin address is taken, after TURN, the
// Redis backend and the public listener were started) releases everything
// it had: no goroutine left, the listeners closed, the node gone from Redis
// and its connections closed.
func TestStartFailingHalfWayReleasesWhatItStarted(t *testing.T) {
	rs := redistest.StartServer(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	c := testConfig()
	c.Addr = freeAddr(t)
	c.AdminAddr = busy.Addr().String()
	c.Redis = rs.URL()
	turnPort := withTURN(t, &c)
	check := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer check.Close()
	ctx := context.Background()
	if err := check.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	base := settledGoroutines()

	s, err := server.New(c, slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "--admin-addr") {
		t.Fatalf("Start: %v, want the admin address's error", err)
	}
	waitGoroutines(t, base)
	requireFree(t, c.Addr, false)
	requireFree(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(turnPort)), true)
	if keys := check.Keys(ctx, "st:hb:*").Val(); len(keys) != 0 {
		t.Errorf("heartbeat left in Redis: %v", keys)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		// CLIENT LIST: one line per connection; only check's own is left.
		list := check.ClientList(ctx).Val()
		if n := strings.Count(strings.TrimSpace(list), "\n") + 1; n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis connections left open:\n%s", list)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Shutdown after a failed Start has nothing left to do.
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after a failed Start: %v", err)
	}
}

// A start that cannot reach Redis fails (it would match no one) and
// releases what it had started before: TURN and the node's goroutines.
func TestStartWithoutRedisReleasesWhatItStarted(t *testing.T) {
	c := testConfig()
	c.Addr = freeAddr(t)
	c.Redis = "redis://" + freeAddr(t) + "/0" // nothing listens there
	turnPort := withTURN(t, &c)
	base := settledGoroutines()

	s, err := server.New(c, slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach Redis") {
		t.Fatalf("Start: %v, want Redis unreachable", err)
	}
	waitGoroutines(t, base)
	requireFree(t, c.Addr, false)
	requireFree(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(turnPort)), true)
}

// A node that started and shut down leaves no goroutine behind either.
func TestShutdownReleasesEverything(t *testing.T) {
	rs := redistest.StartServer(t)
	c := testConfig()
	c.Redis = rs.URL()
	withTURN(t, &c)
	base := settledGoroutines()
	s, err := server.New(c, slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr, admin := s.Addr(), s.AdminAddr()
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, base)
	requireFree(t, addr, false)
	requireFree(t, admin, false)
}
