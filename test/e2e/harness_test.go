//go:build e2e

// Package e2e drives the real web client in headless Chromium against an
// in-process Stranger node. Run it with `make test-e2e`: the binary runs in a
// network namespace that has only loopback (see test/e2e/README.md and
// ../shared/e2e.md for why every flag below is needed).
package e2e

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/logbuf"
	"github.com/strangerchat/stranger/internal/server"
)

//go:embed hooks.js
var hooksJS string

const chromiumPath = "/usr/bin/chromium"

// Status texts of the web client (web/src/call/status.ts).
const (
	textLooking      = "Looking for someone you can chat with…"
	textChatting     = "You're now chatting with a random stranger. Say hi!"
	textDisconnected = "Stranger has disconnected."
	textTyping       = "Stranger is typing…"
	textMediaFailed  = "Camera or microphone unavailable."
	textDenied       = "Camera and microphone access was blocked"
)

// requireLoopbackOnly fails the test when a non-loopback interface is up: a
// browser would then gather candidates on it and send media off loopback.
func requireLoopbackOnly(t *testing.T) {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatalf("listing interfaces: %v", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 {
			t.Fatalf("interface %s is up: run the browser tests in a loopback-only namespace, "+
				"as `make test-e2e` does (unshare -n sh -c 'ip link set lo up; ...')", i.Name)
		}
	}
}

// node is an in-process Stranger server.
type node struct {
	srv *server.Server
	url string // http://127.0.0.1:PORT
}

type nodeOptions struct {
	turn bool
	// resumeGrace overrides the grace period of a dropped session.
	resumeGrace time.Duration
	// admin serves the admin listener (operator API and console) on a free
	// loopback port.
	admin bool
	// trustLoopbackProxy honours X-Forwarded-For from 127.0.0.1 (asPerson).
	trustLoopbackProxy bool
	// pow is --pow-difficulty (0: off, as in every test that does not test it).
	pow int64
}

func startNode(t *testing.T, o nodeOptions) *node {
	t.Helper()
	requireLoopbackOnly(t)
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.STUN = nil
	cfg.MaxConnsPerIP = 0
	cfg.ConnRate, cfg.MaxWaitingPerIP, cfg.NextRate = 0, 0, 0 // every browser is 127.0.0.1
	if o.resumeGrace > 0 {
		cfg.ResumeGrace = o.resumeGrace
	}
	if o.admin {
		cfg.AdminAddr = "127.0.0.1:0"
	}
	if o.trustLoopbackProxy {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
	cfg.PowDifficulty = o.pow
	if o.turn {
		cfg.TURNListen = "127.0.0.1:0"
		cfg.TURNPublicIP = "127.0.0.1"
		cfg.TURNSecret = "e2e-turn-secret-0123456789"
		cfg.TURNAllowLoopback = true
		cfg.TURNRelayPorts = "40000-40999"
	}
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := server.New(cfg, log, server.Options{})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("server Start: %v", err)
	}
	t.Cleanup(func() {
		// Chromium opens sockets ahead of need that may never carry a
		// request; http.Server.Shutdown waits for such a connection until
		// it is 5 s old, so a 5 s bound here failed now and then.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("server Shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.Tail(6000))
		}
	})
	return &node{srv: s, url: "http://" + s.Addr()}
}

// browserOptions choose how one Chromium process is started.
type browserOptions struct {
	// noFakeUI leaves out --use-fake-ui-for-media-stream, so a camera request
	// meets a real permission decision (see denyCamera).
	noFakeUI bool
	// extraFlags are added to the command line.
	extraFlags map[string]any
}

// browser is one headless Chromium process.
type browser struct {
	ctx     context.Context // the browser's first context; pages are its children
	logs    *logbuf.Buffer
	startup time.Duration
}

// startBrowser starts a Chromium of the test's own, stopped when it ends.
func startBrowser(t *testing.T, o browserOptions) *browser {
	t.Helper()
	requireLoopbackOnly(t)
	b, stop, err := launchBrowser(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("chromium output:\n%s", b.logs.Tail(4000))
		}
	})
	t.Logf("chromium started in %v", b.startup)
	return b
}

// shared is the Chromium with the default options that most tests share, so
// that each does not pay for a browser start; TestMain stops it.
var shared struct {
	mu   sync.Mutex
	b    *browser
	stop func()
}

func sharedBrowser(t *testing.T) *browser {
	t.Helper()
	requireLoopbackOnly(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.b == nil {
		b, stop, err := launchBrowser(browserOptions{})
		if err != nil {
			t.Fatal(err)
		}
		shared.b, shared.stop = b, stop
		t.Logf("shared chromium started in %v", b.startup)
	}
	b := shared.b
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", b.logs.Tail(4000))
		}
	})
	return b
}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.stop != nil {
		shared.stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

func launchBrowser(o browserOptions) (*browser, func(), error) {
	if _, err := os.Stat(chromiumPath); err != nil {
		return nil, nil, fmt.Errorf("%s: %w: install chromium: apt-get install -y chromium", chromiumPath, err)
	}
	dir, err := os.MkdirTemp("", "stranger-e2e-chromium-")
	if err != nil {
		return nil, nil, err
	}
	logs := &logbuf.Buffer{}
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts,
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.CombinedOutput(logs),
		chromedp.WindowSize(1280, 800),
		// No calls out (the namespace has no route anyway, but retries cost time).
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		// Fake camera and microphone: a test pattern and a beep.
		chromedp.Flag("use-fake-device-for-media-stream", true),
		// An unmuted remote <video> must play without a user gesture.
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Without it Chrome gathers no ICE candidates on loopback at all.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
	)
	if !o.noFakeUI {
		opts = append(opts, chromedp.Flag("use-fake-ui-for-media-stream", true))
	}
	for k, v := range o.extraFlags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	stop := func() {
		cancel()
		acancel() // waits for the process to exit
		_ = os.RemoveAll(dir)
	}
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("starting %s: %w (install chromium: apt-get install -y chromium)\n%s",
			chromiumPath, err, logs.Tail(2000))
	}
	return &browser{ctx: ctx, logs: logs, startup: time.Since(start).Round(time.Millisecond)}, stop, nil
}

// page is one tab in a window of its own: a background tab of a shared window
// gets no animation frames, so its video would never render.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage // warnings, errors and exceptions

	cancel context.CancelFunc
}

// close closes the page's window (its socket closes with 1001, going away).
func (p *page) close() { p.cancel() }

// landedPair opens pages A (on urlA) and B (on urlB) and ticks the terms
// box on both: the start of every two-stranger test.
func (b *browser) landedPair(t *testing.T, urlA, urlB string) (pa, pb *page) {
	t.Helper()
	pa, pb = b.newPage(t, "A", urlA), b.newPage(t, "B", urlB)
	pa.acceptTerms()
	pb.acceptTerms()
	return pa, pb
}

// newPage opens a window, installs hooks.js and loads url.
func (b *browser) newPage(t *testing.T, name, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	p := &page{t: t, name: name, ctx: ctx, cancel: cancel}
	// The first Run creates the tab and binds it to the context it gets, so
	// it must be the page's own context, not one with a deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: opening a window: %v", name, err)
	}
	// The app's warnings and errors are shown with the test's output; an
	// uncaught exception or unhandled rejection fails the test.
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning {
				p.mu.Lock()
				p.console = append(p.console, m)
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, m := range p.console {
			if m.IsException() {
				t.Errorf("%s: uncaught in the page: %s (%s:%d)", name, m, m.URL, m.Line+1)
			} else {
				t.Logf("%s: console %s: %s", name, m.Type, m)
			}
		}
	})
	addHooks := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: hooksSource()})
		return err
	})
	if err := p.do(15*time.Second, addHooks, chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: opening %s: %v", name, url, err)
	}
	return p
}

// hooksSource is hooks.js, told to time negotiation calls and long tasks
// when the benchmark's timeline is asked for (STRANGER_BENCH_DEBUG).
func hooksSource() string {
	if os.Getenv("STRANGER_BENCH_DEBUG") != "" {
		return "window.__e2eTimings = true;\n" + hooksJS
	}
	return hooksJS
}

// do runs actions with a deadline (the tab stays open when it passes).
func (p *page) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// goTo loads url in the page (a navigation ends the old page's session: the
// browser closes its socket with 1001).
func (p *page) goTo(url string) {
	p.t.Helper()
	if err := p.do(15*time.Second, chromedp.Navigate(url)); err != nil {
		p.t.Fatalf("%s: navigate %s: %v", p.name, url, err)
	}
}

func evalIn[T any](ctx context.Context, expr string, timeout time.Duration) (T, error) {
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return chromedp.Run(c, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// eval evaluates expr (awaiting a promise) and decodes the result into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := evalIn[T](p.ctx, expr, 10*time.Second)
	if err != nil {
		p.t.Fatalf("%s: eval %q: %v\n%s", p.name, expr, err, p.describe())
	}
	return v
}

// describe is what a failure message shows about the page.
func (p *page) describe() string {
	s, err := evalIn[string](p.ctx, `JSON.stringify((() => {
		const q = (id) => document.querySelector('[data-testid="' + id + '"]');
		const st = window.__stranger || {};
		return {
			url: location.href,
			status: q('status')?.textContent ?? null,
			typing: q('typing')?.textContent ?? null,
			log: q('chat-log')?.innerText ?? null,
			connection: q('connection-state')?.dataset.state ?? null,
			online: q('online-count')?.textContent ?? null,
			state: st.state, link: st.link, session: st.session, room: st.room,
			initiator: st.initiator, pcCount: st.pcCount,
			gum: window.__e2e?.gum, frames: window.__e2e?.frames,
			alert: document.querySelector('[role=alert]')?.textContent ?? null,
			guard: q('guard')?.dataset.guard ?? null,
			guardBackend: window.__strangerGuard?.backend, guardClassified: window.__strangerGuard?.classified,
		};
	})())`, 5*time.Second)
	if err != nil {
		return fmt.Sprintf("[%s: page state unavailable: %v]", p.name, err)
	}
	return fmt.Sprintf("[%s: %s]", p.name, s)
}

// waitFor polls the JavaScript expression until it is truthy.
func (p *page) waitFor(what, expr string, timeout time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.waitErr(expr, timeout); err != nil {
		p.t.Fatalf("%s: waiting %v for %s: %v\n%s", p.name, timeout, what, err, p.describe())
	}
	if d := time.Since(start); d > 3*time.Second {
		// Worth knowing on a slow CI machine before a timeout bites.
		p.t.Logf("%s: %s took %v", p.name, what, d.Round(time.Millisecond))
	}
}

func (p *page) waitErr(expr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+")",
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(20*time.Millisecond)))
	return err
}

// byTestID is a CSS selector for a data-testid.
func byTestID(id string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id))
}

func jsTestID(id string) string {
	return fmt.Sprintf(`document.querySelector('[data-testid=%q]')`, id)
}

func (p *page) click(id string) {
	p.t.Helper()
	if err := p.do(10*time.Second, chromedp.Click(byTestID(id), chromedp.NodeVisible)); err != nil {
		p.t.Fatalf("%s: click %s: %v\n%s", p.name, id, err, p.describe())
	}
}

// typeInto focuses the field and types text: each line as one text insertion
// (as an IME or a paste does; per-key events cost three protocol round trips
// a character), and each "\n" as a press of Enter.
func (p *page) typeInto(id, text string) {
	p.t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Focus(byTestID(id), chromedp.NodeVisible)}
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			steps = append(steps, chromedp.KeyEvent("\r"))
		}
		if line != "" {
			steps = append(steps, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: line})
				return err
			}))
		}
	}
	if err := p.do(10*time.Second, steps...); err != nil {
		p.t.Fatalf("%s: typing into %s: %v\n%s", p.name, id, err, p.describe())
	}
}

func (p *page) text(id string) string {
	p.t.Helper()
	return eval[string](p, jsTestID(id)+`?.textContent ?? ''`)
}

// waitText waits until the element's text contains want.
func (p *page) waitText(id, want string, timeout time.Duration) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%s to contain %q", id, want),
		fmt.Sprintf(`(%s?.textContent ?? '').includes(%q)`, jsTestID(id), want), timeout)
}

// waitReady waits for the welcome (the landing's online count goes live).
func (p *page) waitReady() {
	p.t.Helper()
	p.waitFor("the signaling socket to open", `window.__stranger?.link === 'open'`, 10*time.Second)
}

// acceptTerms ticks the 18+ box on the landing screen.
func (p *page) acceptTerms() {
	p.t.Helper()
	p.waitReady()
	if !eval[bool](p, jsTestID("accept-terms")+`.checked`) {
		p.click("accept-terms")
	}
}

// addInterests types each interest and presses Enter.
func (p *page) addInterests(tags ...string) {
	p.t.Helper()
	for _, tag := range tags {
		p.typeInto("interests-input", tag+"\n")
	}
}

// session is the server session id the page's client holds.
func (p *page) session() string {
	p.t.Helper()
	return eval[string](p, `window.__stranger?.session ?? ''`)
}

func (p *page) room() string {
	p.t.Helper()
	return eval[string](p, `window.__stranger?.room ?? ''`)
}

// rtcStats is what hooks.js reports from getStats of the live peer connection.
type rtcStats struct {
	PCs           int      `json:"pcs"`
	LivePCs       int      `json:"livePCs"`
	FramesDecoded int      `json:"framesDecoded"`
	ICE           string   `json:"ice"`
	Policy        string   `json:"policy"`
	LocalType     string   `json:"localType"`
	RemoteType    string   `json:"remoteType"`
	LocalTypes    []string `json:"localTypes"`
	RemoteTypes   []string `json:"remoteTypes"`
}

func (p *page) stats() rtcStats {
	p.t.Helper()
	return eval[rtcStats](p, `window.__e2e.stats()`)
}

// waitPaired waits until both pages are chatting, with each other: the same
// room on both sides. It returns the room.
func waitPaired(t *testing.T, a, b *page) string {
	t.Helper()
	ra, rb := a.waitChatting(), b.waitChatting()
	if ra == "" || ra != rb {
		t.Fatalf("%s in room %q, %s in room %q: want the same room", a.name, ra, b.name, rb)
	}
	return ra
}

// waitChatting waits until the page is in a chat and returns its room.
func (p *page) waitChatting() string {
	p.t.Helper()
	p.waitFor("a match", `window.__stranger?.state === 'chatting'`, 15*time.Second)
	p.waitText("status", textChatting, 5*time.Second)
	return p.room()
}

// waitVideoPlays asserts the remote video really plays: it has a size and
// framesDecoded (getStats, inbound-rtp video) keeps increasing. It returns
// the last framesDecoded seen.
func (p *page) waitVideoPlays() int {
	p.t.Helper()
	p.waitFor("the remote video to have a size",
		jsTestID("remote-video")+`?.videoWidth > 0`, 15*time.Second)
	return p.framesIncrease(10, 10*time.Second)
}

// framesIncrease waits until framesDecoded grew by at least n since now.
func (p *page) framesIncrease(n int, timeout time.Duration) int {
	p.t.Helper()
	first := p.stats().FramesDecoded
	deadline := time.Now().Add(timeout)
	for {
		s := p.stats()
		if s.FramesDecoded >= first+n {
			return s.FramesDecoded
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: framesDecoded went from %d to only %d in %v (stats %+v)\n%s",
				p.name, first, s.FramesDecoded, timeout, s, p.describe())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startBoth clicks the same start button on every page at about the same time.
func startAll(t *testing.T, id string, pages ...*page) {
	t.Helper()
	errs := make(chan error, len(pages))
	for _, p := range pages {
		go func() {
			err := p.do(10*time.Second, chromedp.Click(byTestID(id), chromedp.NodeVisible))
			if err != nil {
				err = fmt.Errorf("%s: click %s: %w", p.name, id, err)
			}
			errs <- err
		}()
	}
	var all []error
	for range pages {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		t.Fatal(err)
	}
}

// cutProxy forwards TCP to the node and can drop every connection at once,
// the way a dead Wi-Fi or a NAT timeout does: no WebSocket close frame, the
// TCP connection is reset on both sides.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			reset(c)
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.forget(c)
		reset(c)
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		reset(up)
		p.forget(c)
		reset(c)
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	p.forget(c)
	p.forget(up)
	_ = c.Close()
	_ = up.Close()
	<-done
}

func (p *cutProxy) forget(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cut resets every open connection; with down, new ones are reset too
// until restore.
func (p *cutProxy) cut(down bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	n := len(p.conns)
	for c := range p.conns {
		reset(c)
		delete(p.conns, c)
	}
	return n
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// reset closes with RST, not FIN: the peer gets no orderly close.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
