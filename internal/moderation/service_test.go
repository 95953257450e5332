package moderation

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/logbuf"
	"github.com/strangerchat/stranger/internal/modstore"
	"github.com/strangerchat/stranger/internal/redistest"
)

func redisBus(t *testing.T, url string) *RedisBus {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return NewRedisBus(rdb, "test:", nil)
}

// twoNodes is two Services of one deployment: one PostgreSQL database,
// one Redis, a store handle and a bus client each.
func twoNodes(t *testing.T, refresh time.Duration) (a, b *node, rs *redistest.Server, url string) {
	return twoNodesWith(t, Config{RefreshEvery: refresh})
}

func twoNodesWith(t *testing.T, cfg Config) (a, b *node, rs *redistest.Server, url string) {
	t.Helper()
	url = pgURL(t)
	rs = redistest.StartServer(t)
	mk := func() *node {
		st, err := modstore.OpenPostgres(ctx, url)
		c := cfg
		c.Bus = redisBus(t, rs.URL())
		n := newNode(t, mustStore(t, st, err), c)
		n.run(t)
		return n
	}
	return mk(), mk(), rs, url
}

func moderatorBan(h identity.Hash, d time.Duration) modstore.Ban {
	now := time.Now()
	b := modstore.Ban{Identity: h, Reason: "test", Source: modstore.SourceModerator, At: now}
	if d > 0 {
		b.Until = now.Add(d)
	}
	return b
}

// TestBanOnEveryNode: a ban made on one node is in force on the other
// within one second, through the bus alone (the reload is an hour away),
// and starts there (OnBan) exactly once; an unban likewise ends it. It also
// measures the latency over 20 bans.
func TestBanOnEveryNode(t *testing.T) {
	a, b, _, _ := twoNodes(t, time.Hour)
	var lat []time.Duration
	for i := range 20 {
		h := hash(1000 + i)
		start := time.Now()
		if _, err := a.Ban(ctx, moderatorBan(h, 24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !a.Banned(h) {
			t.Fatal("not banned on the node that banned")
		}
		within(t, time.Second, "ban on the other node", func() bool { return b.Banned(h) })
		lat = append(lat, time.Since(start))
		within(t, time.Second, "OnBan on the other node", func() bool { return slices.Contains(b.startedBans(), h) })
	}
	slices.Sort(lat)
	t.Logf("cross-node ban latency over %d: median %v, worst %v", len(lat), lat[len(lat)/2], lat[len(lat)-1])
	for _, n := range []*node{a, b} {
		if got := n.startedBans(); len(got) != 20 {
			t.Fatalf("OnBan called %d times for 20 bans: %v", len(got), got)
		}
	}

	h := hash(1000)
	if err := b.Unban(ctx, h); err != nil {
		t.Fatal(err)
	}
	if b.Banned(h) {
		t.Fatal("still banned on the node that unbanned")
	}
	within(t, time.Second, "unban on the other node", func() bool { return !a.Banned(h) })

	// A moderator's permanent ban over an automatic one: already banned,
	// so no second OnBan.
	if _, err := a.Ban(ctx, moderatorBan(hash(1001), 0)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := len(b.startedBans()); got != 20 {
		t.Fatalf("a longer ban of a banned identity started it again: %d OnBan calls", got)
	}
	if err := b.Unban(ctx, hash(999)); !errors.Is(err, modstore.ErrNotFound) {
		t.Fatalf("unban of a never banned identity: %v, want ErrNotFound", err)
	}
}

// TestReloadHeals: what the bus did not carry — a ban or unban written to
// the store directly, a ban made while Redis is down — reaches the other
// node at its next reload, and the bus works again after Redis returns.
func TestReloadHeals(t *testing.T) {
	a, b, rs, url := twoNodes(t, 200*time.Millisecond)
	direct, err := modstore.OpenPostgres(ctx, url)
	direct = mustStore(t, direct, err)
	cst, err := modstore.OpenPostgres(ctx, url)
	c := newNode(t, mustStore(t, cst, err), Config{Bus: redisBus(t, rs.URL()), RefreshEvery: time.Hour})
	c.run(t)

	h := hash(1)
	if _, err := direct.Ban(ctx, moderatorBan(h, time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{a, b} {
		within(t, time.Second, "a ban written to the store", func() bool { return n.Banned(h) })
		within(t, time.Second, "its OnBan", func() bool { return slices.Contains(n.startedBans(), h) })
	}
	if err := direct.Unban(ctx, h); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{a, b} {
		within(t, time.Second, "an unban written to the store", func() bool { return !n.Banned(h) })
	}

	rs.Stop()
	h2 := hash(2)
	if _, err := a.Ban(ctx, moderatorBan(h2, time.Hour)); err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "a ban made while Redis is down", func() bool { return b.Banned(h2) })

	if err := rs.Restart(0); err != nil {
		t.Fatal(err)
	}
	// Once the subscriptions are back (go-redis reconnects by itself), a
	// ban travels by the bus again: c reloads only hourly, so only the bus
	// can bring it there quickly.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		h := hash(100 + i)
		if _, err := a.Ban(ctx, moderatorBan(h, time.Hour)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for !c.Banned(h) && time.Since(start) < 300*time.Millisecond {
			time.Sleep(5 * time.Millisecond)
		}
		if c.Banned(h) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bus did not carry bans again within 15 s of Redis's return")
		}
	}
}

// flakyStore fails ActiveBans while down is set, and can hold it until
// released, to test the reload's edges.
type flakyStore struct {
	*modstore.Store
	mu   sync.Mutex
	down bool
	hold chan struct{} // non-nil: ActiveBans waits on it
	held chan struct{} // told when ActiveBans has read the store and waits
}

func (f *flakyStore) ActiveBans(ctx context.Context, now time.Time) ([]modstore.Ban, error) {
	f.mu.Lock()
	down, hold, held := f.down, f.hold, f.held
	f.mu.Unlock()
	if down {
		return nil, errors.New("connection refused")
	}
	bans, err := f.Store.ActiveBans(ctx, now)
	if hold != nil {
		held <- struct{}{}
		<-hold
	}
	return bans, err
}

// TestReloadStoreDown: an unreachable store at reload keeps the last set
// and logs once per outage.
func TestReloadStoreDown(t *testing.T) {
	st, err := modstore.OpenSQLite(ctx, t.TempDir())
	f := &flakyStore{Store: mustStore(t, st, err)}
	var logs logbuf.Buffer
	n := newNode(t, f, Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := n.Ban(ctx, moderatorBan(hash(1), time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	for range 3 {
		n.refresh(ctx)
	}
	if !n.Banned(hash(1)) {
		t.Fatal("a failed reload dropped a ban")
	}
	if c := strings.Count(logs.String(), "cannot reload bans"); c != 1 {
		t.Fatalf("logged %d times for one outage, want once:\n%s", c, logs.String())
	}
	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
	n.refresh(ctx)
	if !strings.Contains(logs.String(), "bans reloaded again") {
		t.Fatalf("the recovery is not logged:\n%s", logs.String())
	}
}

// TestReloadKeepsNewerChanges: a reload that read the store before an
// unban arrived must not bring the ban back, nor drop a ban that arrived
// meanwhile.
func TestReloadKeepsNewerChanges(t *testing.T) {
	st, err := modstore.OpenSQLite(ctx, t.TempDir())
	f := &flakyStore{Store: mustStore(t, st, err)}
	n := newNode(t, f, Config{})
	old, fresh := hash(1), hash(2)
	if _, err := n.Ban(ctx, moderatorBan(old, time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.hold, f.held = make(chan struct{}), make(chan struct{})
	f.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); n.refresh(ctx) }()
	<-f.held // the reload has read: old banned, fresh not
	if err := n.Unban(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Ban(ctx, moderatorBan(fresh, time.Hour)); err != nil {
		t.Fatal(err)
	}
	close(f.hold)
	<-done
	if n.Banned(old) {
		t.Fatal("a stale reload undid an unban")
	}
	if !n.Banned(fresh) {
		t.Fatal("a stale reload dropped a new ban")
	}
	f.mu.Lock()
	f.hold = nil
	f.mu.Unlock()
	n.refresh(ctx) // a reload after both: agrees with the store
	if n.Banned(old) || !n.Banned(fresh) {
		t.Fatal("the next reload got it wrong")
	}
}

// TestAutoBan: Threshold distinct reporter identities within Window ban
// the reported identity for Window; the same identity reporting again,
// the reported identity reporting itself, or reports outside the window
// do not.
func TestAutoBan(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clk := fakeClock()
		n := newNode(t, open(t), Config{Clock: clk, Threshold: 3, Window: 24 * time.Hour})
		abuser := hash(100)
		file := func(reporter, reported int) Filed {
			t.Helper()
			f, err := n.File(ctx, report(reporter, reported))
			if err != nil {
				t.Fatal(err)
			}
			if f.ID == "" || f.EvidenceToken == "" {
				t.Fatalf("Filed = %+v, want an id and a token", f)
			}
			return f
		}
		// One identity three times, and the abuser reporting itself (two
		// people behind one address) three times: one distinct reporter.
		for range 3 {
			file(1, 100)
			file(100, 100)
		}
		if n.Banned(abuser) {
			t.Fatal("banned by one identity reporting three times")
		}
		// A second reporter, then the window passes before the third.
		file(2, 100)
		clk.Advance(25 * time.Hour)
		file(3, 100)
		if n.Banned(abuser) {
			t.Fatal("banned by reports spread over more than the window")
		}
		file(4, 100)
		if n.Banned(abuser) {
			t.Fatal("banned by two reporters within the window")
		}
		if len(n.startedBans()) != 0 {
			t.Fatalf("OnBan called: %v", n.startedBans())
		}
		third := file(5, 100)
		if !n.Banned(abuser) {
			t.Fatal("not banned after three distinct reporters within the window")
		}
		if got := n.startedBans(); !reflect.DeepEqual(got, []identity.Hash{abuser}) {
			t.Fatalf("OnBan calls %v, want the abuser once", got)
		}
		b, err := n.store.(*modstore.Store).BanOf(ctx, abuser, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if b.Source != modstore.SourceAuto || !b.Until.Equal(clk.Now().Add(24*time.Hour)) || len(b.Reports) != 3 || !slices.Contains(b.Reports, third.ID) {
			t.Fatalf("ban %+v: want auto, for 24 h, naming the three reports in the window", b)
		}
		for _, id := range b.Reports {
			if r, _ := n.store.Report(ctx, id); r.Status != modstore.StatusActioned {
				t.Fatalf("report %s is %s after the ban, want actioned", id, r.Status)
			}
		}
		if got := counter(t, n.m.bans.WithLabelValues("auto")); got != 1 {
			t.Fatalf("bans{source=auto} = %v, want 1", got)
		}
		if n.Banned(hash(1)) || n.Banned(hash(5)) {
			t.Fatal("a reporter got banned")
		}
		clk.Advance(24*time.Hour + time.Second)
		if n.Banned(abuser) {
			t.Fatal("the automatic ban outlived its window")
		}
	})

	t.Run("threshold 0 never bans", func(t *testing.T) {
		st, err := modstore.OpenSQLite(ctx, t.TempDir())
		n := newNode(t, mustStore(t, st, err), Config{Window: time.Hour})
		for i := range 5 {
			if _, err := n.File(ctx, report(i, 100)); err != nil {
				t.Fatal(err)
			}
		}
		if n.Banned(hash(100)) {
			t.Fatal("banned with Threshold 0")
		}
	})
}

func TestFileBadInput(t *testing.T) {
	st, err := modstore.OpenSQLite(ctx, t.TempDir())
	n := newNode(t, mustStore(t, st, err), Config{Threshold: 1, Window: time.Hour})
	r := report(1, 2)
	r.Reported = "203.0.113.7" // a raw address never gets in
	if _, err := n.File(ctx, r); !errors.Is(err, modstore.ErrInvalid) {
		t.Fatalf("File with an address for a hash: %v, want ErrInvalid", err)
	}
	if got := counter(t, n.m.reportsFiled); got != 0 {
		t.Fatalf("reports filed = %v after a refused report", got)
	}
	if _, err := New(ctx, Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
	if _, err := New(ctx, Config{Store: n.store, Threshold: 3}); err == nil {
		t.Fatal("New with a threshold and no window succeeded")
	}
}

// TestBanSurvivesRestart: a new Service over the same database (a restarted
// node) has the ban in force before anything else happens, and no ban that
// has ended.
func TestBanSurvivesRestart(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clk := fakeClock()
		first := newNode(t, open(t), Config{Clock: clk})
		b := modstore.Ban{Identity: hash(7), Until: clk.Now().Add(time.Hour), Source: modstore.SourceModerator, At: clk.Now()}
		if _, err := first.Ban(ctx, b); err != nil {
			t.Fatal(err)
		}
		perm := modstore.Ban{Identity: hash(8), Source: modstore.SourceModerator, At: clk.Now()}
		if _, err := first.Ban(ctx, perm); err != nil {
			t.Fatal(err)
		}
		restarted := newNode(t, open(t), Config{Clock: clk})
		if !restarted.Banned(hash(7)) || !restarted.Banned(hash(8)) {
			t.Fatal("bans lost over a restart")
		}
		clk.Advance(2 * time.Hour)
		again := newNode(t, open(t), Config{Clock: clk})
		if again.Banned(hash(7)) || !again.Banned(hash(8)) {
			t.Fatal("after the hour: want the timed ban over and the permanent one in force")
		}
	})
}

func TestAllowReport(t *testing.T) {
	st, err := modstore.OpenSQLite(ctx, t.TempDir())
	clk := fakeClock()
	n := newNode(t, mustStore(t, st, err), Config{Clock: clk, ReportBurst: 3, ReportEvery: time.Minute})
	for i := range 3 {
		if !n.AllowReport(hash(1)) {
			t.Fatalf("report %d of a burst of 3 refused", i+1)
		}
	}
	if n.AllowReport(hash(1)) {
		t.Fatal("a fourth report at once allowed")
	}
	if !n.AllowReport(hash(2)) {
		t.Fatal("another identity refused")
	}
	clk.Advance(time.Minute)
	if !n.AllowReport(hash(1)) || n.AllowReport(hash(1)) {
		t.Fatal("want exactly one more report a minute later")
	}
	if got := counter(t, n.m.reportsRefused.WithLabelValues("rate")); got != 2 {
		t.Fatalf("reports refused = %v, want 2", got)
	}
	clk.Advance(time.Hour)
	n.reportLimit.prune(clk.Now())
	if l := n.reportLimit.len(); l != 0 {
		t.Fatalf("%d idle identities still tracked after prune", l)
	}
}

// TestSweep: Run's sweep deletes reports and their evidence older than the
// retention period and keeps newer ones.
func TestSweep(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clk := fakeClock()
		st := open(t)
		n := newNode(t, st, Config{Clock: clk, Retention: 720 * time.Hour})
		old, err := n.File(ctx, report(1, 2))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutEvidence(ctx, old.ID, modstore.Evidence{ContentType: "image/png", Data: pngBytes}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(700 * time.Hour)
		young, err := n.File(ctx, report(3, 2))
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(21 * time.Hour) // old is 721 h old, young 21 h
		n.run(t)                    // sweeps at start
		within(t, 5*time.Second, "the sweep", func() bool {
			_, err := st.Report(ctx, old.ID)
			return errors.Is(err, modstore.ErrNotFound)
		})
		if _, err := st.Evidence(ctx, old.ID); !errors.Is(err, modstore.ErrNotFound) {
			t.Fatalf("evidence of a swept report: %v", err)
		}
		if _, err := st.Report(ctx, young.ID); err != nil {
			t.Fatalf("a report within the retention period was swept: %v", err)
		}
		if got := counter(t, n.m.swept.WithLabelValues("evidence")); got != 1 {
			t.Fatalf("swept{evidence} = %v", got)
		}
	})
}

// BenchmarkBanned is the connect-time ban check with 10 000 bans in force.
func BenchmarkBanned(b *testing.B) {
	st, err := modstore.OpenSQLite(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := New(ctx, Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	set := banSet{}
	for i := range 10_000 {
		set[hash(i)] = time.Now().Add(time.Hour)
	}
	s.bans.Store(&set)
	probe := []identity.Hash{hash(5), hash(1 << 40)} // banned, not banned
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Banned(probe[i&1])
			i++
		}
	})
}

// TestBusDownAtStart: a node that starts while Redis is away serves the
// bans it loaded, follows the store by reloading, and subscribes once
// Redis is back.
func TestBusDownAtStart(t *testing.T) {
	url := pgURL(t)
	rs := redistest.StartServer(t)
	rs.Stop()
	st, err := modstore.OpenPostgres(ctx, url)
	st = mustStore(t, st, err)
	n := newNode(t, st, Config{Bus: redisBus(t, rs.URL()), RefreshEvery: 200 * time.Millisecond})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	if _, err := st.Ban(ctx, moderatorBan(hash(1), time.Hour)); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "a ban from the store while Redis is away", func() bool { return n.Banned(hash(1)) })
	select {
	case <-n.Subscribed():
		t.Fatal("subscribed with Redis away")
	default:
	}
	if err := rs.Restart(0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Subscribed():
	case <-time.After(10 * time.Second):
		t.Fatal("not subscribed 10 s after Redis came back")
	}
}

// TestAutoBanAcrossNodes: three people report an abuser on two different
// nodes; the abuser is banned on both within a second of the third report,
// and a moderator's unban through the other node's API lets them chat
// again everywhere within a second.
func TestAutoBanAcrossNodes(t *testing.T) {
	a, b, _, _ := twoNodesWith(t, Config{Threshold: 3, Window: 24 * time.Hour, RefreshEvery: time.Hour})
	abuser := hash(100)
	for i, n := range []*node{a, b, a} {
		if _, err := n.File(ctx, report(i+1, 100)); err != nil {
			t.Fatal(err)
		}
		if i < 2 && (a.Banned(abuser) || b.Banned(abuser)) {
			t.Fatalf("banned after %d reports", i+1)
		}
	}
	for _, n := range []*node{a, b} {
		within(t, time.Second, "the automatic ban", func() bool { return n.Banned(abuser) })
		within(t, time.Second, "its OnBan", func() bool { return slices.Contains(n.startedBans(), abuser) })
	}
	ops := api{t, b.AdminAPI(fixedLive{})}
	ops.do("DELETE", "/admin/api/bans/"+string(abuser), "", 204, nil)
	within(t, time.Second, "the unban on the other node", func() bool { return !a.Banned(abuser) })
}
