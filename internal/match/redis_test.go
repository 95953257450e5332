package match_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
	"github.com/strangerchat/stranger/internal/redistest"
)

var protocolModes = protocol.Modes

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }

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
	// go-redis logs every failed dial of the outage test; the engine's own
	// log says it once.
	redis.SetLogger(quietLogger{})
	code := m.Run()
	srv.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func newPrefix() string { return fmt.Sprintf("t%d:", prefixSeq.Add(1)) }

func newClient(addr string) *redis.Client {
	opt := &redis.Options{Addr: addr, PoolSize: 16}
	cluster.Tune(opt)
	return redis.NewClient(opt)
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
	local  cluster.Local // default none
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
	tn.node = cluster.NewNode(cluster.Config{Client: tn.rdb, Prefix: o.prefix, HeartbeatEvery: o.hb, HeartbeatTTL: 3 * o.hb, Local: o.local})
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
	h.sweepFn = func() {
		if _, _, _, err := tn.eng.Sweep(ctx); err != nil {
			t.Fatalf("sweep: %v", err)
		}
		barrier(t, tn) // the sweep does not wait for its events
	}
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

// TestRedisMatchesNaiveModel: the Redis engine emits exactly the events of
// the naive model for random operation sequences (fewer than the in-memory
// engine's run: every operation is a few Redis round trips).
func TestRedisMatchesNaiveModel(t *testing.T) {
	// Each operation waits on Redis: four groups of seeds run side by side.
	for g := range 4 {
		t.Run(fmt.Sprint("seeds", g*2), func(t *testing.T) {
			t.Parallel()
			runNaiveModel(t, g*2, 2, 300, newRedisModelEngine)
		})
	}
}

func newRedisModelEngine(t *testing.T, cfg match.MemoryConfig, rec *recorder) (engine, func() error, func(), func()) {
	rcfg := redisConfig(cfg, cfg.Clock)
	rcfg.NewRoomID, rcfg.SequentialRooms = nil, true // room1, room2, ... as the model names them
	tn := startNode(t, nodeOpts{prefix: newPrefix(), cfg: rcfg, n: rec})
	return tn.eng, func() error { return tn.eng.CheckInvariants(context.Background()) }, func() {
			tn.eng.Close()
			tn.node.Close()
		}, func() {
			if _, _, _, err := tn.eng.Sweep(ctx); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			barrier(t, tn)
		}
}

// barrier returns once every event published to tn's channel before it has
// reached tn's notifier: an operation that changes nothing still waits for
// its marker behind them (the ordering contract).
func barrier(t *testing.T, tn *testNode) {
	t.Helper()
	if err := tn.eng.Leave(ctx, "barrier-nobody"); err != nil {
		t.Fatalf("barrier: %v", err)
	}
}

func expectEvents(t *testing.T, r *recorder, want ...rec) {
	t.Helper()
	got := r.take()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got  %v\n want %v", got, want)
	}
}

// TestRedisTwoNodes: sessions on two nodes sharing one Redis are matched
// with each other, and every event goes to the node of its session.
func TestRedisTwoNodes(t *testing.T) {
	clk := clock.NewFake(t0)
	prefix := newPrefix()
	cfg := match.RedisConfig{Clock: clk, SequentialRooms: true, InterestTimeout: 5 * time.Second}
	ra, rb := &recorder{}, &recorder{}
	A := startNode(t, nodeOpts{prefix: prefix, cfg: cfg, n: ra})
	B := startNode(t, nodeOpts{prefix: prefix, cfg: cfg, n: rb})
	check := func() {
		t.Helper()
		if err := A.eng.CheckInvariants(ctx); err != nil {
			t.Fatal(err)
		}
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		check()
	}
	must(A.eng.Join(ctx, "a", match.Prefs{Mode: video, Interests: []string{"go"}}))
	clk.Advance(time.Second)
	must(B.eng.Join(ctx, "b", match.Prefs{Mode: video, Interests: []string{"rust", "go"}}))
	barrier(t, A)
	expectEvents(t, ra, waiting("a"), matched("a", "room1", "b", true, video, time.Second, "go"))
	expectEvents(t, rb, waiting("b"), matched("b", "room1", "a", false, video, 0, "go"))

	// b's next: a (on A) hears it; b waits on B; c on A meets b.
	must(B.eng.Next(ctx, "b", match.Prefs{Mode: video}))
	must(A.eng.Join(ctx, "c", match.Prefs{Mode: video}))
	barrier(t, B)
	expectEvents(t, ra, peerLeft("a", "room1", match.ReasonNext), waiting("c"),
		matched("c", "room2", "b", false, video, 0))
	expectEvents(t, rb, waiting("b"), matched("b", "room2", "c", true, video, 0))

	// The interest timeout of a session on B, armed on B, matches it with
	// an open session on A when it passes.
	must(A.eng.Leave(ctx, "c"))
	barrier(t, B)
	rb.take()
	ra.take()
	must(B.eng.Join(ctx, "d", match.Prefs{Mode: text, Interests: []string{"x"}}))
	must(A.eng.Join(ctx, "e", match.Prefs{Mode: text}))
	clk.Advance(5 * time.Second)
	check()
	barrier(t, A)
	expectEvents(t, rb, waiting("d"), matched("d", "room3", "e", true, text, 5*time.Second))
	expectEvents(t, ra, waiting("e"), matched("e", "room3", "d", false, text, 5*time.Second))

	// A report across nodes blocks the pair for both.
	if got, err := A.eng.Report(ctx, "e"); err != nil || got.Partner != "d" {
		t.Fatalf("report: %q %v", got, err)
	}
	barrier(t, B)
	expectEvents(t, rb, peerLeft("d", "room3", match.ReasonReported))

	// A session whose connection comes back on another node moves there:
	// its events follow it.
	must(A.eng.Join(ctx, "f", match.Prefs{Mode: video}))
	must(A.eng.SetConnected(ctx, "f", false))
	must(B.eng.SetConnected(ctx, "f", true))
	must(A.eng.Join(ctx, "g", match.Prefs{Mode: video}))
	barrier(t, B)
	expectEvents(t, ra, waiting("f"), waiting("g"), matched("g", "room4", "f", false, video, 0))
	expectEvents(t, rb, matched("f", "room4", "g", true, video, 0))
}

// TestRedisDefaultRoomID: rooms are named by the Go side, unguessable.
// TestRedisInterestTimeoutsOutOfOrder: each node fires the interest timers
// of its own sessions, so across nodes they fire in any order. The longest
// waiting still wins (rule 4): here the timers on B fire before the one on A
// of the oldest session, x, and y must still meet x, not z. (Two fake clocks
// make the order certain; with one, a timer armed just after the clock
// moved fires late in the same way.)
func TestRedisInterestTimeoutsOutOfOrder(t *testing.T) {
	clkA, clkB := clock.NewFake(t0), clock.NewFake(t0)
	prefix := newPrefix()
	cfg := func(c clock.Clock) match.RedisConfig {
		return match.RedisConfig{Clock: c, SequentialRooms: true, InterestTimeout: 5 * time.Second}
	}
	ra, rb := &recorder{}, &recorder{}
	A := startNode(t, nodeOpts{prefix: prefix, cfg: cfg(clkA), n: ra})
	B := startNode(t, nodeOpts{prefix: prefix, cfg: cfg(clkB), n: rb})
	for _, j := range []struct {
		tn   *testNode
		id   ids.SessionID
		like string
	}{{A, "x", "p"}, {B, "y", "q"}, {B, "z", "r"}} {
		if err := j.tn.eng.Join(ctx, j.id, match.Prefs{Mode: video, Interests: []string{j.like}}); err != nil {
			t.Fatal(err)
		}
	}
	clkB.Advance(5 * time.Second) // y's timer, then z's
	barrier(t, A)
	barrier(t, B)
	expectEvents(t, ra, waiting("x"), matched("x", "room1", "y", true, video, 5*time.Second))
	expectEvents(t, rb, waiting("y"), waiting("z"), matched("y", "room1", "x", false, video, 5*time.Second))
	clkA.Advance(5 * time.Second) // x's timer: x is matched already
	barrier(t, A)
	expectEvents(t, ra)
	if err := A.eng.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRedisDefaultRoomID(t *testing.T) {
	r := &recorder{}
	tn := startNode(t, nodeOpts{prefix: newPrefix(), cfg: match.RedisConfig{Clock: clock.NewFake(t0)}, n: r})
	for i := range 10 {
		if err := tn.eng.Join(ctx, ids.SessionID(fmt.Sprint("a", i)), match.Prefs{Mode: text}); err != nil {
			t.Fatal(err)
		}
		if err := tn.eng.Join(ctx, ids.SessionID(fmt.Sprint("b", i)), match.Prefs{Mode: text}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[match.RoomID]bool{}
	for _, e := range r.take() {
		if e.Ev.Kind == match.EventMatched && e.Ev.Initiator {
			if len(e.Ev.Room) != 18 || e.Ev.Room[:2] != "r_" || seen[e.Ev.Room] {
				t.Fatalf("room id %q: bad or repeated", e.Ev.Room)
			}
			seen[e.Ev.Room] = true
		}
	}
	if len(seen) != 10 {
		t.Fatalf("%d rooms", len(seen))
	}
}

// TestRedisConcurrentThreeNodes hammers three engines sharing one Redis
// from many goroutines (each session on one node), with the fake clock
// moving, checking every event as it arrives and the invariants all along.
func TestRedisConcurrentThreeNodes(t *testing.T) {
	const (
		nodes    = 3
		workers  = 3 // per node
		maxOps   = 5000
		duration = 2 * time.Second
		nIDs     = 60
	)
	clk := clock.NewFake(t0)
	pc := &pairChecker{rooms: map[match.RoomID][]rec{}, current: map[ids.SessionID]match.RoomID{}}
	prefix := newPrefix()
	var tns []*testNode
	for range nodes {
		tns = append(tns, startNode(t, nodeOpts{prefix: prefix, n: pc, cfg: match.RedisConfig{
			Clock: clk, InterestTimeout: 5 * time.Second, ReportBlock: 20 * time.Second, MaxWaiting: 40}}))
	}
	topics := []string{"a", "b", "c", "d", "e", "f"}
	deadline := time.Now().Add(duration)
	var stop atomic.Bool
	errc := make(chan error, nodes*workers+2)
	done := make(chan struct{})
	var running atomic.Int64
	worker := func(node, w int) {
		defer func() {
			if running.Add(-1) == 0 {
				close(done)
			}
		}()
		m := tns[node].eng
		rng := newRand(uint64(node*100 + w))
		for i := 0; i < maxOps && !stop.Load() && time.Now().Before(deadline); i++ {
			// Sessions of this node: ids ≡ node (mod nodes).
			id := ids.SessionID(fmt.Sprintf("s%d", rng.IntN(nIDs/nodes)*nodes+node))
			// Identities too: identity blocks under concurrency.
			p := match.Prefs{Mode: protocolModes[rng.IntN(2)], Identity: []identity.Hash{"", idA, idB, idC}[rng.IntN(4)]}
			for _, j := range rng.Perm(len(topics))[:rng.IntN(3)] {
				p.Interests = append(p.Interests, topics[j])
			}
			var err error
			switch k := rng.IntN(100); {
			case k < 30:
				if err = m.Join(ctx, id, p); isRefusal(err) {
					err = nil
				}
			case k < 50:
				if err = m.Next(ctx, id, p); isRefusal(err) {
					err = nil
				}
			case k < 62:
				err = m.Leave(ctx, id)
			case k < 68:
				if _, err = m.Report(ctx, id); isRefusal(err) {
					err = nil
				}
			case k < 85:
				err = m.SetConnected(ctx, id, rng.IntN(3) > 0)
			case k < 90:
				err = m.End(ctx, id, match.ReasonDisconnected)
			default:
				_, err = m.State(ctx, id)
			}
			if err != nil {
				errc <- fmt.Errorf("node %d worker %d: %w", node, w, err)
				stop.Store(true)
				return
			}
		}
	}
	running.Store(nodes*workers + 2)
	for n := range nodes {
		for w := range workers {
			go worker(n, w)
		}
	}
	go func() { // the clock: interest timeouts and block expiries fire concurrently
		defer func() {
			if running.Add(-1) == 0 {
				close(done)
			}
		}()
		for i := 0; i < 2000 && !stop.Load() && time.Now().Before(deadline); i++ {
			clk.Advance(time.Duration(i%7) * 100 * time.Millisecond)
			time.Sleep(time.Millisecond) // let the workers run between ticks
		}
	}()
	var checks atomic.Int64
	go func() {
		defer func() {
			if running.Add(-1) == 0 {
				close(done)
			}
		}()
		for i := 0; i < 10000 && !stop.Load() && time.Now().Before(deadline); i++ {
			if err := tns[i%nodes].eng.CheckInvariants(ctx); err != nil {
				errc <- err
				stop.Store(true)
				return
			}
			checks.Add(1)
		}
	}()
	<-done
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if err := tns[0].eng.CheckInvariants(ctx); err != nil {
		t.Fatalf("final invariants: %v", err)
	}
	for _, tn := range tns {
		barrier(t, tn)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for _, e := range pc.errs[:min(len(pc.errs), 10)] {
		t.Error(e)
	}
	st := tns[0].eng.Stats()
	t.Logf("stats %+v, %d matched events, %d peer_left, %d invariant checks", st, pc.matched.Load(), pc.peerLeft.Load(), checks.Load())
	if st.Matches < 30 {
		t.Fatalf("only %d matches: the test did not exercise matching", st.Matches)
	}
	if got := uint64(pc.matched.Load()); got != 2*st.Matches {
		t.Fatalf("%d matched events for %d matches: events lost", got, st.Matches)
	}
}

func isRefusal(err error) bool {
	return errors.Is(err, match.ErrBadState) || errors.Is(err, match.ErrNotChatting) ||
		(errors.Is(err, match.ErrOverloaded) && !strings.Contains(err.Error(), "redis"))
}

// TestRedisNodeDeath: a node stops without a word (kill -9). Once its
// heartbeat expires, its sessions are never matched; those not resumed on
// another node within the grace period end, and their partners hear
// peer_left "disconnected".
func TestRedisNodeDeath(t *testing.T) {
	clk := clock.NewFake(t0)
	prefix := newPrefix()
	cfg := match.RedisConfig{Clock: clk, SequentialRooms: true, ResumeGrace: 15 * time.Second}
	ra, rb := &recorder{}, &recorder{}
	A := startNode(t, nodeOpts{prefix: prefix, cfg: cfg, n: ra, hb: 50 * time.Millisecond})
	B := startNode(t, nodeOpts{prefix: prefix, cfg: cfg, n: rb, hb: 50 * time.Millisecond})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := A.eng.CheckInvariants(ctx); err != nil {
			t.Fatal(err)
		}
	}
	must(A.eng.Join(ctx, "a", match.Prefs{Mode: video, Identity: idA}))
	must(B.eng.Join(ctx, "b", match.Prefs{Mode: video, Identity: idB})) // chats with a
	must(B.eng.Join(ctx, "x", match.Prefs{Mode: text}))                 // waits
	must(B.eng.Join(ctx, "z", match.Prefs{Mode: text, Interests: []string{"q"}, Identity: idC}))
	barrier(t, A)
	barrier(t, B)
	ra.take()
	rb.take()

	B.node.Kill()
	B.eng.Close() // its timers die with it
	// Nothing happens before the heartbeat expires (150 ms here).
	deadline := time.Now().Add(5 * time.Second)
	for {
		dead, _, _, err := A.eng.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if dead == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead node was not noticed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(nil)
	// Its waiting sessions are dropped: a newcomer of their mode waits.
	must(A.eng.Join(ctx, "y", match.Prefs{Mode: text}))
	barrier(t, A)
	expectEvents(t, ra, waiting("y"))
	// z resumes on A within the grace period: A adopts it, and it is back
	// in the queue with its place and its interest clock (now run out).
	clk.Advance(10 * time.Second)
	snap, ok, err := A.eng.Adopt(ctx, "z")
	if err != nil || !ok || snap.State != match.Waiting || snap.Connected || snap.Prefs.Mode != text ||
		fmt.Sprint(snap.Prefs.Interests) != "[q]" || snap.Prefs.Identity != idC {
		t.Fatalf("adopt z: %+v %v %v", snap, ok, err)
	}
	must(A.eng.SetConnected(ctx, "z", true))
	barrier(t, A)
	expectEvents(t, ra, matched("z", "room2", "y", true, text, 10*time.Second),
		matched("y", "room2", "z", false, text, 10*time.Second))
	// The grace period ends: b and x end; a hears it; z stays.
	clk.Advance(5*time.Second - time.Millisecond)
	if _, ended, _, err := A.eng.Sweep(ctx); err != nil || ended != 0 {
		t.Fatalf("sweep before the grace period is over: %d ended, %v", ended, err)
	}
	clk.Advance(time.Millisecond)
	if _, ended, _, err := A.eng.Sweep(ctx); err != nil || ended != 2 {
		t.Fatalf("sweep after the grace period: %d ended, %v", ended, err)
	}
	barrier(t, A)
	expectEvents(t, ra, peerLeft("a", "room1", match.ReasonDisconnected))
	for id, want := range map[ids.SessionID]match.State{"a": match.Idle, "b": match.Idle, "x": match.Idle, "z": match.Chatting} {
		if got, err := A.eng.State(ctx, id); err != nil || got != want {
			t.Fatalf("state of %s: %v %v, want %v", id, got, err, want)
		}
	}
	must(nil)
	expectEvents(t, rb) // B heard nothing after its death

	// a reports b, whose record went with its node: the chat, b's identity
	// included, was kept on a's side.
	clk.Advance(time.Second)
	got, err := A.eng.Report(ctx, "a")
	if err != nil || got.Partner != "b" || got.Room != "room1" || got.Mode != video ||
		got.Reporter != idA || got.Suspect != idB || !got.Started.Equal(t0) || !got.Ended.Equal(t0.Add(15*time.Second)) {
		t.Fatalf("report of a partner whose node died: %+v %v", got, err)
	}
	// b comes back on a new node, as a new session: it does not meet a.
	C := startNode(t, nodeOpts{prefix: prefix, cfg: cfg, n: rb, hb: 50 * time.Millisecond})
	must(A.eng.Join(ctx, "a", match.Prefs{Mode: video, Identity: idA}))
	must(C.eng.Join(ctx, "b2", match.Prefs{Mode: video, Identity: idB}))
	for id, want := range map[ids.SessionID]match.State{"a": match.Waiting, "b2": match.Waiting} {
		if got, err := A.eng.State(ctx, id); err != nil || got != want {
			t.Fatalf("state of %s: %v %v, want %v", id, got, err, want)
		}
	}
}

// lossCounter is a node's cluster.Local that counts the node's reports of
// lost messages.
type lossCounter struct{ resub, fenced atomic.Int64 }

func (*lossCounter) Deliver(ids.SessionID, []byte)               {}
func (*lossCounter) Answer(context.Context, byte, []byte) []byte { return nil }
func (c *lossCounter) Resubscribed()                             { c.resub.Add(1) }
func (c *lossCounter) Fenced()                                   { c.fenced.Add(1) }
func (*lossCounter) Online() int                                 { return 0 }

// TestRedisOutage: while Redis is down, every engine call fails with
// ErrOverloaded (quickly) and Ready fails; when Redis is back the node
// recovers by itself: resubscribed, heartbeat back, calls work.
func TestRedisOutage(t *testing.T) {
	srv := redistest.StartServer(t)
	r := &recorder{}
	lost := &lossCounter{}
	tn := startNode(t, nodeOpts{addr: srv.Addr(), prefix: newPrefix(), n: r, hb: 100 * time.Millisecond, local: lost,
		cfg: match.RedisConfig{Clock: clock.NewFake(t0), SequentialRooms: true, OpTimeout: 500 * time.Millisecond}})
	resub, fenced := &lost.resub, &lost.fenced
	if err := tn.eng.Join(ctx, "a", match.Prefs{Mode: video}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	for _, f := range []func() error{
		func() error { return tn.eng.Join(ctx, "b", match.Prefs{Mode: video}) },
		func() error { return tn.eng.Next(ctx, "b", match.Prefs{Mode: video}) },
		func() error { return tn.eng.Leave(ctx, "a") },
		func() error { _, err := tn.eng.Report(ctx, "a"); return err },
		func() error { return tn.eng.SetConnected(ctx, "a", false) },
		func() error { return tn.eng.End(ctx, "a", match.ReasonLeft) },
		func() error { _, err := tn.eng.State(ctx, "a"); return err },
		func() error { _, _, err := tn.eng.Adopt(ctx, "a"); return err },
		func() error { _, _, _, err := tn.eng.Sweep(ctx); return err },
		func() error { return tn.eng.Ready(ctx) },
	} {
		if err := f(); !errors.Is(err, match.ErrOverloaded) && err == nil {
			t.Fatalf("call during the outage: %v", err)
		} else if err == nil {
			t.Fatal("call during the outage succeeded")
		}
	}
	if err := tn.eng.Join(ctx, "b", match.Prefs{Mode: video}); !errors.Is(err, match.ErrOverloaded) {
		t.Fatalf("join during the outage: %v, want ErrOverloaded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("calls during the outage took %v", d)
	}
	if err := srv.Restart(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Back: the data is gone (no persistence); the node resubscribes by
	// itself and works again.
	deadline := time.Now().Add(10 * time.Second)
	for resub.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no resubscription after Redis came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The connection pool may still hold the last dial error for a moment.
	for {
		err := tn.eng.Join(ctx, "c", match.Prefs{Mode: video})
		if err == nil || errors.Is(err, match.ErrBadState) { // BadState: an earlier try got through
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Redis came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := tn.eng.Join(ctx, "d", match.Prefs{Mode: video}); err != nil {
		t.Fatal(err)
	}
	if err := tn.eng.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	evs := r.take()
	if n := len(evs); n < 3 || fmt.Sprint(evs[n-3:]) != fmt.Sprint([]rec{waiting("d"),
		matched("c", "room1", "d", true, video, 0), matched("d", "room1", "c", false, video, 0)}) {
		t.Fatalf("events after recovery: %v", evs)
	}
	for time.Now().Before(deadline) && fenced.Load() == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if fenced.Load() == 0 {
		t.Fatal("OnFenced not called after Redis lost the node's registration")
	}
	if err := tn.eng.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRedisHandOver: the node holding a session hands it over to another
// node (a resume there): the record says so, and later events go there.
func TestRedisHandOver(t *testing.T) {
	clk := clock.NewFake(t0)
	prefix := newPrefix()
	cfg := match.RedisConfig{Clock: clk, SequentialRooms: true}
	ra, rb := &recorder{}, &recorder{}
	A := startNode(t, nodeOpts{prefix: prefix, cfg: cfg, n: ra})
	B := startNode(t, nodeOpts{prefix: prefix, cfg: cfg, n: rb})
	for _, j := range []struct {
		n  *testNode
		id ids.SessionID
	}{{A, "a"}, {B, "b"}} {
		if err := j.n.eng.Join(ctx, j.id, match.Prefs{Mode: video}); err != nil {
			t.Fatal(err)
		}
	}
	barrier(t, A)
	barrier(t, B)
	ra.take()
	rb.take()
	// A read changes nothing.
	snap, ok, err := A.eng.Snapshot(ctx, "b")
	if err != nil || !ok || snap.Node != B.node.ID() || snap.State != match.Chatting || snap.Partner != "a" ||
		snap.Room != "room1" || snap.Initiator || fmt.Sprint(snap.Common) != "[]" || !snap.Connected {
		t.Fatalf("snapshot of b: %+v %v %v", snap, ok, err)
	}
	snap, ok, err = B.eng.HandOver(ctx, "b", A.node.ID())
	if err != nil || !ok || snap.Node != A.node.ID() || snap.State != match.Chatting {
		t.Fatalf("hand over b: %+v %v %v", snap, ok, err)
	}
	if err := A.eng.Leave(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	barrier(t, B)
	expectEvents(t, ra, peerLeft("b", "room1", match.ReasonLeft))
	expectEvents(t, rb)
	// The client seq an operation carried out is kept with the change.
	if err := A.eng.Join(match.WithInSeq(ctx, 41), "b", match.Prefs{Mode: text}); err != nil {
		t.Fatal(err)
	}
	if err := A.eng.Leave(match.WithInSeq(ctx, 40), "b"); err != nil { // never lowered
		t.Fatal(err)
	}
	if snap, _, err := A.eng.Snapshot(ctx, "b"); err != nil || snap.InSeq != 41 {
		t.Fatalf("in seq %d %v, want 41", snap.InSeq, err)
	}
	if _, ok, err := A.eng.Snapshot(ctx, "nobody"); ok || err != nil {
		t.Fatalf("snapshot of an unknown session: %v %v", ok, err)
	}
	if err := A.eng.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRedisNodeDeathSweeper: the same on the real clock with the sweeper
// running by itself: the partner of a session on a killed node hears
// peer_left "disconnected" shortly after heartbeat TTL + grace.
func TestRedisNodeDeathSweeper(t *testing.T) {
	prefix := newPrefix()
	cfg := match.RedisConfig{SequentialRooms: true, ResumeGrace: 300 * time.Millisecond, SweepEvery: 50 * time.Millisecond}
	ra := &recorder{}
	A := startNode(t, nodeOpts{prefix: prefix, cfg: cfg, n: ra, hb: 50 * time.Millisecond})
	B := startNode(t, nodeOpts{prefix: prefix, cfg: cfg, n: &recorder{}, hb: 50 * time.Millisecond})
	if err := A.eng.Join(ctx, "a", match.Prefs{Mode: video}); err != nil {
		t.Fatal(err)
	}
	if err := B.eng.Join(ctx, "b", match.Prefs{Mode: video}); err != nil {
		t.Fatal(err)
	}
	barrier(t, A)
	ra.take()
	killed := time.Now()
	B.node.Kill()
	B.eng.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		barrier(t, A)
		if evs := ra.take(); len(evs) > 0 {
			if fmt.Sprint(evs) != fmt.Sprint([]rec{peerLeft("a", "room1", match.ReasonDisconnected)}) {
				t.Fatalf("events: %v", evs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the partner of a session on the dead node never heard of it")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(killed); d < 300*time.Millisecond {
		t.Fatalf("ended after %v, before the grace period", d)
	} else {
		t.Logf("partner told %v after the kill (TTL 150 ms + grace 300 ms)", d)
	}
	if err := A.eng.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}
