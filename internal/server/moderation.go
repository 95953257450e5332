package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/moderation"
	"github.com/strangerchat/stranger/internal/modstore"
	"github.com/strangerchat/stranger/internal/signaling"
)

// storeOpenTimeout bounds opening the moderation store and reading its key
// at start-up (a PostgreSQL server that does not answer).
const storeOpenTimeout = 30 * time.Second

// openStore opens the moderation store the configuration names: PostgreSQL
// with --database, else SQLite in --data-dir, else (a node built without a
// data directory, as tests build them) SQLite in a temporary directory that
// is removed at shutdown. Its closer joins the cleanup list.
func (s *Server) openStore(ctx context.Context) (*modstore.Store, error) {
	cfg := s.cfg
	switch {
	case cfg.Database != "":
		st, err := modstore.OpenPostgres(ctx, cfg.Database)
		if err != nil {
			return nil, fmt.Errorf("--database: %w", redactURL(err, cfg.Database))
		}
		s.cleanup.add(func(context.Context) error { return st.Close() })
		return st, nil
	case cfg.DataDir != "":
		st, err := modstore.OpenSQLite(ctx, cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
		}
		s.cleanup.add(func(context.Context) error { return st.Close() })
		s.log.Info("reports, evidence and bans are kept in SQLite", "dir", cfg.DataDir)
		return st, nil
	}
	dir, err := os.MkdirTemp("", "stranger-moderation-")
	if err != nil {
		return nil, fmt.Errorf("temporary moderation store: %w", err)
	}
	s.cleanup.add(func(context.Context) error { return os.RemoveAll(dir) })
	st, err := modstore.OpenSQLite(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("temporary moderation store: %w", err)
	}
	s.cleanup.add(func(context.Context) error { return st.Close() })
	s.log.Warn("no --data-dir: reports and bans are lost when this node stops")
	return st, nil
}

// redactURL keeps a database password out of an error message: drivers
// quote the URL they failed to parse or reach.
func redactURL(err error, dbURL string) error {
	msg := err.Error()
	if i := strings.Index(dbURL, "://"); i >= 0 {
		if j := strings.Index(dbURL[i+3:], "@"); j >= 0 {
			cred := dbURL[i+3 : i+3+j]
			if k := strings.Index(cred, ":"); k >= 0 && cred[k+1:] != "" {
				msg = strings.ReplaceAll(msg, cred[k+1:], "xxxxx")
			}
		}
	}
	return errors.New(msg)
}

// identify returns the hub's Identify: the keyed hash of a client IP's /32
// or /64 (moderation.md, Identities); "" for an address it cannot parse.
func identify(k *identity.Keyer) func(ip string) identity.Hash {
	return func(ip string) identity.Hash {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return ""
		}
		h, ok := k.HashAddr(addr)
		if !ok {
			return ""
		}
		return h
	}
}

// identityKeyer is the deployment's identity keyer, with the key kept in
// the moderation store (made there by the first node that asks).
// deploymentKey is the key every node of the deployment shares: the
// operator's (--identity-key-file), else the one kept in the moderation
// store (made there by the first node that asks). Identities are hashed
// with it, and other keys (proof of work) are derived from it.
func (s *Server) deploymentKey(ctx context.Context, st *modstore.Store) ([]byte, error) {
	if len(s.cfg.IdentityKey) > 0 {
		return s.cfg.IdentityKey, nil
	}
	key, err := st.Key(ctx)
	if err != nil {
		return nil, fmt.Errorf("deployment key: %w", err)
	}
	return key, nil
}

// refuseSharedRedisWithoutDatabase stops a node from joining a Redis that
// other nodes already serve when it has no --database: each node would keep
// its own reports and bans in its own SQLite, so a ban on one node would not
// hold on the others (moderation.md: a ban takes effect on every node).
func (s *Server) refuseSharedRedisWithoutDatabase(ctx context.Context) error {
	if s.cfg.Database != "" {
		return nil
	}
	live, err := s.backend.LiveNodes(ctx)
	if err != nil {
		return fmt.Errorf("--redis %s: cannot reach Redis: %w", s.cfg.Redis, err)
	}
	if len(live) > 0 {
		return fmt.Errorf("--redis: %d other node(s) already serve this Redis, and this node has no --database: "+
			"several nodes must share one PostgreSQL (--database postgres://…) for reports and bans, "+
			"or a ban made on one node would not hold on the others", len(live))
	}
	return nil
}

// moderator adapts the moderation service to the hub's Moderator seam.
type moderator struct{ *moderation.Service }

func (m moderator) File(ctx context.Context, r modstore.Report) (signaling.Filed, error) {
	f, err := m.Service.File(ctx, r)
	return signaling.Filed{Report: f.ID, EvidenceToken: f.EvidenceToken}, err
}

// newModeration builds the node's moderation service over st: bans travel
// on the deployment's Redis when there is one.
func (s *Server) newModeration(ctx context.Context, st *modstore.Store, reg prometheus.Registerer, clk clock.Clock) (*moderation.Service, error) {
	var bus moderation.Bus
	if s.backend != nil {
		bus = moderation.NewRedisBus(s.backend.Client(), cluster.DefaultPrefix, s.log)
	}
	mc := s.cfg.ModerationConfig()
	mc.Store, mc.Clock, mc.Log, mc.Metrics, mc.Bus = st, clk, s.log, reg, bus
	mc.Key = s.cfg.IdentityKey // nil: the store's deployment key
	svc, err := moderation.New(ctx, mc)
	if err != nil {
		return nil, fmt.Errorf("moderation: %w", err)
	}
	return svc, nil
}

// subscribeWait bounds how long Start waits for the moderation service's
// subscription to the other nodes' bans before serving anyway (the
// periodic reload covers the gap).
const subscribeWait = 5 * time.Second

// runModeration starts the service's loop; the cleanup list stops it
// before Redis and the store close. Start returns once the service hears
// the other nodes' bans, so a ban made right after a restart reaches it.
func (s *Server) runModeration() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.moderation.Run(ctx)
	}()
	s.cleanup.add(func(context.Context) error {
		cancel()
		<-done
		return nil
	})
	select {
	case <-s.moderation.Subscribed():
	case <-time.After(subscribeWait):
		s.log.Warn("moderation: not yet subscribed to the other nodes' bans; serving anyway, they arrive with the next reload")
	}
}

// runLiveStats samples the match counter for MatchesLastMinute.
func (s *Server) runLiveStats() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.live.sample(ctx, s.clock)
	}()
	s.cleanup.add(func(context.Context) error {
		cancel()
		<-done
		return nil
	})
}

// liveStats are the operator console's live figures (moderation.Live),
// across the deployment where the backend counts so: the Redis engine's
// counters are shared by every node.
type liveStats struct {
	online func() int
	stats  func() match.Stats

	mu      sync.Mutex
	samples []matchSample // oldest first, one per sampleEvery, at most a minute and one
}

type matchSample struct {
	at      time.Time
	matches uint64
}

const sampleEvery = 5 * time.Second

func (l *liveStats) Online() int { return l.online() }

func (l *liveStats) Waiting() int {
	n := 0
	for _, w := range l.stats().Waiting {
		n += w
	}
	return n
}

// Chatting counts people in chats: two per chat.
func (l *liveStats) Chatting() int { return 2 * l.stats().Chats }

// MatchesLastMinute is the growth of the engine's match counter over the
// last minute (or since the node started, if that is less).
func (l *liveStats) MatchesLastMinute() int {
	now := l.stats().Matches
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) == 0 || now < l.samples[0].matches {
		return 0
	}
	return int(now - l.samples[0].matches)
}

// sample records the match counter; the cleanup list stops it.
func (l *liveStats) sample(ctx context.Context, clk clock.Clock) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		l.record(clk.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *liveStats) record(at time.Time) {
	m := l.stats().Matches
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples = append(l.samples, matchSample{at: at, matches: m})
	for len(l.samples) > 1 && at.Sub(l.samples[1].at) >= time.Minute {
		l.samples = l.samples[1:]
	}
}
