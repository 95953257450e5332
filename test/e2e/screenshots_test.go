//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screen is a viewport the client must work in.
type screen struct {
	name          string
	width, height int64
	scale         float64
	mobile        bool
}

var (
	desktop = screen{name: "desktop", width: 1280, height: 800, scale: 1}
	phone   = screen{name: "phone", width: 360, height: 740, scale: 2, mobile: true}
)

func (p *page) emulate(s screen) {
	p.t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(s.scale)}
	if s.mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	if err := p.do(10*time.Second, chromedp.EmulateViewport(s.width, s.height, opts...)); err != nil {
		p.t.Fatalf("%s: emulating %s: %v", p.name, s.name, err)
	}
}

// checkFits fails when the page scrolls sideways or when one of the controls
// is outside the viewport (a phone user could not reach it without zooming).
func (p *page) checkFits(s screen, where string, ids ...string) {
	p.t.Helper()
	if w := eval[int](p, `document.documentElement.scrollWidth`); int64(w) > s.width {
		p.t.Errorf("%s (%s, %s): the page is %d px wide in a %d px viewport", p.name, s.name, where, w, s.width)
	}
	for _, id := range ids {
		r := eval[struct{ Left, Top, Right, Bottom float64 }](p, `(() => {
			const r = `+jsTestID(id)+`.getBoundingClientRect();
			return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
		})()`)
		if r.Left < 0 || r.Top < 0 || r.Right > float64(s.width)+0.5 || r.Bottom > float64(s.height)+0.5 || r.Right <= r.Left {
			p.t.Errorf("%s (%s, %s): %s is at %+v, outside the %dx%d viewport", p.name, s.name, where, id, r, s.width, s.height)
		}
	}
}

// screenshot captures the viewport; with STRANGER_SCREENSHOTS=DIR it is
// also written to DIR/NAME-SCREEN.png (docs/screenshots holds the README's).
func (p *page) screenshot(s screen, name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		p.t.Fatalf("%s: screenshot is not a PNG: %v", p.name, err)
	}
	want := [2]int{int(float64(s.width) * s.scale), int(float64(s.height) * s.scale)}
	if got := [2]int{img.Bounds().Dx(), img.Bounds().Dy()}; got != want {
		p.t.Errorf("%s: screenshot is %v, want %v", p.name, got, want)
	}
	if dir := os.Getenv("STRANGER_SCREENSHOTS"); dir != "" {
		file := filepath.Join(dir, name+"-"+s.name+".png")
		if err := os.WriteFile(file, buf, 0o644); err != nil {
			p.t.Fatal(err)
		}
		p.t.Logf("wrote %s", file)
	}
}

// TestScreens: the landing and chat screens, on a desktop and on a 360-pixel
// phone, with a live call: nothing scrolls sideways and every control is on
// screen. Set STRANGER_SCREENSHOTS=../../docs/screenshots to refresh the
// README's pictures from this run.
func TestScreens(t *testing.T) {
	n := startNode(t, nodeOptions{})
	br := sharedBrowser(t)
	a := br.newPage(t, "A", n.url)
	b := br.newPage(t, "B", n.url)
	a.emulate(desktop)
	b.emulate(phone)
	a.acceptTerms()
	b.acceptTerms()
	a.addInterests("music", "films")
	b.addInterests("music", "films", "travel")
	// The count is polled every 10 s: wait until both show each other.
	a.waitText("online-count", "2 online", 15*time.Second)
	b.waitText("online-count", "2 online", 15*time.Second)
	a.checkFits(desktop, "landing", "start-video", "start-text", "accept-terms", "interests-input", "online-count")
	b.checkFits(phone, "landing", "interests-input", "online-count")
	a.screenshot(desktop, "landing")
	b.screenshot(phone, "landing")

	startAll(t, "start-video", a, b)
	a.waitChatting()
	b.waitChatting()
	a.waitVideoPlays()
	b.waitVideoPlays()
	// The nudity guard shows the test pattern once it judged it (or, on a
	// machine too busy to judge a frame a second, with its notice).
	for _, p := range []*page{a, b} {
		p.waitFor("the guard to show the video", `window.__strangerGuard?.shownAt > 0`, 30*time.Second)
	}
	b.waitText("status", "You both like music and films.", 5*time.Second)
	b.typeInto("chat-input", "hey! where are you from?\n")
	a.waitText("chat-log", "Stranger: hey! where are you from?", 5*time.Second)
	a.typeInto("chat-input", "hi :) Lisbon, you?\n")
	b.waitText("chat-log", "Stranger: hi :) Lisbon, you?", 5*time.Second)
	b.typeInto("chat-input", "what are you list")
	a.waitText("typing", textTyping, 5*time.Second)
	for _, p := range []*page{a, b} {
		p.waitFor("the connection indicator", jsTestID("connection-state")+`.dataset.state === 'direct'`, 10*time.Second)
	}
	controls := []string{"remote-video", "local-video", "status", "next", "stop", "report",
		"mic-toggle", "camera-toggle", "chat-input", "chat-send", "connection-state"}
	a.checkFits(desktop, "chat", controls...)
	b.checkFits(phone, "chat", controls...)
	a.screenshot(desktop, "chat")
	b.screenshot(phone, "chat")
}

// The viewports of issue 15: phones upright and sideways, a tall phone, a laptop.
var layoutScreens = []screen{
	{name: "360x640", width: 360, height: 640, scale: 1, mobile: true},
	{name: "390x844", width: 390, height: 844, scale: 1, mobile: true},
	{name: "844x390", width: 844, height: 390, scale: 1, mobile: true},
	{name: "1280x800", width: 1280, height: 800, scale: 1},
}

// settle waits until a resize has reached the layout (the next frames).
func (p *page) settle() {
	p.t.Helper()
	eval[bool](p, `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
}

// checkChatFits fails unless the chat log shows at least four lines of
// text and the message box and its Send button are entirely in view.
func (p *page) checkChatFits(s screen, where string) {
	p.t.Helper()
	p.settle()
	m := eval[struct{ Log, Line float64 }](p, `(() => {
		const log = `+jsTestID("chat-log")+`;
		return {log: log.clientHeight, line: parseFloat(getComputedStyle(log).lineHeight)};
	})()`)
	if m.Line <= 0 || m.Log < 4*m.Line {
		p.t.Errorf("%s (%s, %s): the chat log is %.0f px high, under four lines of %.0f px", p.name, s.name, where, m.Log, m.Line)
	}
	for _, id := range []string{"chat-input", "chat-send"} {
		if !eval[bool](p, inViewport(id)) {
			p.t.Errorf("%s (%s, %s): %s is not entirely in view", p.name, s.name, where, id)
		}
	}
	if w := eval[int](p, `document.documentElement.scrollWidth`); int64(w) > s.width {
		p.t.Errorf("%s (%s, %s): the page is %d px wide", p.name, s.name, where, w)
	}
}

// TestLayouts: waiting, a video call, a text call and a text chat that
// ended, at each of layoutScreens and with a phone's keyboard open
// (390x450): the chat log keeps four lines and the message box is whole.
// With STRANGER_SCREENSHOTS=DIR each is written as STATE-WxH.png.
func TestLayouts(t *testing.T) {
	n := startNode(t, nodeOptions{})
	br := sharedBrowser(t)
	a, b := br.landedPair(t, n.url, n.url)
	phoneUpright := layoutScreens[0]
	a.emulate(phoneUpright)
	for _, id := range []string{"start-video", "start-text"} {
		if !eval[bool](a, inViewport(id)) {
			t.Errorf("A: %s needs scrolling on a 360x640 phone", id)
		}
	}

	each := func(state string, check bool) {
		t.Helper()
		for _, s := range layoutScreens {
			a.emulate(s)
			if check {
				a.checkChatFits(s, state)
			}
			a.screenshot(s, state)
		}
	}

	a.click("start-video")
	a.waitText("status", textLooking, 10*time.Second)
	each("waiting", true)
	checkAxe(t, a, "waiting")

	b.click("start-video")
	waitPaired(t, a, b)
	a.waitVideoPlays()
	b.typeInto("chat-input", "hi!\nwhere are you from?\n")
	a.waitText("chat-log", "where are you from?", 5*time.Second)
	a.typeInto("chat-input", "Lisbon :) you?\n")
	each("video", true)
	keyboard := screen{name: "390x450", width: 390, height: 450, scale: 1, mobile: true}
	a.emulate(keyboard)
	a.checkChatFits(keyboard, "video, keyboard open")

	a.click("stop")
	b.waitFor("the ended chat", jsTestID("pinned")+`?.dataset.kind === 'ended'`, 5*time.Second)
	b.click("stop")
	a.waitFor("A's landing", jsTestID("start-text")+` !== null`, 5*time.Second)
	b.waitFor("B's landing", jsTestID("start-text")+` !== null`, 5*time.Second)
	a.acceptTerms()
	b.acceptTerms()
	startAll(t, "start-text", a, b)
	waitPaired(t, a, b)
	b.typeInto("chat-input", "hello stranger\nany good films lately?\n")
	a.waitText("chat-log", "any good films lately?", 5*time.Second)
	a.typeInto("chat-input", "Perfect Days, very calm\n")
	each("text", true)
	a.emulate(keyboard)
	a.checkChatFits(keyboard, "text, keyboard open")
	checkAxe(t, a, "text call")

	b.click("stop")
	a.waitFor("the ended chat", jsTestID("pinned")+`?.dataset.kind === 'ended'`, 5*time.Second)
	each("ended", true)
	for _, s := range layoutScreens {
		a.emulate(s)
		a.settle()
		if !eval[bool](a, inViewport("pinned")) {
			t.Errorf("A (%s): the ending is not in view", s.name)
		}
	}
}
