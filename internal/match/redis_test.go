package match_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/redistest"
)

// redisAddr is the redis-server TestMain started for the package; every test
// uses its own key prefix on it (and its own channels, which carry it).
var redisAddr string

var prefixSeq atomic.Int64

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "match-redis")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv, err := redistest.Launch(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "match tests need redis-server:", err)
		os.Exit(1)
	}
	redisAddr = srv.Addr()
	code := m.Run()
	srv.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newPrefix() string { return fmt.Sprintf("t%d:", prefixSeq.Add(1)) }

func newClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  300 * time.Millisecond,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		PoolTimeout:  time.Second,
		MaxRetries:   -1, // a failed call is answered overloaded, not retried
		PoolSize:     16,
	})
}

// testNode is one "node": a Redis client, a cluster node and its engine.
type testNode struct {
	rdb  *redis.Client
	node *cluster.Node
	eng  *match.Redis
}

type nodeOpts struct {
	addr   string
	prefix string
	cfg    match.RedisConfig
	n      match.Notifier
	hb     time.Duration // heartbeat interval (TTL 3x); default 1 s
}

func startNode(t testing.TB, o nodeOpts) *testNode {
	t.Helper()
	if o.addr == "" {
		o.addr = redisAddr
	}
	if o.hb == 0 {
		o.hb = time.Second
	}
	tn := &testNode{rdb: newClient(o.addr)}
	tn.node = cluster.NewNode(cluster.Config{Client: tn.rdb, Prefix: o.prefix, HeartbeatEvery: o.hb, HeartbeatTTL: 3 * o.hb})
	o.cfg.Node = tn.node
	if o.cfg.SweepEvery == 0 {
		o.cfg.SweepEvery = -1
	}
	eng, err := match.NewRedis(o.cfg, o.n)
	if err != nil {
		t.Fatal(err)
	}
	tn.eng = eng
	if err := tn.node.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eng.Start()
	t.Cleanup(func() {
		tn.eng.Close()
		tn.node.Close()
		_ = tn.rdb.Close()
	})
	return tn
}

func redisConfig(cfg match.MemoryConfig, clk clock.Clock) match.RedisConfig {
	return match.RedisConfig{
		Clock:           clk,
		InterestTimeout: cfg.InterestTimeout,
		MaxWaiting:      cfg.MaxWaiting,
		RecentPartner:   cfg.RecentPartner,
		ReportBlock:     cfg.ReportBlock,
		NewRoomID:       cfg.NewRoomID,
		SequentialRooms: cfg.NewRoomID == nil,
	}
}

// newRedisHarness is the suite's harness around a Redis engine (one node).
func newRedisHarness(t *testing.T, cfg match.MemoryConfig) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(t0), rec: &recorder{}}
	tn := startNode(t, nodeOpts{prefix: newPrefix(), cfg: redisConfig(cfg, h.clk), n: h.rec})
	h.m = tn.eng
	h.invariants = func() error { return tn.eng.CheckInvariants(context.Background()) }
	t.Cleanup(func() {
		if err := h.invariants(); err != nil {
			t.Errorf("invariants at end: %v", err)
		}
	})
	return h
}

// TestRedis runs the engine suite against the Redis engine.
func TestRedis(t *testing.T) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, newRedisHarness)
		})
	}
}
