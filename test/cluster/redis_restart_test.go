package cluster_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/redistest"
)

// TestRedisRestartMidRun: Redis goes away for a while under three nodes with
// a chat in progress. During the outage the nodes keep every socket open,
// answer join/next with `overloaded`, report 503 on /readyz and log the
// outage once; when Redis is back they recover by themselves: /readyz 200,
// new clients are matched and chat.
func TestRedisRestartMidRun(t *testing.T) {
	t.Parallel()
	rd := redistest.StartServer(t)
	n1 := startNode(t, "node1", rd.URL())
	n2 := startNode(t, "node2", rd.URL())
	n3 := startNode(t, "node3", rd.URL())
	nodes := []*node{n1, n2, n3}

	a := dial(t, "A", n1.ws())
	b := dial(t, "B", n2.ws())
	pair(t, a, b)
	chat(t, a, b, "before the outage")
	c := dial(t, "C", n3.ws()) // connected before, acts during the outage

	rd.Stop()
	down := time.Now()

	c.send(map[string]any{"type": "join", "mode": "text"})
	if f := c.expect("error"); f.Str("code") != "overloaded" {
		t.Fatalf("C's join during the outage: %s, want error overloaded", f)
	}
	c.send(map[string]any{"type": "next"})
	if f := c.expect("error"); f.Str("code") != "overloaded" {
		t.Fatalf("C's next during the outage: %s, want error overloaded", f)
	}
	// A client connecting during the outage gets its welcome and the same
	// answer.
	g := dial(t, "G", n2.ws())
	g.send(map[string]any{"type": "join", "mode": "text"})
	if f := g.expect("error"); f.Str("code") != "overloaded" {
		t.Fatalf("G's join during the outage: %s, want error overloaded", f)
	}
	// A relay to a partner on another node needs Redis too.
	a.send(map[string]any{"type": "chat", "text": "during the outage"})
	if f := a.expect("error"); f.Str("code") != "overloaded" {
		t.Fatalf("A's chat during the outage: %s, want error overloaded", f)
	}
	for _, n := range nodes {
		if !waitFor(context.Background(), 5*time.Second, func() bool { return readyz(n.base()) == http.StatusServiceUnavailable }) {
			t.Fatalf("%s: /readyz %d during the outage, want 503", n.name, readyz(n.base()))
		}
	}
	// Many more actions during the outage must not add log lines.
	for range 5 {
		c.send(map[string]any{"type": "join", "mode": "text"})
		if f := c.expect("error"); f.Str("code") != "overloaded" {
			t.Fatalf("C's join during the outage: %s, want error overloaded", f)
		}
	}
	if time.Since(down) < 2*time.Second {
		time.Sleep(2*time.Second - time.Since(down)) // an outage of at least 2 s, several heartbeats
	}
	for _, cl := range []*client{a, b, c, g} {
		if cl.waitEnded(0) == nil {
			t.Fatalf("%s's socket ended during the Redis outage", cl.name)
		}
	}

	// redistest restarts an empty Redis (no persistence): a Redis without
	// AOF that restarts loses every chat and queue place.
	if err := rd.Restart(0); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for _, n := range nodes {
		if !waitFor(context.Background(), 10*time.Second, func() bool { return readyz(n.base()) == http.StatusOK }) {
			t.Fatalf("%s: /readyz %d 10 s after Redis came back, want 200", n.name, readyz(n.base()))
		}
	}
	t.Logf("every /readyz 200 %v after Redis came back (outage %v)", time.Since(back).Round(10*time.Millisecond), back.Sub(down).Round(10*time.Millisecond))

	// New clients on different nodes are matched and chat, as soon as the
	// nodes say they are ready, and no action of theirs is refused.
	e := dial(t, "E", n1.ws())
	f := dial(t, "F", n3.ws())
	joined := time.Now()
	e.send(map[string]any{"type": "join", "mode": "text"})
	e.expect("waiting")
	f.send(map[string]any{"type": "join", "mode": "text"})
	expectMatched(f)
	e.expect("matched")
	if g, err := e.tryNext(2500 * time.Millisecond); g != nil || !strings.Contains(fmt.Sprint(err), "no frame") {
		// Seen: the join was sent while /readyz was already 200 but the
		// node's channel subscription was not back; its marker was
		// published into the void, so the call waited the engine's timeout
		// and answered `overloaded` although the join happened (waiting
		// and matched arrived through the resynchronisation).
		t.Errorf("E after waiting and matched (join sent %v after every /readyz was 200): got %v (%v), want nothing: "+
			"a join that took effect must not be answered with an error", joined.Sub(back).Round(time.Millisecond), g, err)
	}
	chat(t, e, f, "after the outage")
	chat(t, f, e, "works")

	// Redis came back empty: the chat A–B is gone from it. When its
	// subscription is back each node resynchronises its sessions with the
	// engine (match.Repair): both sides get peer_left disconnected and are
	// idle, as after a partner's grace period.
	for _, cl := range []*client{a, b} {
		if f := cl.next(waitBound); f.Type() != "peer_left" || f.Str("reason") != "disconnected" {
			t.Fatalf("%s after Redis restarted empty: got %s, want peer_left disconnected", cl.name, f)
		}
	}
	a.send(map[string]any{"type": "chat", "text": "anyone there?"})
	if f := a.expect("error"); f.Str("code") != "not_chatting" {
		t.Fatalf("A's chat after its chat was lost: %s, want error not_chatting", f)
	}

	// And the clients of before the outage carry on.
	pair(t, a, c)
	chat(t, a, c, "A and C")
	chat(t, c, a, "matched after the outage")

	for _, cl := range []*client{a, b, c, g, e, f} {
		if cl.waitEnded(0) == nil {
			t.Fatalf("%s's socket ended after the Redis outage", cl.name)
		}
	}

	// Logged once per outage, not per message: each node logs the engine's
	// and the heartbeat's loss of Redis at most once, and the end of the
	// outage once its heartbeat (every second) got through again.
	for _, n := range nodes {
		if !waitFor(context.Background(), 5*time.Second, func() bool { return len(logLines(t, n, "cluster: Redis reachable again")) > 0 }) {
			t.Errorf("%s did not log the end of the outage (cluster: Redis reachable again)", n.name)
		}
		for _, msg := range []string{"match: Redis unreachable", "cluster: Redis unreachable"} {
			if l := logLines(t, n, msg); len(l) > 1 {
				t.Errorf("%s logged %q %d times during one outage:\n%v", n.name, msg, len(l), l)
			}
		}
		if l := logLines(t, n, "Redis unreachable"); len(l) == 0 {
			t.Errorf("%s did not log the outage", n.name)
		}
	}
}
