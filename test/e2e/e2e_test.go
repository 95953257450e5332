//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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
	br := sharedBrowser(t)
	a, b := br.landedPair(t, n.url, n.url)
	startAll(t, "start-video", a, b)
	roomA := waitPaired(t, a, b)
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
	br := sharedBrowser(t)
	a, b := br.landedPair(t, n.url, n.url)
	startAll(t, "start-text", a, b)
	waitPaired(t, a, b)
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
	br := sharedBrowser(t)
	a, b := br.landedPair(t, n.url, n.url)
	a.addInterests("Music", "films")
	b.addInterests("cats", "music ")
	startAll(t, "start-text", a, b)
	a.waitChatting()
	b.waitChatting()
	for _, p := range []*page{a, b} {
		p.waitText("status", "You both like music.", 5*time.Second)
	}
}

// TestResume: A's signaling socket dies without a close (the proxy between A
// and the node resets every connection and refuses new ones for a while). The
// call keeps playing, A resumes the same session, and chat lines sent by
// either side during the outage arrive after it, exactly once.
func TestResume(t *testing.T) {
	// A long grace period: this test is about resuming, not about how long
	// the node waits, and a loaded CI machine can be slow to get there.
	n := startNode(t, nodeOptions{resumeGrace: time.Minute})
	proxy := startProxy(t, n.srv.Addr())
	br := sharedBrowser(t)
	a, b := br.landedPair(t, proxy.url(), n.url) // only A's traffic goes through the proxy
	startAll(t, "start-video", a, b)
	room := a.waitChatting()
	b.waitChatting()
	a.waitVideoPlays()
	b.waitVideoPlays()
	sessA, sessB := a.session(), b.session()

	if cut := proxy.cut(true); cut == 0 {
		t.Fatal("the proxy had no connection to cut")
	}
	a.waitFor("A to notice the drop", `window.__stranger.link === 'reconnecting'`, 10*time.Second)
	a.waitFor("the reconnecting banner", jsTestID("link-state")+` !== null`, 5*time.Second)
	// Media does not go through signaling: the call plays on during the outage.
	a.framesIncrease(10, 5*time.Second)
	b.framesIncrease(10, 5*time.Second)
	// Both sides chat into the outage.
	b.typeInto("chat-input", "sent while A was away\n")
	a.typeInto("chat-input", "sent while offline\n")
	time.Sleep(1500 * time.Millisecond) // a few reconnect attempts hit the dead proxy
	proxy.restore()

	a.waitFor("A to resume", `window.__stranger.link === 'open'`, 15*time.Second)
	if s := a.session(); s != sessA {
		t.Fatalf("A: session %q after the drop, want the same session %q", s, sessA)
	}
	if s := b.session(); s != sessB {
		t.Fatalf("B: session changed from %q to %q", sessB, s)
	}
	for _, p := range []*page{a, b} {
		if st, r := eval[string](p, `window.__stranger.state`), p.room(); st != "chatting" || r != room {
			t.Fatalf("%s: state %q in room %q after A's resume, want chatting in %q\n%s", p.name, st, r, room, p.describe())
		}
		if s := p.text("status"); !strings.Contains(s, textChatting) {
			t.Errorf("%s: status %q after A's resume", p.name, s)
		}
	}
	a.waitText("chat-log", "Stranger: sent while A was away", 10*time.Second)
	b.waitText("chat-log", "Stranger: sent while offline", 10*time.Second)
	for _, p := range []*page{a, b} {
		log := p.text("chat-log")
		if c := strings.Count(log, "sent while A was away") + strings.Count(log, "sent while offline"); c != 2 {
			t.Errorf("%s: the outage's two lines appear %d times in the log, want once each: %q", p.name, c, log)
		}
	}
	a.framesIncrease(10, 5*time.Second)
	b.framesIncrease(10, 5*time.Second)
	if s := a.stats(); s.LivePCs != 1 || s.PCs != 1 {
		t.Errorf("A: %d peer connections made, %d live, want the one call kept", s.PCs, s.LivePCs)
	}
	chatBothWays(t, a, b, "after resume")
}

// TestCameraDenied: the user blocks the camera prompt. The page says so and
// offers text chat, which then works with a text-mode stranger.
func TestCameraDenied(t *testing.T) {
	n := startNode(t, nodeOptions{})
	// No fake permission UI: every camera or microphone prompt is denied, as
	// when the user clicks Block.
	br := startBrowser(t, browserOptions{noFakeUI: true, extraFlags: map[string]any{"deny-permission-prompts": true}})
	a, b := br.landedPair(t, n.url, n.url)
	a.click("start-video")
	a.waitText("status", textMediaFailed, 10*time.Second)
	a.waitFor("the camera-blocked message", `(document.querySelector('[role=alert]')?.textContent ?? '').includes(`+
		jsString(textDenied)+`)`, 5*time.Second)
	if g := eval[[]map[string]any](a, `window.__e2e.gum`); len(g) == 0 || g[0]["error"] != "NotAllowedError" {
		t.Errorf("A: camera requests %v, want one refused with NotAllowedError", g)
	}
	if st := eval[string](a, `window.__stranger.state`); st != "ended" {
		t.Errorf("A: state %q after the camera was denied, want ended (not in the queue)", st)
	}
	checkAxe(t, a, "camera denied")
	if n := eval[int](a, `window.__e2e.pcs.filter(p => p.signalingState !== 'closed').length`); n != 0 {
		t.Errorf("A: %d live peer connections after the camera was denied", n)
	}

	// "Continue with text" (the button has no data-testid; found by its label).
	if err := a.do(10*time.Second, chromedp.Click(chromedp.Search(`//button[contains(., "Continue with text")]`), chromedp.NodeVisible)); err != nil {
		t.Fatalf("A: clicking Continue with text: %v\n%s", err, a.describe())
	}
	a.waitText("status", textLooking, 10*time.Second)
	b.click("start-text")
	waitPaired(t, a, b)
	if eval[bool](a, jsTestID("remote-video")+` !== null`) {
		t.Error("A: still shows the video stage in text mode")
	}
	if g := eval[int](a, `window.__e2e.gum.length`); g != 1 {
		t.Errorf("A: %d camera requests, want only the first (text mode must not ask again)", g)
	}
	chatBothWays(t, a, b, "after denial")
}

// TestPrivacyRelay: both strangers turn on "Hide my IP". The call goes
// through the node's embedded TURN relay on both sides (the selected
// candidate pair is relay/relay), neither side ever receives a host candidate
// of the other, and the video plays.
func TestPrivacyRelay(t *testing.T) {
	n := startNode(t, nodeOptions{turn: true})
	br := sharedBrowser(t)
	a := br.newPage(t, "A", n.url)
	b := br.newPage(t, "B", n.url)
	for _, p := range []*page{a, b} {
		p.acceptTerms()
		p.waitFor("the privacy switch to be enabled (the node offers TURN)",
			jsTestID("privacy-toggle")+`?.disabled === false`, 10*time.Second)
		// The switch remembers its last position (localStorage, shared by
		// the pages of one origin): turn it on only if it is not on yet.
		if !eval[bool](p, jsTestID("privacy-toggle")+`.checked`) {
			p.click("privacy-toggle")
		}
		p.waitFor("the privacy switch to be on", jsTestID("privacy-toggle")+`.checked`, 5*time.Second)
	}
	startAll(t, "start-video", a, b)
	waitPaired(t, a, b)
	a.waitVideoPlays()
	b.waitVideoPlays()
	for _, p := range []*page{a, b} {
		p.waitFor("the connection indicator to say relay",
			jsTestID("connection-state")+`.dataset.state === 'relay'`, 10*time.Second)
		s := p.stats()
		if s.Policy != "relay" {
			t.Errorf("%s: iceTransportPolicy %q, want relay", p.name, s.Policy)
		}
		if s.LocalType != "relay" || s.RemoteType != "relay" {
			t.Errorf("%s: selected pair %s/%s, want relay/relay", p.name, s.LocalType, s.RemoteType)
		}
		for _, typ := range append(append([]string{}, s.LocalTypes...), s.RemoteTypes...) {
			if typ != "relay" {
				t.Errorf("%s: a %s candidate was gathered or received (local %v, remote %v): privacy mode leaks addresses",
					p.name, typ, s.LocalTypes, s.RemoteTypes)
			}
		}
	}
	a.framesIncrease(10, 5*time.Second)
	b.framesIncrease(10, 5*time.Second)
}

// TestLeavingChatEndsSession: a stranger who navigates away from a call is
// gone at once: the partner sees "Stranger has disconnected." and no session
// is left online, also after the partner leaves the chat screen.
func TestLeavingChatEndsSession(t *testing.T) {
	n := startNode(t, nodeOptions{})
	blank := serveBlank(t)
	br := sharedBrowser(t)
	a, b := br.landedPair(t, n.url, n.url)
	startAll(t, "start-video", a, b)
	a.waitChatting()
	b.waitChatting()
	a.waitVideoPlays()

	a.goTo(blank)
	b.waitText("status", textDisconnected, 10*time.Second)
	waitOnline(t, n, 1)
	b.goTo(blank) // from the chat screen after the partner left
	waitOnline(t, n, 0)
}

// TestLeavingLandingEndsSession: a visitor who navigates away from the
// landing page is not online any more. A session left behind counts as
// online, and a page kept in the back-forward cache with its socket open
// could even be matched with nobody behind it.
func TestLeavingLandingEndsSession(t *testing.T) {
	n := startNode(t, nodeOptions{})
	blank := serveBlank(t)
	br := sharedBrowser(t)
	a := br.newPage(t, "A", n.url)
	b := br.newPage(t, "B", n.url)
	a.waitReady()
	b.waitReady()
	waitOnline(t, n, 2)
	sess := a.session()
	a.goTo(blank)
	if !onlineWithin(n, 1, 10*time.Second) {
		online := n.srv.Hub().Online()
		// Tell the cause: back to the app; a page restored from the
		// back-forward cache still has its old session and socket.
		_, _ = evalIn[chromedp.Void](a.ctx, `history.back()`, 5*time.Second)
		_ = a.waitErr(`window.__e2e && window.__stranger`, 10*time.Second)
		restores, _ := evalIn[int](a.ctx, `window.__e2e.bfcacheRestores || 0`, 5*time.Second)
		back, _ := evalIn[string](a.ctx, `window.__stranger.session + ' ' + window.__stranger.link`, 5*time.Second)
		t.Fatalf("%d sessions online 10 s after A navigated away from the landing page, want 1; "+
			"going back restored A from the back-forward cache %d time(s), with session and link %q (was %q): "+
			"the page kept its socket open while cached", online, restores, back, sess)
	}
}

func onlineWithin(n *node, want int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for n.srv.Hub().Online() != want {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// waitOnline waits until the node counts exactly want connected sessions.
func waitOnline(t *testing.T, n *node, want int) {
	t.Helper()
	if !onlineWithin(n, want, 10*time.Second) {
		t.Fatalf("%d sessions online, want %d", n.srv.Hub().Online(), want)
	}
}
