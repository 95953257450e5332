//go:build e2e

package e2e

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// guardBenchRequested: the guard benchmark takes about two minutes, so it
// runs only when asked for: STRANGER_BENCH=1, or -test.run naming it.
func guardBenchRequested() bool {
	if os.Getenv("STRANGER_BENCH") == "1" {
		return true
	}
	f := flag.Lookup("test.run")
	return f != nil && strings.Contains(f.Value.String(), "GuardBenchmark")
}

func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// longTask is a main-thread task over 50 ms (Long Tasks API), in ms since the epoch.
type longTask struct {
	At float64 `json:"at"`
	Ms float64 `json:"ms"`
}

// longTasksJS reads every long task of the page so far (the buffered entries).
const longTasksJS = `new Promise((resolve) => {
	const done = (list) => resolve(list.map((e) => ({ at: performance.timeOrigin + e.startTime, ms: e.duration })));
	try {
		new PerformanceObserver((l, o) => { o.disconnect(); done(l.getEntries()); }).observe({ type: 'longtask', buffered: true });
		setTimeout(() => done([]), 1000);
	} catch { done([]); }
})`

// TestGuardBenchmark measures the nudity guard in headless Chromium on this
// machine: model load (cold, then from the HTTP cache), classification time
// per frame (round trip from the main thread), main-thread long tasks
// during a call with the guard on and off, and the time from the first
// remote frame to the video shown, for a viewer who waited in the queue
// (model loaded before the match) and one matched at once.
//
//	go test -c -race -tags e2e -o bin/e2e.test ./test/e2e && unshare -n sh -c \
//	  'ip link set lo up; cd test/e2e && ../../bin/e2e.test -test.v -test.run GuardBenchmark'
func TestGuardBenchmark(t *testing.T) {
	if !guardBenchRequested() {
		t.Skip("the guard benchmark runs with STRANGER_BENCH=1 or -test.run=GuardBenchmark")
	}
	runs := 4
	if v, err := strconv.Atoi(os.Getenv("STRANGER_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	const window = 10 * time.Second // of call, after the first remote frame, for long tasks and classifications
	n := startNode(t, nodeOptions{})
	br := startBrowser(t, browserOptions{})

	var loadCold, loadCached, times, waitedShown, atOnceShown []float64
	longOn, longOff := map[string][]float64{}, map[string][]float64{}
	offs := 0 // page-calls in which the guard turned itself off (too slow)
	for _, guardOn := range []bool{true, false} {
		for i := range runs {
			a, b := br.landedPair(t, n.url, n.url)
			if !guardOn {
				for _, p := range []*page{a, b} {
					p.click("guard-toggle")
					p.goTo(n.url)
					p.acceptTerms()
				}
			}
			// A waits in the queue until its model is loaded (the prefetch);
			// then B starts and is matched at once.
			a.click("start-video")
			a.waitFor("A to wait in the queue", `window.__stranger?.state === 'waiting'`, 10*time.Second)
			if guardOn {
				a.waitFor("A's model to load", `window.__strangerGuard?.loadMs > 0`, 60*time.Second)
			}
			b.click("start-video")
			waitPaired(t, a, b)
			for _, p := range []*page{a, b} {
				if _, err := evalIn[bool](p.ctx, `window.__e2e.firstFrameShown`, 60*time.Second); err != nil {
					t.Fatalf("%s: waiting for the first remote frame: %v\n%s", p.name, err, p.describe())
				}
				if guardOn {
					p.waitFor("the guard to show the video", `window.__strangerGuard?.shownAt > 0`, 30*time.Second)
				}
			}
			time.Sleep(window)
			for _, p := range []*page{a, b} {
				first := eval[float64](p, `window.__e2e.frames.find((r) => r.firstFrameAt > 0).firstFrameAt`)
				var lt []float64
				for _, x := range eval[[]longTask](p, longTasksJS) {
					if x.At >= first && x.At < first+float64(window/time.Millisecond) {
						lt = append(lt, x.Ms)
					}
				}
				key := p.name
				if guardOn {
					longOn[key] = append(longOn[key], lt...)
					g := eval[guardFacts](p, guardFactsJS)
					shown := firstFrameToShown(p)
					if p == a {
						waitedShown = append(waitedShown, shown)
					} else {
						atOnceShown = append(atOnceShown, shown)
					}
					if i == 0 {
						loadCold = append(loadCold, g.LoadMs)
					} else {
						loadCached = append(loadCached, g.LoadMs)
					}
					times = append(times, g.Times...)
					if g.State != "shown" {
						offs++
					}
					t.Logf("on  run %d %s: guard %s, load %.0f ms (%s), first frame → shown %.0f ms, %d classifications (median %.0f ms), long tasks %v",
						i, p.name, g.State, g.LoadMs, g.Backend, shown, g.Classified, median(g.Times), lt)
				} else {
					longOff[key] = append(longOff[key], lt...)
					t.Logf("off run %d %s: long tasks %v", i, p.name, lt)
				}
			}
			a.close()
			b.close()
			waitOnline(t, n, 0)
		}
	}
	// Last, so that run 0's load above is the cold one.
	modelAlone(t, br, n)
	sum := func(m map[string][]float64) (count int, worst float64) {
		for _, xs := range m {
			count += len(xs)
			for _, x := range xs {
				worst = max(worst, x)
			}
		}
		return
	}
	cOn, wOn := sum(longOn)
	cOff, wOff := sum(longOff)
	t.Logf("model load: cold %v ms, from the HTTP cache median %.0f ms", loadCold, median(loadCached))
	t.Logf("classification (main thread round trip): median %.1f ms, p95 %.1f ms over %d frames", median(times), percentile(times, 95), len(times))
	t.Logf("first remote frame → shown: after waiting in the queue median %.0f ms %v; matched at once median %.0f ms %v",
		median(waitedShown), waitedShown, median(atOnceShown), atOnceShown)
	t.Logf("main-thread long tasks in %v of call after the first frame, %d calls × 2 pages: guard on %d (longest %.0f ms), guard off %d (longest %.0f ms)",
		window, runs, cOn, wOn, cOff, wOff)
	t.Logf("guard turned itself off (too slow) in %d of %d page-calls", offs, 2*runs)
	t.Logf("machine: %s, %d CPUs, load %s", cpuModel(), runtime.NumCPU(), loadAvg())
}

// modelAlone loads the guard's worker in one page with no call and times 40
// classifications of a 224×224 picture, one at a time: the model's own cost
// on this machine, without two pages encoding and decoding video beside it.
func modelAlone(t *testing.T, br *browser, n *node) {
	t.Helper()
	// The hashed names of the build this binary embeds (make test-e2e runs it in test/e2e).
	find := func(pattern string) string {
		m, err := filepath.Glob(filepath.Join("..", "..", "internal", "web", "dist", "assets", pattern))
		if err != nil || len(m) != 1 {
			t.Fatalf("assets/%s: %v %v (run from test/e2e after make web)", pattern, m, err)
		}
		return "/assets/" + filepath.Base(m[0])
	}
	p := br.newPage(t, "model", n.url)
	defer p.close()
	js := `(async () => {
		const abs = (u) => new URL(u, location.href).href;
		const w = new Worker(` + jsString(find("worker-*.js")) + `, { type: 'module' });
		const next = () => new Promise((resolve) => { w.onmessage = (e) => resolve(e.data); });
		const t0 = performance.now();
		w.postMessage({ type: 'load', modelUrl: abs(` + jsString(find("nsfw-mobilenet-v2-*.model.json")) + `), wasmPaths: {
			'tfjs-backend-wasm.wasm': abs(` + jsString(find("tfjs-backend-wasm-[A-Z0-9]*.wasm")) + `),
			'tfjs-backend-wasm-simd.wasm': abs(` + jsString(find("tfjs-backend-wasm-simd-*.wasm")) + `),
			'tfjs-backend-wasm-threaded-simd.wasm': abs(` + jsString(find("tfjs-backend-wasm-threaded-simd-*.wasm")) + `) } });
		const ready = await next();
		if (ready.type !== 'ready') return { error: JSON.stringify(ready) };
		const c = new OffscreenCanvas(224, 224);
		const g = c.getContext('2d');
		const times = [], infer = [];
		for (let i = 0; i < 40; i++) {
			g.fillStyle = 'hsl(' + (i * 37) % 360 + ', 60%, 50%)';
			g.fillRect(0, 0, 224, 224);
			const frame = await createImageBitmap(c);
			const s = performance.now();
			w.postMessage({ type: 'classify', id: i, frame }, [frame]);
			const v = await next();
			times.push(performance.now() - s);
			infer.push(v.inferMs);
		}
		w.terminate();
		return { backend: ready.backend, loadMs: ready.loadMs, wallMs: performance.now() - t0, times, infer };
	})()`
	type result struct {
		Error   string    `json:"error"`
		Backend string    `json:"backend"`
		LoadMs  float64   `json:"loadMs"`
		Times   []float64 `json:"times"`
		Infer   []float64 `json:"infer"`
	}
	r, err := evalIn[result](p.ctx, js, 120*time.Second)
	if err != nil || r.Error != "" {
		t.Fatalf("model alone: %v %s", err, r.Error)
	}
	t.Logf("model alone (one page, no call): backend %s, load %.0f ms (from the HTTP cache); classification round trip median %.1f ms, p95 %.1f ms; in the worker median %.1f ms (40 frames)",
		r.Backend, r.LoadMs, median(r.Times), percentile(r.Times, 95), median(r.Infer))
}
