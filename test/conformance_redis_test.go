package test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/pgtest"
	"github.com/strangerchat/stranger/internal/redistest"
	"github.com/strangerchat/stranger/internal/server"
	"github.com/strangerchat/stranger/test/conformance"
)

// TestConformanceRedisOneNode runs the protocol conformance suite against
// one node on the Redis backend (a real redis-server per deployment).
func TestConformanceRedisOneNode(t *testing.T) {
	conformance.Run(t, func(t *testing.T, o conformance.Options) conformance.Deployment {
		return newRedisDeployment(t, o, 1)
	})
}

// TestConformanceRedisThreeNodes runs it against three nodes sharing one
// Redis, the suite's clients spread over the nodes round-robin: partners,
// resumes and relays cross nodes.
func TestConformanceRedisThreeNodes(t *testing.T) {
	conformance.Run(t, func(t *testing.T, o conformance.Options) conformance.Deployment {
		return newRedisDeployment(t, o, 3)
	})
}

type redisDeployment struct {
	redis *redistest.Server
	nodes []*server.Server
	clk   *clock.Fake
}

func newRedisDeployment(t *testing.T, o conformance.Options, n int) *redisDeployment {
	t.Helper()
	d := &redisDeployment{redis: redistest.StartServer(t)}
	var clk clock.Clock = clock.Real{}
	if !o.RealClock {
		d.clk = clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		clk = d.clk
	}
	database := ""
	if n > 1 {
		// Several nodes share one PostgreSQL for reports and bans (a node
		// refuses to join others without it); one database serves every
		// deployment of the run: the suite's clients all come from
		// 127.0.0.1, one identity, which reports cannot ban.
		database = sharedDatabase(t)
	}
	for range n {
		cfg := suiteConfig(o)
		cfg.Redis = d.redis.URL()
		cfg.Database = database
		srv, err := server.New(cfg, slog.New(slog.DiscardHandler), server.Options{Clock: clk})
		if err != nil {
			t.Fatalf("server.New: %v", err)
		}
		if err := srv.Start(t.Context()); err != nil {
			t.Fatalf("server.Start: %v", err)
		}
		d.nodes = append(d.nodes, srv)
	}
	return d
}

func (d *redisDeployment) URL(i int) string { return "ws://" + d.nodes[i%len(d.nodes)].Addr() + "/ws" }
func (d *redisDeployment) Nodes() int       { return len(d.nodes) }

func (d *redisDeployment) Advance(dt time.Duration) {
	if d.clk == nil {
		panic("Advance on a deployment with the real clock")
	}
	d.clk.Advance(dt)
}

func (d *redisDeployment) CheckInvariants() error {
	// First let the nodes finish the engine calls they retry in the
	// background (signaling/retry.go): until then the engine may still
	// hold a session a node has ended, or think a session is away.
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range d.nodes {
		for n.Hub().RetriesPending() > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("engine calls still being retried after 30 s: %d", n.Hub().RetriesPending())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.nodes[0].Engine().(interface {
		CheckInvariants(context.Context) error
	}).CheckInvariants(ctx)
}

func (d *redisDeployment) Drain(i int) { d.nodes[i%len(d.nodes)].Hub().Drain() }

func (d *redisDeployment) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range d.nodes {
		_ = n.Shutdown(ctx)
	}
	d.redis.Stop()
}

var suiteDB struct {
	once sync.Once
	url  string
}

// sharedDatabase is one PostgreSQL database for the whole test run.
func sharedDatabase(t *testing.T) string {
	t.Helper()
	srv := pgtest.Shared(t)
	suiteDB.once.Do(func() { suiteDB.url = srv.NewDatabase(t) })
	return suiteDB.url
}
