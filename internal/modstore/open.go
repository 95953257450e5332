// Package modstore is the durable store of moderation: reports with what the
// server witnessed, their evidence images, bans, and the deployment's
// identity key (docs/moderation-store.md). It survives the restart of any
// node and of the whole deployment.
//
// Two backends share one SQL code path through database/sql: embedded SQLite
// (modernc.org/sqlite, pure Go) in a data directory, for a single node, and
// PostgreSQL (pgx) for a deployment of several nodes. The SQL is written in
// the dialect both speak: $n placeholders, ON CONFLICT, times as integer
// microseconds and lists as JSON text, so that only the name of the binary
// column type and the migration lock differ.
//
// The package exports the concrete *Store and no interface: the interface
// belongs to the code that uses the store (the engine, the operator API),
// which defines the few methods it needs.
package modstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	sqlitedrv "modernc.org/sqlite"     // database/sql driver "sqlite"
)

// Store is the moderation store on one database. It is safe for concurrent
// use, and several Stores (on several nodes) may share one PostgreSQL
// database; on SQLite, several handles in one data directory are safe too
// (the file is locked), which tests use, but the database is one machine's.
type Store struct {
	db *sql.DB
	d  dialect
}

// dialect is what differs between the backends.
type dialect struct {
	name string
	// blob is the column type of binary data.
	blob string
	// lockMigrations serialises schema migrations between processes inside
	// the migration transaction; "" when the transaction itself does.
	lockMigrations string
}

var (
	sqlite = dialect{name: "sqlite", blob: "BLOB"}
	// On PostgreSQL two nodes starting at once would both see the schema
	// missing and both create it; a transaction-scoped advisory lock (freed
	// at commit or rollback) makes the second wait and then find it done.
	// The number is arbitrary and only needs to be this package's.
	postgres = dialect{name: "postgres", blob: "BYTEA",
		lockMigrations: "SELECT pg_advisory_xact_lock(7172693117254656339)"}
)

// DBFile is the name of the SQLite database in the data directory.
const DBFile = "moderation.db"

// OpenSQLite opens (creating it if missing) the SQLite database in dir,
// which is created too, and brings its schema up to date.
func OpenSQLite(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("modstore: data directory: %w", err)
	}
	abs, err := filepath.Abs(filepath.Join(dir, DBFile))
	if err != nil {
		return nil, fmt.Errorf("modstore: data directory: %w", err)
	}
	// WAL lets readers go on while one writer writes; busy_timeout makes a
	// writer wait for the lock instead of failing at once; foreign keys are
	// off by default in SQLite; _txlock=immediate takes the write lock when
	// a transaction begins, so two transactions cannot both read and then
	// deadlock upgrading to write (SQLITE_BUSY that no timeout resolves).
	// The pragmas run in this order on every new connection: busy_timeout
	// first, because switching to WAL takes a lock too, and two nodes (or
	// two connections) opening a new database at once failed with
	// SQLITE_BUSY when the switch came before the timeout was set.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: abs, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("modstore: open sqlite: %w", err)
	}
	return open(ctx, db, sqlite)
}

// OpenPostgres connects to the PostgreSQL database at dbURL
// (postgres://user:password@host:port/db?sslmode=…) and brings its schema
// up to date.
func OpenPostgres(ctx context.Context, dbURL string) (*Store, error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return nil, fmt.Errorf("modstore: open postgres: %w", err)
	}
	return open(ctx, db, postgres)
}

// sqliteBusy is SQLite's SQLITE_BUSY result code.
const sqliteBusy = 5

// ping makes the first connection. On SQLite it retries while the database
// is busy: a new connection's switch to WAL mode needs a lock for which
// SQLite does not call its busy handler, so two handles opening a new
// database at the same moment saw SQLITE_BUSY despite busy_timeout. The
// wait is bounded by ctx and by the same 10 s as busy_timeout.
func ping(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := db.PingContext(ctx)
		var se *sqlitedrv.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqliteBusy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func open(ctx context.Context, db *sql.DB, d dialect) (*Store, error) {
	s := &Store{db: db, d: d}
	if err := ping(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("modstore: connect to %s: %w", d.name, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database handle.
func (s *Store) Close() error { return s.db.Close() }

// migrations are the schema's versions in order: migration i brings the
// schema to version i+1. A released migration is never edited, only
// followed by a new one. {blob} is the dialect's binary type.
//
// Times are integer microseconds since 1970 UTC (_us), durations integer
// milliseconds (_ms): the same in both dialects and ordered as numbers.
// Lists (interests, messages, report ids) are JSON text: they are always
// read whole with their row and never queried into.
var migrations = [][]string{
	{ // 1: reports, evidence, bans, settings
		`CREATE TABLE settings (
			name  TEXT PRIMARY KEY,
			value TEXT NOT NULL
		)`,
		`CREATE TABLE reports (
			id               TEXT PRIMARY KEY,
			at_us            BIGINT NOT NULL,
			reason           TEXT NOT NULL,
			mode             TEXT NOT NULL,
			common_interests TEXT NOT NULL,
			chat_ms          BIGINT NOT NULL,
			reporter         TEXT NOT NULL,
			reported         TEXT NOT NULL,
			messages         TEXT NOT NULL,
			status           TEXT NOT NULL
		)`,
		`CREATE INDEX reports_at ON reports (at_us, id)`,
		`CREATE INDEX reports_status_at ON reports (status, at_us, id)`,
		`CREATE INDEX reports_reported_at ON reports (reported, at_us)`,
		`CREATE TABLE evidence (
			report_id    TEXT PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
			content_type TEXT NOT NULL,
			size         BIGINT NOT NULL,
			data         {blob} NOT NULL
		)`,
		`CREATE TABLE bans (
			identity TEXT PRIMARY KEY,
			until_us BIGINT,
			reason   TEXT NOT NULL,
			source   TEXT NOT NULL,
			reports  TEXT NOT NULL,
			at_us    BIGINT NOT NULL
		)`,
		`CREATE INDEX bans_at ON bans (at_us)`,
	},
}

// migrate applies the migrations the database lacks, all in one
// transaction: a failure leaves the schema as it was, and a second process
// migrating at the same time waits (SQLite: the immediate transaction's
// write lock; PostgreSQL: the advisory lock) and then finds nothing to do.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("modstore: migrate: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if s.d.lockMigrations != "" {
		if _, err := tx.ExecContext(ctx, s.d.lockMigrations); err != nil {
			return fmt.Errorf("modstore: migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_us BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("modstore: migrate: %w", err)
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("modstore: migrate: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("modstore: the database's schema is version %d, newer than this program's %d: run the newer program", have, len(migrations))
	}
	if have == len(migrations) {
		return nil
	}
	for v := have + 1; v <= len(migrations); v++ {
		for _, stmt := range migrations[v-1] {
			if _, err := tx.ExecContext(ctx, strings.ReplaceAll(stmt, "{blob}", s.d.blob)); err != nil {
				return fmt.Errorf("modstore: migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_us) VALUES ($1, $2)`,
			v, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("modstore: migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("modstore: migrate: commit: %w", err)
	}
	return nil
}

// notFound turns sql.ErrNoRows into a NotFoundError and wraps other errors.
func notFound(err error, what, key string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return &NotFoundError{What: what, Key: key}
	}
	return fmt.Errorf("modstore: %s %q: %w", what, key, err)
}
