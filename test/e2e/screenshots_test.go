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
