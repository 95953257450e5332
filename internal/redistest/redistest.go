// Package redistest starts a real redis-server for tests: on a free loopback
// port, without persistence, in a temporary directory, stopped when the test
// ends. Tests of the Redis backend never use a fake Redis: what they check is
// the behaviour of real Lua scripts, pub/sub and reconnects.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/freeport"
)

// Install is the hint given when redis-server is missing.
const Install = "install redis-server: apt-get install -y redis-server"

// Server is a running redis-server.
type Server struct {
	bin  string
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a redis-server for t and returns its URL and a stop function
// (also run by t.Cleanup). It fails the test if redis-server is not installed.
func Start(t testing.TB) (url string, stop func()) {
	t.Helper()
	s := StartServer(t)
	return s.URL(), s.Stop
}

// StartServer is Start, returning the Server so the test can Restart it.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s, err := Launch(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Launch starts a redis-server working in dir, for a TestMain that shares
// one server among the tests of a package; the caller stops it.
func Launch(dir string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (%w): %s", err, Install)
	}
	s := &Server{bin: bin, dir: dir}
	if s.port, err = freeport.TCP(); err != nil {
		return nil, fmt.Errorf("redistest: free port: %w", err)
	}
	if err := s.start(); err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	return s, nil
}

// URL is redis://127.0.0.1:port/0.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Addr is 127.0.0.1:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *Server) start() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--protected-mode", "yes",
	)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(s.Addr()); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d not ready: %v\n%s", s.port, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server (idempotent). Its data is gone.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Restart stops the server and starts a new, empty one on the same port
// after down has passed: a Redis outage as clients see it.
func (s *Server) Restart(down time.Duration) error {
	s.Stop()
	time.Sleep(down)
	if err := s.start(); err != nil {
		return fmt.Errorf("redistest: restart: %w", err)
	}
	return nil
}

// ping speaks just enough RESP to see the server answer PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}
