package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/modstore"
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
func (s *Server) identityKeyer(ctx context.Context, st *modstore.Store) (*identity.Keyer, error) {
	key, err := st.Key(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	return identity.NewKeyer(key)
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
