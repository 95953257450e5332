//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/pow"
	"github.com/strangerchat/stranger/test/wsclient"
)

// TestPowOnConnectsAndChats: with proof of work on at the default
// difficulty the app still connects, matches and chats, the person seeing
// nothing of it (the worker solves while the landing page shows).
func TestPowOnConnectsAndChats(t *testing.T) {
	n := startNode(t, nodeOptions{pow: config.DefaultPowDifficulty})
	// The node does ask: a client that does not solve gets a challenge.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	probe, err := wsclient.Connect(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/ws", wsclient.Options{DialOptions: wsclient.DialOptions{ManualPow: true}})
	if err != nil {
		t.Fatal(err)
	}
	if probe.Welcome()["pow"] == nil {
		t.Fatalf("welcome without pow: %s", probe.Welcome())
	}
	probe.Close()

	br := sharedBrowser(t)
	a, b := br.landedPair(t, n.url, n.url)
	startAll(t, "start-text", a, b)
	waitPaired(t, a, b)
	chatBothWays(t, a, b, "pow")
}

// powBenchRequested: like the guard benchmark, only when asked for.
func powBenchRequested() bool {
	if os.Getenv("STRANGER_BENCH") == "1" {
		return true
	}
	f := flag.Lookup("test.run")
	return f != nil && strings.Contains(f.Value.String(), "PowBenchmark")
}

// TestPowBenchmark measures what the proof of work costs a browser on this
// machine: 20 challenges at --pow-difficulty's default, each solved by the
// web client's own worker (the built pow.worker chunk, started afresh per
// challenge as the client does), timed from postMessage to the answer in
// the page; every answer is checked by the server's verifier.
//
//	go test -c -tags e2e -o bin/e2e.test ./test/e2e && unshare -n sh -c \
//	  'ip link set lo up; cd test/e2e && ../../bin/e2e.test -test.v -test.run PowBenchmark'
func TestPowBenchmark(t *testing.T) {
	if !powBenchRequested() {
		t.Skip("the proof-of-work benchmark runs with STRANGER_BENCH=1 or -test.run=PowBenchmark")
	}
	workers, _ := filepath.Glob("../../internal/web/dist/assets/pow.worker-*.js")
	if len(workers) != 1 {
		t.Fatalf("want one built pow.worker chunk (make web), found %v", workers)
	}
	workerURL := "/assets/" + filepath.Base(workers[0])
	v, err := pow.New(pow.Options{Key: []byte("pow-benchmark-key-0123"), MaxNumber: config.DefaultPowDifficulty, Replay: pow.NewMemoryReplay(0)})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, nodeOptions{})
	br := sharedBrowser(t)
	p := br.newPage(t, "bench", n.url)
	const runs = 20
	var ms, tries []float64
	for i := 0; i < runs; i++ {
		c, err := v.Challenge(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cj, _ := json.Marshal(c)
		type answer struct {
			Payload string  `json:"payload"`
			Ms      float64 `json:"ms"`
			Error   string  `json:"error"`
		}
		js := `new Promise((resolve) => {
			const t0 = performance.now();
			const w = new Worker(` + jsString(workerURL) + `, { type: 'module' });
			w.onmessage = (ev) => { w.terminate(); resolve({ payload: ev.data.payload ?? '', error: ev.data.error ?? '', ms: performance.now() - t0 }); };
			w.onerror = (ev) => { w.terminate(); resolve({ payload: '', error: String(ev.message), ms: 0 }); };
			w.postMessage(` + string(cj) + `);
		})`
		a, err := evalIn[answer](p.ctx, js, 30*time.Second)
		if err != nil || a.Error != "" {
			t.Fatalf("solve %d: %v %s", i, err, a.Error)
		}
		if err := v.Verify(context.Background(), a.Payload, time.Now()); err != nil {
			t.Fatalf("solve %d: the server refuses the browser's solution: %v", i, err)
		}
		var s pow.Solution
		b, _ := base64.StdEncoding.DecodeString(a.Payload)
		_ = json.Unmarshal(b, &s)
		ms = append(ms, a.Ms)
		tries = append(tries, float64(s.Number+1))
		t.Logf("solve %2d: %6.1f ms, %6d hashes", i, a.Ms, s.Number+1)
	}
	// The hash rate alone, without worker start-up: altcha-lib's loop (one
	// awaited WebCrypto digest of salt+number at a time) in the page.
	var rates []float64
	for i := 0; i < 3; i++ {
		rate, err := evalIn[float64](p.ctx, `(async () => {
			const enc = new TextEncoder(), n = 10000, t0 = performance.now();
			for (let i = 0; i < n; i++) {
				const h = await crypto.subtle.digest('SHA-256', enc.encode('0123456789abcdef01234567?expires=1700000000&' + i));
				[...new Uint8Array(h)].map((x) => x.toString(16).padStart(2, '0')).join('');
			}
			return n / (performance.now() - t0);
		})()`, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rates = append(rates, rate)
	}
	t.Logf("hash rate alone: %.0f hashes/ms (median of 3 runs of 10000: %v)", median(rates), rates)

	var sumT, sumMs float64
	for i := range ms {
		sumT += tries[i]
		sumMs += ms[i]
	}
	hashesPerMs := sumT / sumMs
	t.Logf("difficulty %d: median %.1f ms, p90 %.1f ms, max %.1f ms over %d solves; %.0f hashes/ms; at the mean %d hashes: %.1f ms here, %.0f–%.0f ms on a phone 3–5× slower",
		config.DefaultPowDifficulty, median(ms), percentile(ms, 90), percentile(ms, 100), runs, hashesPerMs,
		config.DefaultPowDifficulty/2, float64(config.DefaultPowDifficulty/2)/hashesPerMs,
		3*float64(config.DefaultPowDifficulty/2)/hashesPerMs, 5*float64(config.DefaultPowDifficulty/2)/hashesPerMs)
}
