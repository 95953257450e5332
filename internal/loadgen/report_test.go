package loadgen

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleResult(matched, relayed uint64, conns int64) *Result {
	h := NewHistogram()
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	return &Result{
		Clients: int(conns), Procs: 1, Elapsed: 10, RampS: 2, SteadyS: 8, StoppedBy: "duration",
		PeakConns: conns, EndConns: conns,
		Total:       Counts{Matched: matched + 100, RelayedSignal: relayed + 50, Errors: 1},
		Steady:      Counts{Matched: matched, RelayedSignal: relayed},
		TimeToMatch: h.Snapshot(), SignalLatency: h.Snapshot(),
		ErrorCodes: map[string]uint64{"rate_limited": 1}, ErrorKinds: map[string]uint64{},
	}
}

func TestDerivedFigures(t *testing.T) {
	r := sampleResult(1600, 40000, 1000)
	if got := r.MatchesPerSec(); got != 100 { // 1600 frames = 800 matches in 8 s
		t.Errorf("matches/s %v, want 100", got)
	}
	if r.CPUPerRelayedMsg() != 0 || r.RSSPerConnKiB() != 0 {
		t.Error("server figures without a server")
	}
	r.Server = &ServerStats{RSSBaselineKiB: 10000, RSSEndKiB: 15000, CPUSeconds: 1, SteadyCPU: 0.2}
	if got := r.CPUPerRelayedMsg(); got != 5*time.Microsecond { // 0.2 s / 40000
		t.Errorf("CPU per message %v, want 5µs", got)
	}
	if got := r.RSSPerConnKiB(); got != 5 {
		t.Errorf("RSS per connection %v KiB, want 5", got)
	}
	r.SteadyS, r.Steady = 0, Counts{}
	if got := r.MatchesPerSec(); got != 85 { // whole run: 1700 frames / 2 / 10 s
		t.Errorf("matches/s without steady window %v, want 85", got)
	}
	if got := r.CPUPerRelayedMsg(); got != 25*time.Microsecond { // 1 s / 40050... rounded
		if got < 24*time.Microsecond || got > 26*time.Microsecond {
			t.Errorf("CPU per message over the whole run %v", got)
		}
	}
}

func TestMergeResults(t *testing.T) {
	a, b := sampleResult(10, 100, 5), sampleResult(20, 200, 7)
	b.ErrorKinds = map[string]uint64{"dial_refused": 2}
	b.StoppedBy = "interrupted"
	var bb Result
	roundTrip(t, b, &bb) // children send results as JSON
	a.Merge(&bb)
	if a.Clients != 12 || a.Procs != 2 || a.EndConns != 12 || a.Steady.Matched != 30 || a.Total.RelayedSignal != 400 {
		t.Fatalf("merged %+v", a)
	}
	if a.ErrorCodes["rate_limited"] != 2 || a.ErrorKinds["dial_refused"] != 2 || a.StoppedBy != "duration" {
		t.Fatalf("merged maps %v %v %s", a.ErrorCodes, a.ErrorKinds, a.StoppedBy)
	}
	if a.TimeToMatch.Count != 200 {
		t.Fatalf("merged histogram count %d", a.TimeToMatch.Count)
	}
}

func TestReportText(t *testing.T) {
	r := sampleResult(1600, 40000, 1000)
	r.Server = &ServerStats{PIDs: []int{7, 9}, RSSBaselineKiB: 10240, RSSPeakKiB: 16000, RSSEndKiB: 15240, CPUSeconds: 1, SteadyCPU: 0.2}
	var buf bytes.Buffer
	writeReport(&buf, r)
	out := buf.String()
	for _, want := range []string{
		"1000 clients", "peak 1000, end 1000", "server pid 7,9 ", "100.0/s", "p50 50.", "p99 99.",
		"rate_limited 1", "5.00 KiB per connection", "5.00µs per relayed message",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// The JSON form carries the histograms for machine use.
	b, err := json.Marshal(r)
	if err != nil || !bytes.Contains(b, []byte(`"time_to_match":{"count":100`)) {
		t.Fatalf("JSON %s %v", b[:min(200, len(b))], err)
	}
}

func TestProgressAdd(t *testing.T) {
	p := Progress{Elapsed: 1, Conns: 2, Matched: 3, Errors: 1}.Add(Progress{Elapsed: 2, Conns: 5, Matched: 1})
	if p.Elapsed != 2 || p.Conns != 7 || p.Matched != 4 || p.Errors != 1 {
		t.Fatalf("%+v", p)
	}
}
