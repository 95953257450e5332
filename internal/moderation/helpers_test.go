package moderation

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/modstore"
	"github.com/strangerchat/stranger/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgURL is a fresh database on the test binary's PostgreSQL.
func pgURL(t *testing.T) string {
	t.Helper()
	return pgtest.Shared(t).NewDatabase(t)
}

// opener opens a new store handle on one test database each time: several
// handles are several nodes, or one node restarted.
type opener func(t *testing.T) *modstore.Store

// eachBackend runs test on a fresh database of each backend.
func eachBackend(t *testing.T, test func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		test(t, func(t *testing.T) *modstore.Store {
			s, err := modstore.OpenSQLite(ctx, dir)
			return mustStore(t, s, err)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgURL(t)
		test(t, func(t *testing.T) *modstore.Store {
			s, err := modstore.OpenPostgres(ctx, url)
			return mustStore(t, s, err)
		})
	})
}

func mustStore(t *testing.T, s *modstore.Store, err error) *modstore.Store {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	ctx = context.Background()
	t0  = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
)

// hash makes a valid identity hash from a small number.
func hash(n int) identity.Hash { return identity.Hash(fmt.Sprintf("%016x", n)) }

func report(reporter, reported int) modstore.Report {
	return modstore.Report{
		Reason:          "harassment",
		Mode:            "video",
		CommonInterests: []string{"music"},
		ChatDuration:    42500 * time.Millisecond,
		Reporter:        hash(reporter),
		Reported:        hash(reported),
		Messages: []modstore.Message{
			{From: modstore.SideReported, Text: "go away", At: t0.Add(-time.Second)},
		},
	}
}

// node is a Service under test with what a test looks at.
type node struct {
	*Service
	reg *prometheus.Registry

	mu      sync.Mutex
	started []identity.Hash // OnBan calls
}

func (n *node) onBan(h identity.Hash) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.started = append(n.started, h)
}

func (n *node) startedBans() []identity.Hash {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]identity.Hash{}, n.started...)
}

// newNode makes a Service on store with cfg (Store and Metrics filled in).
func newNode(t *testing.T, store Store, cfg Config) *node {
	t.Helper()
	cfg.Store = store
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{Service: s, reg: reg}
	s.OnBan(n.onBan)
	return n
}

// run runs n's background work until the test ends and waits for its bus
// subscription.
func (n *node) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-n.Subscribed():
	case <-time.After(10 * time.Second):
		t.Fatal("no bus subscription after 10 s")
	}
}

// within polls cond every 5 ms until it holds or d has passed, and returns
// how long it took; it fails the test on timeout.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// counter reads a counter's value.
func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func fakeClock() *clock.Fake { return clock.NewFake(t0) }
