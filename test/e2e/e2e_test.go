//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// chatBothWays checks typing and chat from a to b and from b to a.
func chatBothWays(t *testing.T, a, b *page, tag string) {
	t.Helper()
	for _, dir := range [][2]*page{{a, b}, {b, a}} {
		from, to := dir[0], dir[1]
		msg := "hello from " + from.name + " " + tag
		half := len(msg) / 2
		from.typeInto("chat-input", msg[:half])
		to.waitText("typing", textTyping, 5*time.Second)
		from.typeInto("chat-input", msg[half:]+"\n")
		to.waitText("chat-log", "Stranger: "+msg, 5*time.Second)
		from.waitText("chat-log", "You: "+msg, 5*time.Second)
		// The chat itself clears "typing" on the receiving side.
		to.waitFor("typing to clear", jsTestID("typing")+`.textContent === ''`, 5*time.Second)
	}
}

// TestVideoCall: two pages matched with each page's remote video playing,
// chat and typing both ways, then Next pairs one of them with a third page
// and the one left behind sees "Stranger has disconnected.".
func TestVideoCall(t *testing.T) {
	n := startNode(t, nodeOptions{})
	br := startBrowser(t, browserOptions{})
	a := br.newPage(t, "A", n.url)
	b := br.newPage(t, "B", n.url)
	a.acceptTerms()
	b.acceptTerms()
	a.waitText("online-count", "2 online", 10*time.Second)

	startAll(t, "start-video", a, b)
	roomA, roomB := a.waitChatting(), b.waitChatting()
	if roomA == "" || roomA != roomB {
		t.Fatalf("A in room %q, B in room %q: want the same room", roomA, roomB)
	}
	a.waitVideoPlays()
	b.waitVideoPlays()
	for _, p := range []*page{a, b} {
		p.waitFor("the connection indicator to say direct",
			jsTestID("connection-state")+`.dataset.state === 'direct'`, 10*time.Second)
		if s := p.stats(); s.LocalType != "host" || s.LivePCs != 1 {
			t.Errorf("%s: selected local candidate %q (want host on loopback), %d live peer connections (want 1)",
				p.name, s.LocalType, s.LivePCs)
		}
		if !eval[bool](p, jsTestID("local-video")+`?.videoWidth > 0`) {
			t.Errorf("%s: the self-view shows no camera", p.name)
		}
	}
	chatBothWays(t, a, b, "1")

	// A third stranger waits; A presses Next and gets them; B is left alone.
	c := br.newPage(t, "C", n.url)
	c.acceptTerms()
	c.click("start-video")
	c.waitText("status", textLooking, 10*time.Second)
	c.waitFor("C to be waiting", `window.__stranger?.state === 'waiting'`, 10*time.Second)

	a.click("next")
	b.waitText("status", textDisconnected, 10*time.Second)
	if st := eval[string](b, `window.__stranger.state`); st != "ended" {
		t.Errorf("B: state %q after its partner pressed Next, want ended", st)
	}
	roomA2, roomC := a.waitChatting(), c.waitChatting()
	if roomA2 == "" || roomA2 != roomC || roomA2 == roomA {
		t.Fatalf("after Next: A in room %q, C in room %q, old room %q: want A and C in a new room together", roomA2, roomC, roomA)
	}
	if log := b.text("chat-log"); !strings.Contains(log, "hello from A 1") {
		t.Errorf("B: the ended chat's log was cleared: %q", log)
	}
	a.waitVideoPlays()
	c.waitVideoPlays()
	if s := a.stats(); s.LivePCs != 1 {
		t.Errorf("A: %d live peer connections after Next, want 1", s.LivePCs)
	}
	chatBothWays(t, a, c, "2")
	if log := a.text("chat-log"); strings.Contains(log, "hello from B") {
		t.Errorf("A: the new chat shows lines of the old one: %q", log)
	}
}

// TestTextMode: two pages start text chats; they are paired, no camera is
// asked for and no peer connection is made, and chat works both ways.
func TestTextMode(t *testing.T) {
	n := startNode(t, nodeOptions{})
	br := startBrowser(t, browserOptions{})
	a := br.newPage(t, "A", n.url)
	b := br.newPage(t, "B", n.url)
	a.acceptTerms()
	b.acceptTerms()
	startAll(t, "start-text", a, b)
	if ra, rb := a.waitChatting(), b.waitChatting(); ra == "" || ra != rb {
		t.Fatalf("A in room %q, B in room %q: want the same room", ra, rb)
	}
	for _, p := range []*page{a, b} {
		if n := eval[int](p, `window.__e2e.gum.length`); n != 0 {
			t.Errorf("%s: text mode asked for the camera %d times", p.name, n)
		}
		if n := eval[int](p, `window.__e2e.pcs.length`); n != 0 {
			t.Errorf("%s: text mode made %d peer connections", p.name, n)
		}
		if eval[bool](p, jsTestID("remote-video")+` !== null || `+jsTestID("local-video")+` !== null`) {
			t.Errorf("%s: text mode shows video elements", p.name)
		}
		if s := p.text("status"); strings.Contains(s, "You both like") {
			t.Errorf("%s: status %q mentions shared interests, but neither gave any", p.name, s)
		}
	}
	chatBothWays(t, a, b, "text")
}

// TestInterests: two strangers who share an interest are told so (after the
// protocol's normalisation: "Music" and "music " are the same interest).
func TestInterests(t *testing.T) {
	n := startNode(t, nodeOptions{})
	br := startBrowser(t, browserOptions{})
	a := br.newPage(t, "A", n.url)
	b := br.newPage(t, "B", n.url)
	a.acceptTerms()
	b.acceptTerms()
	a.addInterests("Music", "films")
	b.addInterests("cats", "music ")
	startAll(t, "start-text", a, b)
	a.waitChatting()
	b.waitChatting()
	for _, p := range []*page{a, b} {
		p.waitText("status", "You both like music.", 5*time.Second)
	}
}
