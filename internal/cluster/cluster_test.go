package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/redistest"
)

var ctx = context.Background()

func startRedis(t *testing.T) string {
	t.Helper()
	srv := redistest.StartServer(t)
	return srv.Addr()
}

func newNode(t *testing.T, addr, prefix string, l *local) *cluster.Node {
	t.Helper()
	opt := &redis.Options{Addr: addr}
	cluster.Tune(opt)
	rdb := redis.NewClient(opt)
	n := cluster.NewNode(cluster.Config{Client: rdb, Prefix: prefix, HeartbeatEvery: 50 * time.Millisecond,
		HeartbeatTTL: 150 * time.Millisecond, Local: l})
	t.Cleanup(func() {
		n.Close()
		_ = rdb.Close()
	})
	return n
}

// local is a node's Local that records what comes in.
type local struct {
	online atomic.Int64
	in     inbox // relayed messages, as "session=payload"
	resub  atomic.Int64
	fenced atomic.Int64
}

func (l *local) Deliver(session ids.SessionID, payload []byte) {
	l.in.add(string(session) + "=" + string(payload))
}

// Answer echoes the request with its kind.
func (l *local) Answer(_ context.Context, kind byte, body []byte) []byte {
	return append([]byte("handed "+string(kind)+":"), body...)
}
func (l *local) Resubscribed() { l.resub.Add(1) }
func (l *local) Fenced()       { l.fenced.Add(1) }
func (l *local) Online() int   { return int(l.online.Load()) }

type inbox struct {
	mu  sync.Mutex
	got []string
}

func (b *inbox) add(s string) {
	b.mu.Lock()
	b.got = append(b.got, s)
	b.mu.Unlock()
}

func (b *inbox) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		if len(b.got) >= n {
			got := append([]string(nil), b.got...)
			b.mu.Unlock()
			return got
		}
		b.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages arrived", len(b.got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRelayFollowsTheSession: Relay finds the node of a session in its
// engine hash and delivers there, in order; a session without a node has
// no route.
func TestRelayFollowsTheSession(t *testing.T) {
	addr := startRedis(t)
	var la, lb local
	a, b := newNode(t, addr, "p:", &la), newNode(t, addr, "p:", &lb)
	ina, inb := &la.in, &lb.in
	ra := cluster.NewRouter(a)
	for _, n := range []*cluster.Node{a, b} {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rdb := a.Client()
	if err := rdb.HSet(ctx, cluster.SessionKey("p:", "s1"), cluster.SessionNodeField, string(b.ID())).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		node, err := ra.Relay(ctx, "s1", fmt.Appendf(nil, "m%d", i))
		if err != nil || node != b.ID() {
			t.Fatalf("relay: %q %v", node, err)
		}
	}
	got := inb.wait(t, n)
	for i, g := range got {
		if g != fmt.Sprintf("s1=m%d", i) {
			t.Fatalf("message %d: %q (out of order or mangled)", i, g)
		}
	}
	// The session moves to a: messages follow it.
	rdb.HSet(ctx, cluster.SessionKey("p:", "s1"), cluster.SessionNodeField, string(a.ID()))
	if _, err := ra.Relay(ctx, "s1", []byte("here\nwith newline")); err != nil {
		t.Fatal(err)
	}
	if got := ina.wait(t, 1); got[0] != "s1=here\nwith newline" {
		t.Fatalf("got %q", got)
	}
	if _, err := ra.Relay(ctx, "nobody", []byte("x")); !errors.Is(err, cluster.ErrNoRoute) {
		t.Fatalf("relay to a session without node: %v", err)
	}
}

// TestRequestAnswer: a request reaches the other node's answerer and its
// answer comes back; a request to a dead node times out.
func TestRequestAnswer(t *testing.T) {
	addr := startRedis(t)
	a, b := newNode(t, addr, "p:", &local{}), newNode(t, addr, "p:", &local{})
	for _, n := range []*cluster.Node{a, b} {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ans, err := a.Request(ctx, b.ID(), 'h', []byte("s1\ntoken"))
	if err != nil || string(ans) != "handed h:s1\ntoken" {
		t.Fatalf("answer %q %v", ans, err)
	}
	b.Kill()
	c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := a.Request(c, b.ID(), 'h', nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request to a dead node: %v", err)
	}
}

// TestOnlineSumsLiveNodes: Online adds the counts of the nodes whose
// heartbeat is alive; a dead node's count drops out when its key expires.
func TestOnlineSumsLiveNodes(t *testing.T) {
	addr := startRedis(t)
	la, lb := &local{}, &local{}
	la.online.Store(3)
	lb.online.Store(4)
	a, b := newNode(t, addr, "p:", la), newNode(t, addr, "p:", lb)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Online(); got != 3 {
		t.Fatalf("online %d alone, want 3", got)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitOnline := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := a.Online() // b's count as of a's last heartbeat
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("online %d, want %d", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOnline(7)
	b.Kill()
	waitOnline(3)
}

// TestOnlineCountsLocalExactly: the node's own count is read when asked,
// not from its last heartbeat.
func TestOnlineCountsLocalExactly(t *testing.T) {
	addr := startRedis(t)
	l := &local{}
	l.online.Store(1)
	a := newNode(t, addr, "p:", l)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	l.online.Store(2) // no heartbeat in between is needed
	if got := a.Online(); got != 2 {
		t.Fatalf("online %d, want 2", got)
	}
}

// TestFencedWhenForgotten: a node that finds at its heartbeat that it is no
// longer registered (declared dead, or Redis lost its data) says so once
// per loss, and not on its first heartbeat.
func TestFencedWhenForgotten(t *testing.T) {
	addr := startRedis(t)
	l := &local{}
	a := newNode(t, addr, "p:", l)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a few heartbeats
	if n := l.fenced.Load(); n != 0 {
		t.Fatalf("fenced %d times while registered", n)
	}
	if err := a.Client().Del(ctx, cluster.NodesKey("p:")).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.fenced.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Fenced not called after the node's registration was lost")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // registered again by that heartbeat
	if n := l.fenced.Load(); n != 1 {
		t.Fatalf("fenced %d times for one loss", n)
	}
}

// TestTokens: a token resumes once, on any node, and names the node that
// issued it; Alive tells a live node from a dead one.
func TestTokens(t *testing.T) {
	addr := startRedis(t)
	a, b := newNode(t, addr, "p:", &local{}), newNode(t, addr, "p:", &local{})
	for _, n := range []*cluster.Node{a, b} {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.PutToken(ctx, "secret", "s1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if s, n, err := b.TakeToken(ctx, "secret"); err != nil || s != "s1" || n != a.ID() {
		t.Fatalf("take: %q %q %v", s, n, err)
	}
	if _, _, err := b.TakeToken(ctx, "secret"); !errors.Is(err, cluster.ErrUnknownToken) {
		t.Fatalf("second take: %v", err)
	}
	if err := a.PutToken(ctx, "t2", "s2", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.DropToken(ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.TakeToken(ctx, "t2"); !errors.Is(err, cluster.ErrUnknownToken) {
		t.Fatalf("take after drop: %v", err)
	}
	if ok, err := b.Alive(ctx, a.ID()); err != nil || !ok {
		t.Fatalf("a alive: %v %v", ok, err)
	}
	a.Close() // a clean close removes the heartbeat at once
	if ok, err := b.Alive(ctx, a.ID()); err != nil || ok {
		t.Fatalf("a alive after close: %v %v", ok, err)
	}
}

// TestRelayFromRecordsInSeq: RelayFrom keeps the sender's highest processed
// client seq in its session hash (never lowering it, never creating one).
func TestRelayFromRecordsInSeq(t *testing.T) {
	addr := startRedis(t)
	l := &local{}
	a := newNode(t, addr, "p:", l)
	in := &l.in
	r := cluster.NewRouter(a)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := a.Client()
	rdb.HSet(ctx, cluster.SessionKey("p:", "to"), cluster.SessionNodeField, string(a.ID()))
	rdb.HSet(ctx, cluster.SessionKey("p:", "from"), cluster.SessionNodeField, string(a.ID()))
	for _, seq := range []int64{5, 7, 6} {
		if _, err := r.RelayFrom(ctx, "from", seq, "to", fmt.Appendf(nil, "m%d", seq)); err != nil {
			t.Fatal(err)
		}
	}
	if got := in.wait(t, 3); fmt.Sprint(got) != "[to=m5 to=m7 to=m6]" {
		t.Fatalf("got %v", got)
	}
	if iq := rdb.HGet(ctx, cluster.SessionKey("p:", "from"), "iq").Val(); iq != "7" {
		t.Fatalf("iq %q, want 7", iq)
	}
	if _, err := r.RelayFrom(ctx, "ghost", 3, "to", nil); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, cluster.SessionKey("p:", "ghost")).Val(); n != 0 {
		t.Fatal("RelayFrom created a record for an unknown sender")
	}
}

// TestLiveNodes: a node started in the deployment is listed until it dies;
// one not started yet is not (a node checks who else serves before it
// starts: server refuses several nodes without a shared database).
func TestLiveNodes(t *testing.T) {
	addr := startRedis(t)
	a, b := newNode(t, addr, "p:", &local{}), newNode(t, addr, "p:", &local{})
	if got, err := b.LiveNodes(ctx); err != nil || len(got) != 0 {
		t.Fatalf("LiveNodes before any start = %v, %v; want none", got, err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := b.LiveNodes(ctx)
	if err != nil || len(got) != 1 || got[0] != a.ID() {
		t.Fatalf("LiveNodes = %v, %v; want [%s]", got, err, a.ID())
	}
	a.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := b.LiveNodes(ctx)
		if err == nil && len(got) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("LiveNodes after the node died = %v, %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
