//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// blackhole drops, with iptables in the test's own network namespace, every
// TCP packet to or from port (one page's way to the node, through its
// proxy) and, with udp, every UDP packet (the media of every call on
// loopback): a network that vanished, with no reset and no close. The
// returned function lifts it; the test's cleanup lifts it too.
func blackhole(t *testing.T, port int, udp bool) (lift func()) {
	t.Helper()
	rules := [][]string{
		{"-p", "tcp", "--dport", strconv.Itoa(port), "-j", "DROP"},
		{"-p", "tcp", "--sport", strconv.Itoa(port), "-j", "DROP"},
	}
	if udp {
		rules = append(rules, []string{"-p", "udp", "-j", "DROP"})
	}
	ipt := func(op string, rule []string) error {
		out, err := exec.Command("iptables", append([]string{op, "OUTPUT"}, rule...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables %s %v: %v: %s", op, rule, err, out)
		}
		return nil
	}
	for _, r := range rules {
		if err := ipt("-A", r); err != nil {
			t.Fatal(err)
		}
	}
	lifted := false
	lift = func() {
		if lifted {
			return
		}
		lifted = true
		for _, r := range rules {
			if err := ipt("-D", r); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(lift)
	return lift
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// firstTrue polls each page's expression until every one has been true
// once, and returns for each how long after start it first was.
func firstTrue(t *testing.T, start time.Time, timeout time.Duration, pages []*page, exprs []string) []time.Duration {
	t.Helper()
	got := make([]time.Duration, len(pages))
	for time.Since(start) < timeout {
		done := true
		for i, p := range pages {
			if got[i] != 0 {
				continue
			}
			ok, err := evalIn[bool](p.ctx, "!!("+exprs[i]+")", 2*time.Second)
			if err == nil && ok {
				got[i] = time.Since(start)
			} else {
				done = false
			}
		}
		if done {
			return got
		}
		time.Sleep(25 * time.Millisecond)
	}
	for i, p := range pages {
		if got[i] == 0 {
			t.Fatalf("%s: %q not true within %v\n%s", p.name, exprs[i], timeout, p.describe())
		}
	}
	return got
}

// medianDur is the median of ds, as a duration.
func medianDur(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

const (
	jsSelfOffline  = `document.querySelector('[data-testid=link-state]') !== null && document.querySelector('[data-testid=pinned]')?.dataset.kind === 'self-offline'`
	jsPartnerLost  = `document.querySelector('[data-testid=partner-state]')?.dataset.state === 'lost' && document.querySelector('[data-testid=pinned]')?.dataset.kind === 'partner-lost'`
	jsLastLineSent = `[...document.querySelectorAll('[data-testid=chat-log] .line-you')].at(-1)?.dataset.delivery`
)

// TestNetworkCut (issue rows 1 and 2): A's network vanishes (its packets to
// the node and every call's media are dropped). Within 5 s A's page says it
// is reconnecting; a line A types meanwhile is shown pending; no badge says
// Direct over the frozen video. Within 10 s B sees that the stranger's
// connection is lost (long before the node's pong timeout), with Next at
// hand. When the network comes back A resumes, its line turns sent and
// reaches B, and both calls show the partner back.
//
// STRANGER_CUTS=N repeats the cut N times and logs the medians
// (docs/benchmarks.md, "Connection loss").
func TestNetworkCut(t *testing.T) {
	n := startNode(t, nodeOptions{resumeGrace: 2 * time.Minute})
	proxy := startProxy(t, n.srv.Addr())
	br := sharedBrowser(t)
	a, b := br.landedPair(t, proxy.url(), n.url) // A reaches the node through the proxy
	startAll(t, "start-video", a, b)
	waitPaired(t, a, b)
	a.waitVideoPlays()
	b.waitVideoPlays()
	for _, p := range []*page{a, b} {
		p.waitFor("the partner's presence", `window.__stranger.partnerLink === 'ok'`, 10*time.Second)
	}
	runs := 1
	if s := os.Getenv("STRANGER_CUTS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	port := portOf(t, proxy.ln.Addr().String())
	var self, partner []time.Duration
	for i := range runs {
		for _, p := range []*page{a, b} {
			p.waitFor("a Direct badge before the cut", jsTestID("connection-state")+`.dataset.state === 'direct'`, 30*time.Second)
		}
		lift := blackhole(t, port, true)
		start := time.Now()
		d := firstTrue(t, start, 15*time.Second, []*page{a, b}, []string{jsSelfOffline, jsPartnerLost})
		self, partner = append(self, d[0]), append(partner, d[1])
		t.Logf("cut %d: A shows reconnecting after %v, B shows the stranger's connection lost after %v", i+1,
			d[0].Round(time.Millisecond), d[1].Round(time.Millisecond))
		if d[0] > 5*time.Second {
			t.Errorf("A: reconnecting shown %v after the cut, want within 5 s", d[0])
		}
		if d[1] > 10*time.Second {
			t.Errorf("B: the stranger's lost connection shown %v after the cut, want within 10 s", d[1])
		}
		for _, p := range []*page{a, b} {
			p.waitFor("a badge that is not Direct", jsTestID("connection-state")+`.dataset.state !== 'direct'`, 5*time.Second)
		}
		if dis := eval[bool](b, jsTestID("next")+`.disabled`); dis {
			t.Errorf("B: Next is disabled while the stranger's connection is lost")
		}
		line := fmt.Sprintf("typed offline %d", i+1)
		a.typeInto("chat-input", line+"\n")
		time.Sleep(500 * time.Millisecond)
		if st := eval[string](a, jsLastLineSent); st != "pending" {
			t.Errorf("A: a line typed offline is %q, want pending", st)
		}
		lift()
		a.waitFor("A to resume", `window.__stranger.link === 'open'`, 30*time.Second)
		a.waitFor("A's offline line to turn sent", jsLastLineSent+` === 'sent'`, 5*time.Second)
		b.waitText("chat-log", "Stranger: "+line, 5*time.Second)
		b.waitFor("the stranger back", `window.__stranger.partnerLink === 'ok' && `+jsTestID("partner-state")+` === null`, 10*time.Second)
		a.framesIncrease(10, 30*time.Second)
		b.framesIncrease(10, 30*time.Second)
	}
	if runs > 1 {
		t.Logf("over %d cuts: median until A shows reconnecting %v (max %v); until B shows the stranger's connection lost %v (max %v)",
			runs, medianDur(self).Round(time.Millisecond), slices.Max(self).Round(time.Millisecond),
			medianDur(partner).Round(time.Millisecond), slices.Max(partner).Round(time.Millisecond))
	}
	chatBothWays(t, a, b, "after the cut")
}

// inViewport is true when the element is entirely inside the viewport.
func inViewport(id string) string {
	return `(() => { const e = ` + jsTestID(id) + `; if (!e) return false; const r = e.getBoundingClientRect();
		return r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight + 0.5 && r.right <= innerWidth + 0.5; })()`
}

// TestTextEnding (row 3): after 35 lines the stranger leaves; on a phone the
// ending is in view above the message box, in an assertive live region,
// and the box says the chat ended. The one who pressed Stop is on the
// landing page.
func TestTextEnding(t *testing.T) {
	n := startNode(t, nodeOptions{})
	br := sharedBrowser(t)
	a, b := br.landedPair(t, n.url, n.url)
	a.emulate(screen{name: "phone", width: 360, height: 640, scale: 1, mobile: true})
	startAll(t, "start-text", a, b)
	waitPaired(t, a, b)
	a.waitFor("the waiting placeholder gone", jsTestID("chat-input")+`.placeholder === 'Type a message…'`, 5*time.Second)
	// In bursts of five, as a quick typist: the node's rate budget (20
	// frames/s, bursts of 60) is for people, and a line costs two or three.
	for i := 0; i < 35; i += 5 {
		var lines strings.Builder
		for j := i; j < i+5; j++ {
			fmt.Fprintf(&lines, "line %d of a long chat\n", j+1)
		}
		b.typeInto("chat-input", lines.String())
		time.Sleep(400 * time.Millisecond)
	}
	a.waitText("chat-log", "line 35 of a long chat", 10*time.Second)
	b.click("stop")
	b.waitFor("the landing page after Stop", jsTestID("start-text")+` !== null`, 5*time.Second)
	b.waitFor("what Stop did, said", `document.body.textContent.includes('You left the chat.')`, 5*time.Second)

	a.waitFor("the ending pinned", jsTestID("pinned")+`?.dataset.kind === 'ended'`, 5*time.Second)
	a.waitText("pinned", "Stranger has disconnected.", time.Second)
	if !eval[bool](a, inViewport("pinned")) || !eval[bool](a, inViewport("chat-input")) {
		t.Errorf("A: the ending or the message box is not in view on a 360x640 phone\n%s", a.describe())
	}
	if live := eval[string](a, jsTestID("pinned")+`.getAttribute('aria-live')`); live != "assertive" {
		t.Errorf("A: the ending's aria-live is %q", live)
	}
	if ph := eval[string](a, jsTestID("chat-input")+`.placeholder`); ph != "Chat ended" {
		t.Errorf("A: placeholder %q after the chat ended", ph)
	}
	checkAxe(t, a, "text chat ended")
}

// TestStopAndBack (rows 6 and 8): Back during a call asks and stays on the
// site; Stay keeps the call; Stop goes to the landing page and ends every
// camera and microphone track.
func TestStopAndBack(t *testing.T) {
	n := startNode(t, nodeOptions{})
	br := sharedBrowser(t)
	a, b := br.landedPair(t, n.url, n.url)
	startAll(t, "start-video", a, b)
	waitPaired(t, a, b)
	a.waitVideoPlays()
	origin := eval[string](a, `location.origin`)

	eval[bool](a, `(history.back(), true)`)
	a.waitFor("the leave dialog", jsTestID("leave-dialog")+` !== null`, 5*time.Second)
	if o := eval[string](a, `location.origin`); o != origin || eval[string](a, `window.__stranger.state`) != "chatting" {
		t.Fatalf("A: Back left the chat or the site\n%s", a.describe())
	}
	checkAxe(t, a, "leave dialog")
	a.click("leave-stay")
	a.waitFor("the dialog closed", jsTestID("leave-dialog")+` === null`, 5*time.Second)
	a.framesIncrease(10, 10*time.Second)
	b.framesIncrease(10, 10*time.Second)

	// The partner turns the camera and the microphone off (row 7).
	b.click("camera-toggle")
	b.click("mic-toggle")
	a.waitFor("the camera-off label", jsTestID("partner-state")+`?.dataset.state === 'camera-off'`, 5*time.Second)
	a.waitFor("the muted label", jsTestID("partner-muted")+` !== null`, 5*time.Second)
	checkAxe(t, a, "video call")
	b.click("camera-toggle")
	a.waitFor("the camera-off label gone", jsTestID("partner-state")+` === null`, 5*time.Second)

	if eval[int](a, `window.__e2e.liveTracks()`) == 0 {
		t.Fatalf("A: no live camera track during the call\n%s", a.describe())
	}
	a.click("stop")
	a.waitFor("the landing page after Stop", jsTestID("start-video")+` !== null`, 5*time.Second)
	a.waitFor("every camera and microphone track ended", `window.__e2e.liveTracks() === 0 && window.__e2e.tracks() > 0`, 5*time.Second)
	b.waitText("pinned", "Stranger has disconnected.", 5*time.Second)
	checkAxe(t, b, "video chat ended")
	checkAxe(t, a, "landing")
}

// TestPartnerGone (row 2, the browser variant): the stranger's page is
// closed without a word (its tab crashes or its browser is killed); the
// other side sees the stranger's connection lost within 10 s.
func TestPartnerGone(t *testing.T) {
	n := startNode(t, nodeOptions{resumeGrace: time.Minute})
	proxy := startProxy(t, n.srv.Addr())
	br := sharedBrowser(t)
	a, b := br.landedPair(t, n.url, proxy.url())
	startAll(t, "start-text", a, b)
	waitPaired(t, a, b)
	a.waitFor("the partner's presence", `window.__stranger.partnerLink === 'ok'`, 10*time.Second)
	// B's page dies silently: its socket neither closes nor answers.
	blackhole(t, portOf(t, proxy.ln.Addr().String()), false)
	b.close()
	start := time.Now()
	d := firstTrue(t, start, 12*time.Second, []*page{a}, []string{jsTestID("pinned") + `?.dataset.kind === 'partner-lost'`})
	t.Logf("A sees the stranger's connection lost %v after B vanished", d[0].Round(time.Millisecond))
	if d[0] > 10*time.Second {
		t.Errorf("A: %v until the stranger's lost connection was shown, want within 10 s", d[0])
	}
	if eval[bool](a, jsTestID("next")+`.disabled`) {
		t.Error("A: Next is disabled")
	}
}
