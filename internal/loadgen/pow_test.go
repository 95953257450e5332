package loadgen

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Against a node that asks for proof of work every client solves it before
// its first join, nothing is refused, and the summary reports the cost.
func TestAgainstServerWithPow(t *testing.T) {
	url := startNodePow(t, 20000)
	cfg := Default()
	cfg.URLs = []string{url}
	cfg.Clients = 40
	cfg.Duration = 60 * time.Second // a cap: the test stops when it has seen enough
	cfg.Ramp = 100 * time.Millisecond
	cfg.ChatDuration = 50 * time.Millisecond
	cfg.Seed = 7
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	r := newRunner(cfg)
	r.stuckAfter = time.Minute
	res := r.run(ctx, time.Now(), hooks{progress: func(p Progress) {
		if p.Conns >= 40 && p.Matched >= 80 {
			cancel(errEnough)
		}
	}})
	var buf bytes.Buffer
	writeReport(&buf, res)
	t.Logf("report:\n%s", buf.String())
	if res.Total.Errors != 0 {
		t.Errorf("errors: codes %v kinds %v", res.ErrorCodes, res.ErrorKinds)
	}
	if res.Total.Matches() < 40 {
		t.Errorf("%.0f matches", res.Total.Matches())
	}
	if res.PowSolve.Count < 40 || res.PowSolve.Quantile(0.5) <= 0 || res.PowCPU <= 0 {
		t.Errorf("proof of work not recorded: %d solves, cpu %vs", res.PowSolve.Count, res.PowCPU)
	}
	if !strings.Contains(buf.String(), "proof of work  p50 ") {
		t.Errorf("summary without the proof of work line")
	}
}
