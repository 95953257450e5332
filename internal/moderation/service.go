// Package moderation is the moderation service of a node: the bans in
// memory for the connect-time check, kept the same on every node through a
// Bus and a periodic reload from the store; reports and automatic bans; the
// evidence upload endpoint; the operator API; the retention sweep
// (docs/moderation.md; the contract is the project's moderation.md).
//
// The store (internal/modstore) is the truth; the in-memory set is a copy
// that a Bus message updates within milliseconds and the reload repairs
// within RefreshEvery when a message was lost.
//
// A node wires it so: New with config.ModerationConfig() plus the store,
// NewRedisBus (with --redis), the clock, logger and registry; go Run(ctx);
// OnBan to end a banned identity's sessions; Banned at connect, join and
// next; AllowReport then File on a report (Filed goes into `reported`);
// EvidenceHandler at POST /api/evidence; AdminAPI(live) under /admin/api/
// on the admin listener, and wrapped in RequireToken on the public one
// when --admin-token is set.
package moderation

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/modstore"
)

// Store is what the service needs of the moderation store; *modstore.Store
// has it.
type Store interface {
	Key(ctx context.Context) ([]byte, error)
	AddReport(ctx context.Context, r modstore.Report) (modstore.Report, error)
	Report(ctx context.Context, id modstore.ReportID) (modstore.Report, error)
	Reports(ctx context.Context, q modstore.ReportQuery) ([]modstore.Report, error)
	ReportsAgainst(ctx context.Context, reported identity.Hash, since time.Time) (int, error)
	ReportIDsAgainst(ctx context.Context, reported identity.Hash, since time.Time) ([]modstore.ReportID, error)
	Dismiss(ctx context.Context, id modstore.ReportID) error
	PutEvidence(ctx context.Context, id modstore.ReportID, ev modstore.Evidence) error
	Evidence(ctx context.Context, id modstore.ReportID) (modstore.Evidence, error)
	EvidenceBytes(ctx context.Context) (int64, error)
	PruneDismissedEvidence(ctx context.Context, need int64) (freed int64, n int, err error)
	Ban(ctx context.Context, b modstore.Ban) (modstore.Ban, error)
	ActiveBans(ctx context.Context, now time.Time) ([]modstore.Ban, error)
	Unban(ctx context.Context, id identity.Hash) error
	Counts(ctx context.Context, reportsSince, now time.Time) (modstore.Counts, error)
	Sweep(ctx context.Context, cutoff time.Time) (modstore.Swept, error)
}

// Defaults for the zero fields of Config.
const (
	DefaultRetention        = 720 * time.Hour
	DefaultEvidenceMaxBytes = 1 << 30
	DefaultReportBurst      = 5
	DefaultReportEvery      = 2 * time.Minute
	DefaultAuthFailures     = 10
	DefaultAuthFailureEvery = time.Minute
	DefaultRefreshEvery     = 5 * time.Second
	DefaultSweepEvery       = time.Hour
)

// Config configures a Service. Zero durations and sizes take the defaults
// above; Store is required.
type Config struct {
	Store   Store
	Clock   clock.Clock           // nil: the wall clock
	Log     *slog.Logger          // nil: discard
	Metrics prometheus.Registerer // nil: a registry of its own

	// Threshold is the number of distinct reporter identities that ban an
	// identity automatically (--ban-threshold); 0 never bans automatically.
	Threshold int
	// Window is how long an automatic ban lasts and the window in which
	// reports count toward it (--ban-duration); required when Threshold > 0.
	Window time.Duration
	// Retention is how long reports and evidence are kept (--report-retention).
	Retention time.Duration

	// Bus carries bans to the other nodes; nil for a single node.
	Bus Bus
	// Key is the deployment's identity key when the operator sets one
	// (every node the same); nil: the store's (Store.Key). Evidence tokens
	// are signed with a key derived from it, so any node verifies them.
	Key []byte

	// EvidenceMaxBytes caps the total size of stored evidence images.
	EvidenceMaxBytes int64
	// ReportBurst reports per reporter identity at once, then one more per
	// ReportEvery (per node).
	ReportBurst int
	ReportEvery time.Duration
	// AuthFailures failed operator-token attempts per identity at once, then
	// one more per AuthFailureEvery; past it RequireToken answers 429.
	AuthFailures     int
	AuthFailureEvery time.Duration

	// RefreshEvery is how often the bans are reloaded from the store (the
	// bound on how long a lost Bus message goes unnoticed).
	RefreshEvery time.Duration
	// SweepEvery is how often the retention sweep runs.
	SweepEvery time.Duration
}

func (c *Config) defaults() error {
	if c.Store == nil {
		return errors.New("moderation: Config.Store is required")
	}
	if c.Threshold < 0 {
		return fmt.Errorf("moderation: negative threshold %d", c.Threshold)
	}
	if c.Threshold > 0 && c.Window <= 0 {
		return errors.New("moderation: automatic bans need a positive Window (--ban-duration)")
	}
	for _, f := range []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"Retention", &c.Retention, DefaultRetention},
		{"ReportEvery", &c.ReportEvery, DefaultReportEvery},
		{"AuthFailureEvery", &c.AuthFailureEvery, DefaultAuthFailureEvery},
		{"RefreshEvery", &c.RefreshEvery, DefaultRefreshEvery},
		{"SweepEvery", &c.SweepEvery, DefaultSweepEvery},
	} {
		if *f.d < 0 {
			return fmt.Errorf("moderation: negative %s %v", f.name, *f.d)
		}
		if *f.d == 0 {
			*f.d = f.def
		}
	}
	if c.EvidenceMaxBytes < 0 || c.ReportBurst < 0 || c.AuthFailures < 0 {
		return errors.New("moderation: negative EvidenceMaxBytes, ReportBurst or AuthFailures")
	}
	if c.EvidenceMaxBytes == 0 {
		c.EvidenceMaxBytes = DefaultEvidenceMaxBytes
	}
	if c.ReportBurst == 0 {
		c.ReportBurst = DefaultReportBurst
	}
	if c.AuthFailures == 0 {
		c.AuthFailures = DefaultAuthFailures
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = prometheus.NewRegistry()
	}
	return nil
}

// Service is one node's moderation. Its methods are safe for concurrent
// use.
type Service struct {
	cfg      Config
	store    Store
	clock    clock.Clock
	log      *slog.Logger
	m        *metrics
	node     string // this Service's id on the Bus
	tokenKey []byte // evidence tokens' HMAC key, derived from the deployment key

	// bans is the ban set (identity → until; zero: permanent), never
	// modified once stored: writers copy it under mu and store the copy,
	// so that Banned, on every connection, reads it without a lock.
	bans atomic.Pointer[banSet]
	// mu serialises the writers of bans and guards seq and touched;
	// nothing is called with it held.
	mu sync.Mutex
	// seq numbers the changes applied from the Bus or by this node, and
	// touched holds each identity's latest: a reload that read the store
	// before a change must not undo it (see refresh).
	seq     uint64
	touched map[identity.Hash]uint64

	hmu      sync.Mutex // guards handlers
	handlers []func(identity.Hash)

	reportLimit *limiterSet
	authLimit   *limiterSet
	evidenceMu  sync.Mutex // one evidence upload at a time per node, so the cap holds

	storeDown  atomic.Bool // the last reload failed (logged once per outage)
	subscribed chan struct{}
	subOnce    sync.Once
}

// New loads the bans in force from the store and returns the Service. Run
// starts its background work.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	key := cfg.Key
	if key == nil {
		var err error
		if key, err = cfg.Store.Key(ctx); err != nil {
			return nil, fmt.Errorf("moderation: deployment key: %w", err)
		}
	} else if len(key) < identity.MinKeyBytes {
		return nil, fmt.Errorf("moderation: deployment key of %d bytes, need at least %d", len(key), identity.MinKeyBytes)
	}
	var node [8]byte
	_, _ = rand.Read(node[:]) // never fails (crypto/rand)
	s := &Service{
		cfg:         cfg,
		store:       cfg.Store,
		clock:       cfg.Clock,
		log:         cfg.Log,
		node:        hex.EncodeToString(node[:]),
		tokenKey:    deriveKey(key, "stranger/evidence-token/v1"),
		touched:     map[identity.Hash]uint64{},
		reportLimit: newLimiterSet(cfg.ReportEvery, cfg.ReportBurst),
		authLimit:   newLimiterSet(cfg.AuthFailureEvery, cfg.AuthFailures),
		subscribed:  make(chan struct{}),
	}
	bans, err := s.store.ActiveBans(ctx, s.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("moderation: load bans: %w", err)
	}
	set := make(banSet, len(bans))
	for _, b := range bans {
		set[b.Identity] = b.Until
	}
	s.bans.Store(&set)
	s.m = newMetrics(cfg.Metrics, func() float64 { return float64(s.activeBans()) })
	return s, nil
}

// deriveKey gives each use of the deployment key a key of its own.
func deriveKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Banned reports whether h is banned now. It reads memory only: the
// connect-time check costs no database round trip.
func (s *Service) Banned(h identity.Hash) bool {
	until, ok := (*s.bans.Load())[h]
	return ok && active(until, s.clock.Now())
}

// banSet maps banned identities to the end of their ban (zero: permanent).
type banSet map[identity.Hash]time.Time

func active(until, now time.Time) bool { return until.IsZero() || until.After(now) }

func (s *Service) activeBans() int {
	now := s.clock.Now()
	n := 0
	for _, until := range *s.bans.Load() {
		if active(until, now) {
			n++
		}
	}
	return n
}

// OnBan registers f, called on every node when a ban of an identity starts
// there (from this node, the Bus or a reload), so the node can end the
// banned identity's sessions. f runs on the goroutine that applied the ban
// (an API request, a report, Run) and must not block for long.
func (s *Service) OnBan(f func(identity.Hash)) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.handlers = append(s.handlers, f)
}

func (s *Service) started(hs []identity.Hash) {
	if len(hs) == 0 {
		return
	}
	s.hmu.Lock()
	handlers := append([]func(identity.Hash){}, s.handlers...)
	s.hmu.Unlock()
	for _, h := range hs {
		for _, f := range handlers {
			f(h)
		}
	}
}

// apply puts c into the ban set and calls the OnBan handlers if a ban
// started.
func (s *Service) apply(c Change) {
	now := s.clock.Now()
	s.mu.Lock()
	set := maps.Clone(*s.bans.Load())
	prev, had := set[c.Identity]
	wasActive := had && active(prev, now)
	switch c.Op {
	case OpBan:
		var until time.Time
		if c.Until != nil {
			until = *c.Until
		}
		set[c.Identity] = until
	case OpUnban:
		delete(set, c.Identity)
	}
	s.bans.Store(&set)
	s.seq++
	s.touched[c.Identity] = s.seq
	s.mu.Unlock()
	if c.Op == OpBan && !wasActive {
		s.started([]identity.Hash{c.Identity})
	}
}

// publish applies c here and sends it to the other nodes. A failed publish
// is logged: the other nodes' reload picks the change up from the store.
func (s *Service) publish(ctx context.Context, c Change) {
	c.Node = s.node
	s.apply(c)
	if s.cfg.Bus == nil {
		return
	}
	if err := s.cfg.Bus.Publish(ctx, c); err != nil {
		s.log.Warn("moderation: ban not broadcast; other nodes see it at their next reload",
			"identity", c.Identity, "op", c.Op, "err", err)
	}
}

// refresh reloads the ban set from the store. Changes applied after the
// store was read (their seq is newer than the reload's start) are kept as
// they are: the read may predate them. An unreachable store keeps the
// last set.
func (s *Service) refresh(ctx context.Context) {
	s.mu.Lock()
	seq0 := s.seq
	s.mu.Unlock()
	now := s.clock.Now()
	bans, err := s.store.ActiveBans(ctx, now)
	if err != nil {
		if !s.storeDown.Swap(true) {
			s.log.Error("moderation: cannot reload bans; keeping the last known set", "err", err)
		}
		return
	}
	if s.storeDown.Swap(false) {
		s.log.Info("moderation: bans reloaded again")
	}
	fresh := make(banSet, len(bans))
	for _, b := range bans {
		fresh[b.Identity] = b.Until
	}
	var starts []identity.Hash
	s.mu.Lock()
	cur := *s.bans.Load()
	for h, seq := range s.touched {
		if seq <= seq0 {
			delete(s.touched, h)
			continue
		}
		if until, ok := cur[h]; ok {
			fresh[h] = until
		} else {
			delete(fresh, h)
		}
	}
	for h, until := range fresh {
		if prev, had := cur[h]; active(until, now) && !(had && active(prev, now)) {
			starts = append(starts, h)
		}
	}
	s.bans.Store(&fresh)
	s.mu.Unlock()
	s.started(starts)
}

// Subscribed is closed once Run's Bus subscription is in place (at once
// without a Bus): from then on bans from other nodes arrive within
// milliseconds.
func (s *Service) Subscribed() <-chan struct{} { return s.subscribed }

// Run keeps the service current until ctx ends: it applies the Bus's
// changes, reloads the bans every RefreshEvery (healing a lost message or a
// restart of Redis or the database), forgets idle rate-limit buckets, and
// sweeps what the retention period no longer covers every SweepEvery (and
// once at start). Every node runs the sweep; it is idempotent.
func (s *Service) Run(ctx context.Context) {
	var changes <-chan Change
	subscribe := func() {
		if s.cfg.Bus == nil {
			s.subOnce.Do(func() { close(s.subscribed) })
			return
		}
		ch, err := s.cfg.Bus.Subscribe(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("moderation: bus subscription failed; retrying at the next reload", "err", err)
			}
			return
		}
		changes = ch
		s.subOnce.Do(func() { close(s.subscribed) })
	}
	subscribe()
	s.sweep(ctx)
	refresh := time.NewTicker(s.cfg.RefreshEvery)
	defer refresh.Stop()
	sweep := time.NewTicker(s.cfg.SweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			if c.Node != s.node { // this node applied its own already
				s.apply(c)
			}
		case <-refresh.C:
			if changes == nil && s.cfg.Bus != nil {
				subscribe()
			}
			s.refresh(ctx)
			now := s.clock.Now()
			s.reportLimit.prune(now)
			s.authLimit.prune(now)
		case <-sweep.C:
			s.sweep(ctx)
		}
	}
}

// sweep deletes reports and evidence older than the retention period,
// and bans that ended before it.
func (s *Service) sweep(ctx context.Context) {
	sw, err := s.store.Sweep(ctx, s.clock.Now().Add(-s.cfg.Retention))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("moderation: retention sweep failed; retrying at the next", "err", err)
		}
		return
	}
	s.m.swept.WithLabelValues("reports").Add(float64(sw.Reports))
	s.m.swept.WithLabelValues("evidence").Add(float64(sw.Evidence))
	s.m.swept.WithLabelValues("bans").Add(float64(sw.Bans))
	if sw != (modstore.Swept{}) {
		s.log.Info("moderation: retention sweep", "reports", sw.Reports, "evidence", sw.Evidence, "bans", sw.Bans,
			"retention", s.cfg.Retention)
	}
}

// Ban records b in the store and starts it on every node. The store keeps
// the longer of b and a ban already in force; the ban returned is the one
// now in force.
func (s *Service) Ban(ctx context.Context, b modstore.Ban) (modstore.Ban, error) {
	got, err := s.store.Ban(ctx, b)
	if err != nil {
		return modstore.Ban{}, err
	}
	c := Change{Op: OpBan, Identity: got.Identity}
	if !got.Permanent() {
		until := got.Until
		c.Until = &until
	}
	s.publish(ctx, c)
	// The store keeps a longer ban in force as it is; only a ban that took
	// effect counts as started.
	if got.Source == b.Source && got.At.UnixMicro() == b.At.UnixMicro() {
		s.m.bans.WithLabelValues(string(b.Source)).Inc()
		s.log.Info("moderation: ban", "identity", got.Identity, "source", got.Source, "until", got.Until,
			"permanent", got.Permanent(), "reports", len(got.Reports))
	}
	return got, nil
}

// Unban ends the ban of h on every node; a NotFoundError when h has none.
func (s *Service) Unban(ctx context.Context, h identity.Hash) error {
	if err := s.store.Unban(ctx, h); err != nil {
		return err
	}
	s.publish(ctx, Change{Op: OpUnban, Identity: h})
	s.log.Info("moderation: unban", "identity", h)
	return nil
}

// AllowReport takes one of reporter's report tokens (this node's memory);
// false, counted in the metrics, when the reporter has reported too often.
func (s *Service) AllowReport(reporter identity.Hash) bool {
	if s.reportLimit.take(reporter, s.clock.Now()) {
		return true
	}
	s.m.reportsRefused.WithLabelValues("rate").Inc()
	return false
}

// Filed is a report stored: its id and the token for its evidence upload,
// both for the reporter's `reported` frame.
type Filed struct {
	ID            modstore.ReportID
	EvidenceToken string
}

// EvidenceTTL is how long an evidence token is valid.
const EvidenceTTL = 120 * time.Second

// File stores r (r.At zero: now) and, when Threshold distinct identities
// other than the reported one have reported it within Window, bans the
// reported identity for Window on every node. File does not apply the rate
// limit: the caller asks AllowReport first.
//
// A failure of the automatic ban check after the report is stored is
// logged, not returned: the report is filed either way and the reporter's
// answer does not depend on it; the next report against the same identity
// checks again.
func (s *Service) File(ctx context.Context, r modstore.Report) (Filed, error) {
	now := s.clock.Now()
	if r.At.IsZero() {
		r.At = now
	}
	stored, err := s.store.AddReport(ctx, r)
	if err != nil {
		return Filed{}, err
	}
	s.m.reportsFiled.Inc()
	f := Filed{ID: stored.ID, EvidenceToken: s.evidenceToken(stored.ID, now.Add(EvidenceTTL))}
	if s.cfg.Threshold > 0 && stored.Reporter != stored.Reported {
		if err := s.autoBan(ctx, stored.Reported, now); err != nil {
			s.log.Error("moderation: automatic ban check failed", "reported", stored.Reported, "report", stored.ID, "err", err)
		}
	}
	return f, nil
}

func (s *Service) autoBan(ctx context.Context, reported identity.Hash, now time.Time) error {
	since := now.Add(-s.cfg.Window)
	n, err := s.store.ReportsAgainst(ctx, reported, since)
	if err != nil || n < s.cfg.Threshold {
		return err
	}
	ids, err := s.store.ReportIDsAgainst(ctx, reported, since)
	if err != nil {
		return err
	}
	_, err = s.Ban(ctx, modstore.Ban{
		Identity: reported,
		Until:    now.Add(s.cfg.Window),
		Reason:   fmt.Sprintf("reported by %d distinct identities within %v", n, s.cfg.Window),
		Source:   modstore.SourceAuto,
		Reports:  ids,
		At:       now,
	})
	return err
}
