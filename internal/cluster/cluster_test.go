package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/redistest"
)

var ctx = context.Background()

func startRedis(t *testing.T) string {
	t.Helper()
	srv := redistest.StartServer(t)
	return srv.Addr()
}

func newNode(t *testing.T, addr, prefix string, online int) *cluster.Node {
	t.Helper()
	opt := &redis.Options{Addr: addr}
	cluster.Tune(opt)
	rdb := redis.NewClient(opt)
	n := cluster.NewNode(cluster.Config{Client: rdb, Prefix: prefix, HeartbeatEvery: 50 * time.Millisecond,
		HeartbeatTTL: 150 * time.Millisecond, LocalOnline: func() int { return online }})
	t.Cleanup(func() {
		n.Close()
		_ = rdb.Close()
	})
	return n
}

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
	a, b := newNode(t, addr, "p:", 0), newNode(t, addr, "p:", 0)
	var ina, inb inbox
	ra := cluster.NewRouter(a, func(s string, p []byte) { ina.add(s + "=" + string(p)) })
	cluster.NewRouter(b, func(s string, p []byte) { inb.add(s + "=" + string(p)) })
	for _, n := range []*cluster.Node{a, b} {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rdb := a.Client()
	if err := rdb.HSet(ctx, cluster.SessionKey("p:", "s1"), cluster.SessionNodeField, b.ID()).Err(); err != nil {
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
	rdb.HSet(ctx, cluster.SessionKey("p:", "s1"), cluster.SessionNodeField, a.ID())
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
	a, b := newNode(t, addr, "p:", 0), newNode(t, addr, "p:", 0)
	b.HandleRequest('h', func(_ context.Context, body []byte) []byte { return append([]byte("handed:"), body...) })
	for _, n := range []*cluster.Node{a, b} {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ans, err := a.Request(ctx, b.ID(), 'h', []byte("s1\ntoken"))
	if err != nil || string(ans) != "handed:s1\ntoken" {
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
	a, b := newNode(t, addr, "p:", 3), newNode(t, addr, "p:", 4)
	for _, n := range []*cluster.Node{a, b} {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := a.Online(ctx); err != nil || got != 7 {
		t.Fatalf("online %d %v, want 7", got, err)
	}
	b.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		got, err := a.Online(ctx) // cached for a second
		if err == nil && got == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("online %d %v after b died, want 3", got, err)
		}
	}
}

// TestTokens: a token resumes once, on any node, and names the node that
// issued it; Alive tells a live node from a dead one.
func TestTokens(t *testing.T) {
	addr := startRedis(t)
	a, b := newNode(t, addr, "p:", 0), newNode(t, addr, "p:", 0)
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
	a := newNode(t, addr, "p:", 0)
	var in inbox
	r := cluster.NewRouter(a, func(s string, p []byte) { in.add(s + "=" + string(p)) })
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := a.Client()
	rdb.HSet(ctx, cluster.SessionKey("p:", "to"), cluster.SessionNodeField, a.ID())
	rdb.HSet(ctx, cluster.SessionKey("p:", "from"), cluster.SessionNodeField, a.ID())
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
