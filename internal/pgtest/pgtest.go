// Package pgtest starts a real PostgreSQL server for tests: Debian's
// postgresql package, a fresh cluster in a temporary directory, listening on
// a free loopback port, stopped and removed when the tests end. Tests of the
// PostgreSQL store never use a fake: what they check is real SQL, real
// transactions and real locks.
//
// PostgreSQL refuses to run as root; when the tests run as root the server
// runs as the system user postgres, which the package creates.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/strangerchat/stranger/internal/freeport"
)

// Install is the hint given when PostgreSQL is missing.
const Install = "PostgreSQL is not installed: scripts/deps.sh installs it (Debian package postgresql)"

// Server is a running PostgreSQL server.
type Server struct {
	bin  string // the directory holding initdb and postgres
	dir  string // removed by Stop
	port int
	cred *syscall.Credential // nil: run as this process's user

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	dbCount int
}

// Start starts a server for t, stopped by t.Cleanup. It fails the test when
// PostgreSQL is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Launch starts a server for a TestMain or a helper that shares one server
// among the tests of a package; the caller stops it.
func Launch() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the user postgres (%v); %s", err, Install)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if s.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := s.start(); err != nil {
		_ = os.RemoveAll(s.dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return s, nil
}

// findBin returns the bin directory of the newest installed major version.
func findBin() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", errors.New(Install)
	}
	sort.Slice(found, func(i, j int) bool { return major(found[i]) > major(found[j]) })
	return filepath.Dir(found[0]), nil
}

func major(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: s.cred,
		// The server dies with the test binary even if Stop is never
		// reached (a panic, a killed test run), instead of lingering.
		Pdeathsig: syscall.SIGKILL,
	}
	return cmd
}

func (s *Server) start() error {
	data := filepath.Join(s.dir, "data")
	if s.cred != nil {
		// The temporary directory is root's; the server's user must own it.
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return err
		}
	}
	out, err := s.command("initdb", "-D", data, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if s.port, err = freeport.TCP(); err != nil {
		return fmt.Errorf("free port: %w", err)
	}
	logf, err := os.Create(filepath.Join(s.dir, "postgres.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	// Durability settings off: the tests check the SQL, not the disk, and
	// fsync on a shared test machine costs seconds.
	cmd := s.command("postgres", "-D", data, "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=50")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ping(s.URL("postgres"))
		if err == nil {
			return nil
		}
		select {
		case <-exited:
		default:
			if time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
		}
		s.kill()
		log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
		return fmt.Errorf("postgres on port %d not ready: %v\n%s", s.port, err, log)
	}
}

// URL is the connection URL of database db on this server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// NewDatabase creates an empty database for t and returns its URL, so that
// tests sharing a server do not see each other's tables.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.dbCount++
	name := fmt.Sprintf("test_%d", s.dbCount)
	s.mu.Unlock()
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return s.URL(name)
}

// Stop stops the server and removes its files (idempotent).
func (s *Server) Stop() {
	s.kill()
	_ = os.RemoveAll(s.dir)
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	// SIGQUIT is PostgreSQL's immediate shutdown: no checkpoint, children
	// told to exit. The data is thrown away anyway.
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func ping(url string) error {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// shared is the one server of a test binary that calls Shared.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns one server for the whole test binary, launched on first
// use (each caller takes its own database with NewDatabase); the binary's
// TestMain calls StopShared after m.Run. A missing PostgreSQL fails t with
// how to install it: no test skips silently.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = Launch() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// StopShared stops the server Shared launched, if any.
func StopShared() {
	if shared.srv != nil {
		shared.srv.Stop()
	}
}

// Main runs a test binary's tests (its TestMain calls it) and then stops
// the server Shared launched.
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}
