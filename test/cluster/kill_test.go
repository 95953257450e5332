package cluster_test

import (
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/redistest"
)

// TestKillNodeMidChat: two chats run across nodes 1 and 2; node 1 is killed
// with SIGKILL. A (on node 1) resumes on node 3 within the grace period and
// keeps its chat, while its partner B notices nothing. C (also on node 1)
// does not come back: its partner D gets peer_left disconnected once the
// grace period (5 s) is over, counted from when the node's death is noticed
// (heartbeat TTL 3 s, sweep every second).
func TestKillNodeMidChat(t *testing.T) {
	t.Parallel()
	rd := redistest.StartServer(t)
	n1 := startNode(t, "node1", rd.URL())
	n2 := startNode(t, "node2", rd.URL())
	n3 := startNode(t, "node3", rd.URL())

	a := dial(t, "A", n1.ws())
	b := dial(t, "B", n2.ws())
	room := pair(t, a, b)
	chat(t, a, b, "hello from A")
	chat(t, b, a, "hello from B")

	c := dial(t, "C", n1.ws())
	d := dial(t, "D", n2.ws())
	pair(t, c, d)
	chat(t, c, d, "hello from C")

	n1.kill()
	killed := time.Now()
	if err := a.waitEnded(5 * time.Second); err != nil {
		t.Fatalf("A's socket to the killed node: %v", err)
	}

	w := a.resume(n3.ws())
	if w.Str("state") != "chatting" {
		t.Fatalf("A resumed on node 3: state %q, want chatting: %s", w.Str("state"), w)
	}
	if ch, _ := w["chat"].(map[string]any); ch == nil || ch["room"] != room {
		t.Fatalf("A resumed on node 3: chat %v, want room %q", w["chat"], room)
	}
	if since := time.Since(killed); since > 5*time.Second {
		t.Fatalf("A's resume took %v after the kill, longer than the grace period", since)
	}
	chat(t, a, b, "A is back on node 3")
	chat(t, b, a, "B still here")
	chat(t, a, b, "and again")

	// D's partner C is gone for good: peer_left disconnected after the
	// grace period, and not much later.
	f := d.next(waitBound)
	if f.Type() != "peer_left" || f.Str("reason") != "disconnected" {
		t.Fatalf("D: got %s, want peer_left disconnected", f)
	}
	after := time.Since(killed)
	if after < 5*time.Second {
		t.Fatalf("D got peer_left %v after the kill, before the grace period (5 s) was over", after)
	}
	if after > 5*time.Second+3*time.Second+5*time.Second {
		t.Fatalf("D got peer_left %v after the kill; want about grace 5 s + TTL 3 s + sweep", after)
	}
	t.Logf("D got peer_left disconnected %v after the kill", after.Round(100*time.Millisecond))

	// B noticed nothing but the delay, even after C's session ended.
	chat(t, b, a, "still chatting after the sweep")
	b.quiet(300 * time.Millisecond)
	a.quiet(100 * time.Millisecond)
}
