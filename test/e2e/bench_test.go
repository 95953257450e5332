//go:build e2e

package e2e

import (
	_ "embed"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// firstframe.js is evaluated before floor.js and bare.js, which use it.
var (
	//go:embed firstframe.js
	firstFrameJS string
	//go:embed floor.js
	floorJS string
	//go:embed bare.js
	bareJS string
)

// benchRequested: the connect-time benchmark takes about a minute, so it runs
// only when asked for: STRANGER_BENCH=1, or -test.run naming it.
func benchRequested() bool {
	if os.Getenv("STRANGER_BENCH") == "1" {
		return true
	}
	f := flag.Lookup("test.run")
	return f != nil && strings.Contains(f.Value.String(), "ConnectTime")
}

// appTiming is one call of the web client, from hooks.js, in ms since the
// epoch (performance.timeOrigin + performance.now()).
type appTiming struct {
	ClickAt        float64 `json:"clickAt"`
	MatchedAt      float64 `json:"matchedAt"`
	ICEConnectedAt float64 `json:"iceConnectedAt"`
	GumAt          float64 `json:"gumAt"`
	GumDoneAt      float64 `json:"gumDoneAt"`
	FirstFrameAt   float64 `json:"firstFrameAt"`
	// ShownAt: when the nudity guard showed the video (0 while blurred).
	ShownAt float64 `json:"shownAt"`
}

const appTimingJS = `(() => {
	const e = window.__e2e;
	const f = e.frames.find((r) => r.firstFrameAt > 0);
	return {
		clickAt: e.clickAt, matchedAt: e.matchedAt, iceConnectedAt: e.iceConnectedAt,
		gumAt: e.gum[0]?.at ?? 0, gumDoneAt: e.gum[0]?.doneAt ?? 0,
		firstFrameAt: f ? f.firstFrameAt : 0,
		shownAt: window.__strangerGuard?.shownAt ?? 0,
	};
})()`

// bareTiming is one side of a call between two bare.js pages, in ms since
// that page's start.
type bareTiming struct {
	Matched       float64 `json:"matched"`
	Gum           float64 `json:"gum"`
	OfferOrAnswer float64 `json:"offerOrAnswer"`
	Connected     float64 `json:"connected"`
	Frame         float64 `json:"frame"`
}

// bareCall runs one call between two fresh pages of bare.js through node n,
// both started at once, and returns the later side's first remote frame.
func bareCall(t *testing.T, br *browser, n *node) (total float64, a, b bareTiming) {
	t.Helper()
	// /healthz: a page on the node's origin (the socket's Origin must match)
	// with none of the app's code.
	pa, pb := br.newPage(t, "bare A", n.url+"/healthz"), br.newPage(t, "bare B", n.url+"/healthz")
	defer pa.close()
	defer pb.close()
	eval[bool](pa, firstFrameJS+bareJS)
	eval[bool](pb, firstFrameJS+bareJS)
	res := make([]bareTiming, 2)
	errs := make(chan error, 2)
	for i, p := range []*page{pa, pb} {
		go func() {
			var err error
			res[i], err = evalIn[bareTiming](p.ctx, `window.__bare.start()`, 60*time.Second)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("bare call: %v", err)
		}
	}
	return max(res[0].Frame, res[1].Frame), res[0], res[1]
}

type floorTiming struct {
	Total            float64 `json:"total"`
	Gum              float64 `json:"gum"`
	OfferToConnected float64 `json:"offerToConnected"`
	OfferToFrame     float64 `json:"offerToFrame"`
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// TestConnectTimeBenchmark measures, in one browser, the time from both
// strangers clicking Start to both seeing the other's first video frame
// (median of 10, after one warm-up call), and the floor: the same camera,
// offer/answer and first frame with two RTCPeerConnections in one page.
//
//	go test -c -race -tags e2e -o bin/e2e.test ./test/e2e && unshare -n sh -c \
//	  'ip link set lo up; cd test/e2e && STRANGER_BENCH=1 ../../bin/e2e.test -test.v -test.run ConnectTime'
func TestConnectTimeBenchmark(t *testing.T) {
	if !benchRequested() {
		t.Skip("the connect-time benchmark runs with STRANGER_BENCH=1 or -test.run=ConnectTime")
	}
	runs := 10
	if v, err := strconv.Atoi(os.Getenv("STRANGER_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	// STRANGER_BENCH_GUARD=off turns the nudity guard off in both pages (the
	// landing page's switch), to see what it costs the call's set-up.
	guardOn := os.Getenv("STRANGER_BENCH_GUARD") != "off"
	n := startNode(t, nodeOptions{})
	blank := serveBlank(t)
	br := startBrowser(t, browserOptions{})

	var app, appSideA, appSideB, floor, bare, shown, frameToShown []float64
	var gum, matched, ice, floorGum, floorOfferToFrame, floorOfferToConnected []float64
	for i := -1; i < runs; i++ { // i == -1: warm-up, not counted
		// Fresh windows per call, as for two people who just opened the site.
		a, b := br.landedPair(t, n.url, n.url)
		if !guardOn {
			for _, p := range []*page{a, b} {
				p.click("guard-toggle") // read when the chat screen opens
			}
		}
		startAll(t, "start-video", a, b)
		for _, p := range []*page{a, b} {
			if _, err := evalIn[bool](p.ctx, `window.__e2e.firstFrameShown`, 60*time.Second); err != nil {
				t.Fatalf("%s: waiting for the first remote frame: %v\n%s", p.name, err, p.describe())
			}
		}
		// With the guard on (the default), wait until it showed the video too
		// (judged safe, or shown with the notice on a device found too slow).
		for _, p := range []*page{a, b} {
			if !guardOn {
				break
			}
			p.waitFor("the guard to show the video", `window.__strangerGuard?.shownAt > 0`, 30*time.Second)
			if s := eval[string](p, guardStateJS); s != "shown" {
				t.Logf("%s: guard %s (%s)", p.name, s, p.text("guard-notice"))
			}
		}
		ta, tb := eval[appTiming](a, appTimingJS), eval[appTiming](b, appTimingJS)
		if os.Getenv("STRANGER_BENCH_DEBUG") != "" {
			for _, p := range []*page{a, b} {
				t.Logf("%s: initiator %v; wire %s; candidates %s; gum done %.0f; ICE %.0f; media %s; frame %.0f", p.name,
					eval[bool](p, `window.__stranger.initiator`),
					eval[string](p, `JSON.stringify(window.__e2e.wire.map((x) => Math.round(x.at - window.__e2e.clickAt) + ' ' + x.dir + ' ' + x.what))`),
					eval[string](p, `JSON.stringify(window.__e2e.cands.map((x) => Math.round(x.at - window.__e2e.clickAt)))`),
					eval[float64](p, `window.__e2e.gum[0].doneAt - window.__e2e.clickAt`),
					eval[float64](p, `window.__e2e.iceConnectedAt - window.__e2e.clickAt`),
					eval[string](p, `JSON.stringify(window.__e2e.media.map((x) => Math.round(x.at - window.__e2e.clickAt) + ' ' + x.type))`),
					eval[float64](p, `window.__e2e.frames.find((r) => r.firstFrameAt > 0).firstFrameAt - window.__e2e.clickAt`))
				t.Logf("%s: calls (start+duration) %s; long tasks %s", p.name,
					eval[string](p, `JSON.stringify(window.__e2e.calls.map((x) => x.what + ' ' + Math.round(x.at - window.__e2e.clickAt) + '+' + Math.round(x.doneAt - x.at)))`),
					eval[string](p, `JSON.stringify(window.__e2e.longTasks.map((x) => Math.round(x.at - window.__e2e.clickAt) + '+' + Math.round(x.ms)))`))
			}
		}
		start := max(ta.ClickAt, tb.ClickAt)
		total := max(ta.FirstFrameAt, tb.FirstFrameAt) - start
		// Let both sides see frames a moment before either leaves.
		a.framesIncrease(3, 10*time.Second)
		b.framesIncrease(3, 10*time.Second)
		a.close()
		b.close()
		waitOnline(t, n, 0)

		// The floor starts in a fresh window too: a new renderer and a camera
		// opened for the first time in the page, as for the app's pages.
		fl := br.newPage(t, "floor", blank)
		ft := eval[floorTiming](fl, firstFrameJS+floorJS)
		fl.close()

		bt, ba, bb := bareCall(t, br, n)
		waitOnline(t, n, 0)

		t.Logf("run %2d: app %6.1f ms (A %6.1f, B %6.1f; clicks %.1f ms apart; gum %.0f/%.0f, matched %.0f/%.0f, ICE %.0f/%.0f after the clicks) | floor %6.1f ms (gum %.0f, offer→connected %.0f, offer→frame %.0f)",
			i, total, ta.FirstFrameAt-ta.ClickAt, tb.FirstFrameAt-tb.ClickAt, math.Abs(ta.ClickAt-tb.ClickAt),
			ta.GumDoneAt-ta.ClickAt, tb.GumDoneAt-tb.ClickAt, ta.MatchedAt-start, tb.MatchedAt-start,
			ta.ICEConnectedAt-start, tb.ICEConnectedAt-start,
			ft.Total, ft.Gum, ft.OfferToConnected, ft.OfferToFrame)
		t.Logf("run %2d: bare %6.1f ms (matched %.0f/%.0f, camera %.0f/%.0f, description sent %.0f/%.0f, ICE %.0f/%.0f, frame %.0f/%.0f after each start)", i, bt,
			ba.Matched, bb.Matched, ba.Gum, bb.Gum, ba.OfferOrAnswer, bb.OfferOrAnswer, ba.Connected, bb.Connected, ba.Frame, bb.Frame)
		if i < 0 {
			continue
		}
		app = append(app, total)
		if guardOn {
			shown = append(shown, max(ta.ShownAt, tb.ShownAt)-start)
			frameToShown = append(frameToShown, ta.ShownAt-ta.FirstFrameAt, tb.ShownAt-tb.FirstFrameAt)
		}
		appSideA = append(appSideA, ta.FirstFrameAt-ta.ClickAt)
		appSideB = append(appSideB, tb.FirstFrameAt-tb.ClickAt)
		gum = append(gum, max(ta.GumDoneAt-ta.ClickAt, tb.GumDoneAt-tb.ClickAt))
		matched = append(matched, max(ta.MatchedAt, tb.MatchedAt)-start)
		ice = append(ice, max(ta.ICEConnectedAt, tb.ICEConnectedAt)-start)
		floor = append(floor, ft.Total)
		bare = append(bare, bt)
		floorGum = append(floorGum, ft.Gum)
		floorOfferToFrame = append(floorOfferToFrame, ft.OfferToFrame)
		floorOfferToConnected = append(floorOfferToConnected, ft.OfferToConnected)
	}
	ma, mf := median(app), median(floor)
	t.Logf("connect time, median of %d: web client %.0f ms, floor %.0f ms, ratio %.2f", runs, ma, mf, ma/mf)
	if guardOn {
		t.Logf("nudity guard on: both videos shown %.0f ms after both clicks (median); first remote frame → shown median %.0f ms, p95 %.0f ms per side",
			median(shown), median(frameToShown), percentile(frameToShown, 95))
	} else {
		t.Log("nudity guard off (STRANGER_BENCH_GUARD=off)")
	}
	t.Logf("bare client through the same server (two pages, no UI): %.0f ms, %.2f× the floor; the web client is %.2f× the bare client",
		median(bare), median(bare)/mf, ma/median(bare))
	t.Logf("medians: app camera %.0f, matched %.0f, ICE connected %.0f ms after both clicks; per side A %.0f B %.0f | floor camera %.0f, offer→connected %.0f, offer→frame %.0f",
		median(gum), median(matched), median(ice), median(appSideA), median(appSideB),
		median(floorGum), median(floorOfferToConnected), median(floorOfferToFrame))
	t.Logf("machine: %s, %d CPUs (GOMAXPROCS %d), load %s", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), loadAvg())
	if ratio := ma / mf; ratio > 1.2 {
		t.Logf("ratio %.2f is above the 1.2 target", ratio)
	}
}

// serveBlank serves an empty page on 127.0.0.1 (a secure context, so
// navigator.mediaDevices exists) and returns its URL.
func serveBlank(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>blank</title><body style=\"margin:0;background:#111\"></body>")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
