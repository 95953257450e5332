// Package cluster_test runs real stranger processes (built once by TestMain)
// against a real redis-server, and a real nginx in front of them: the
// failure tests of a multi-node deployment that need processes to kill.
package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/freeport"
	"github.com/strangerchat/stranger/internal/pgtest"
	"github.com/strangerchat/stranger/test/wsclient"
)

// binary is the stranger executable TestMain built.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stranger-cluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "stranger")
	// The package path resolves from the module this test lives in.
	build := exec.Command("go", "build", "-o", binary, "github.com/strangerchat/stranger/cmd/stranger")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cmd/stranger:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.StopShared()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// waitBound bounds every wait of these tests: long enough for a loaded
// 2-core machine, short enough that a hang fails fast.
const waitBound = 15 * time.Second

// proc is a child process whose output goes to a file, killed and reaped
// when the test ends; its output is printed if the test failed.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once Wait returned
	waitErr error
}

func startProc(t *testing.T, name, logPath string, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("%s: log file: %v", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("%s: start %s: %v", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("---- %s output (%s) ----\n%s", name, logPath, b)
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// node is one stranger process.
type node struct {
	*proc
	port int
}

func (n *node) base() string { return "http://127.0.0.1:" + strconv.Itoa(n.port) }
func (n *node) ws() string   { return "ws://127.0.0.1:" + strconv.Itoa(n.port) + "/ws" }

// startNode starts a stranger node on redisURL and waits for /readyz 200. A
// port taken between picking and binding is retried with another one.
func startNode(t *testing.T, name, redisURL string, extra ...string) *node {
	t.Helper()
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freeport.MustTCP(t)
		args := append([]string{
			"--addr", "127.0.0.1:" + strconv.Itoa(port),
			"--admin-addr", "",
			"--redis", redisURL,
			"--database", deploymentDatabase(t, redisURL),
			"--data-dir", dir,
			"--max-conns-per-ip", "0",
			"--conn-rate", "0", "--max-waiting-per-ip", "0", "--next-rate", "0",
			"--public-metrics", // connected() reads the gauge on the node's own port
			"--stun", "",
			"--pow-difficulty", "0",
			"--resume-grace", "5s",
			"--log-format", "json",
			"--log-level", "debug",
		}, extra...)
		n := &node{proc: startProc(t, name, filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, attempt)), binary, args...), port: port}
		err := waitReady(n, waitBound)
		if err == nil {
			return n
		}
		if n.exited() && attempt < 3 {
			b, _ := os.ReadFile(n.logPath)
			if bytes.Contains(b, []byte("address already in use")) {
				continue
			}
		}
		t.Fatalf("%s: %v", name, err)
	}
}

// databases holds one PostgreSQL database per deployment (per Redis): the
// nodes of one deployment share it, as a node refuses to join others
// without it.
var databases struct {
	sync.Mutex
	byRedis map[string]string
}

func deploymentDatabase(t *testing.T, redisURL string) string {
	t.Helper()
	databases.Lock()
	defer databases.Unlock()
	if db, ok := databases.byRedis[redisURL]; ok {
		return db
	}
	if databases.byRedis == nil {
		databases.byRedis = map[string]string{}
	}
	db := pgtest.Shared(t).NewDatabase(t)
	databases.byRedis[redisURL] = db
	return db
}

// readyz returns the status of GET /readyz (0 if the request failed).
func readyz(base string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func waitReady(n *node, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if n.exited() {
			return fmt.Errorf("exited before ready: %v", n.waitErr)
		}
		code := readyz(n.base())
		if code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not 200 within %v (last %d)", d, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connected is the node's own count of live sessions (its
// stranger_sessions_connected gauge), -1 if unreadable.
func connected(n *node) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(n.base() + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "stranger_sessions_connected "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int(f)
		}
	}
	return -1
}

// logLines returns the JSON log lines of a node whose msg contains sub.
func logLines(t *testing.T, n *node, sub string) []string {
	t.Helper()
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		t.Fatalf("%s: read log: %v", n.name, err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		var m struct{ Msg string }
		if json.Unmarshal([]byte(l), &m) == nil && strings.Contains(m.Msg, sub) {
			out = append(out, l)
		}
	}
	return out
}

// frame is a decoded server frame.
type frame = wsclient.Frame

// client is a wsclient.Client bound to a test: it fails the test on an
// error and logs every frame in and out.
type client struct {
	t    *testing.T
	name string
	c    *wsclient.Client
}

func dial(t *testing.T, name, wsURL string) *client {
	t.Helper()
	c := &client{t: t, name: name}
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	wc, err := wsclient.Connect(ctx, wsURL, wsclient.Options{Log: c.logf})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c.c = wc
	t.Cleanup(func() { wc.Conn().Release() })
	c.logf("<- %s", wc.Welcome())
	return c
}

func (c *client) logf(format string, args ...any) {
	c.t.Logf("%s %s "+format, append([]any{time.Now().Format("15:04:05.000"), c.name}, args...)...)
}

// next returns the next frame; it fails the test on a timeout or when the
// socket ended, and checks that server seq has no gaps.
func (c *client) next(d time.Duration) frame {
	c.t.Helper()
	f, err := c.tryNext(d)
	if err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	return f
}

func (c *client) tryNext(d time.Duration) (frame, error) {
	f, err := c.c.Conn().NextWithin(d)
	if f != nil {
		c.logf("<- %s", f)
	}
	return f, err
}

// expect takes the next frame and fails unless it has type typ.
func (c *client) expect(typ string) frame {
	c.t.Helper()
	f := c.next(waitBound)
	if f.Type() != typ {
		c.t.Fatalf("%s: got %s, want %q", c.name, f, typ)
	}
	return f
}

// quiet fails if a frame arrives or the socket ends within d.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	f, err := c.tryNext(d)
	if f != nil {
		c.t.Fatalf("%s: expected nothing, got %s", c.name, f)
	}
	if errors.Is(err, wsclient.ErrClosed) {
		c.t.Fatalf("%s: expected nothing: %v", c.name, err)
	}
}

// send numbers m, keeps it for a resume and writes it. A write error is not
// fatal: the frame is re-sent by the next resume.
func (c *client) send(m map[string]any) {
	c.t.Helper()
	if _, err := c.c.Send(m); err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
}

// resume reconnects to wsURL with the resume token and the highest seq
// received, checks that the session was resumed and re-sends the frames the
// server had not processed.
func (c *client) resume(wsURL string) frame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	res, err := c.c.Resume(ctx, wsURL)
	if err != nil {
		c.t.Fatalf("%s: resume: %v", c.name, err)
	}
	conn := c.c.Conn()
	c.t.Cleanup(conn.Release)
	c.logf("<- %s", res.Welcome)
	return res.Welcome
}

// waitEnded waits until the server side of the socket is gone.
func (c *client) waitEnded(d time.Duration) error {
	select {
	case <-c.c.Conn().Done():
		return nil
	case <-time.After(d):
		return errors.New("socket still open")
	}
}

// pair makes a and b join in text mode and returns the room once both are
// matched (each may get `waiting` first).
func pair(t *testing.T, a, b *client) string {
	t.Helper()
	a.send(map[string]any{"type": "join", "mode": "text"})
	a.expect("waiting")
	b.send(map[string]any{"type": "join", "mode": "text"})
	mb := expectMatched(b)
	ma := a.expect("matched")
	if ma.Str("room") != mb.Str("room") || ma.Str("room") == "" {
		t.Fatalf("matched into different rooms: %s / %s", ma, mb)
	}
	return ma.Str("room")
}

// expectMatched takes frames until `matched`, allowing one `waiting` first.
func expectMatched(c *client) frame {
	c.t.Helper()
	f := c.next(waitBound)
	if f.Type() == "waiting" {
		f = c.next(waitBound)
	}
	if f.Type() != "matched" {
		c.t.Fatalf("%s: got %s, want matched", c.name, f)
	}
	return f
}

// chat sends text from one client and checks the other receives it.
func chat(t *testing.T, from, to *client, text string) {
	t.Helper()
	from.send(map[string]any{"type": "chat", "text": text})
	f := to.expect("chat")
	if f.Str("text") != text {
		t.Fatalf("%s got chat %s, want text %q", to.name, f, text)
	}
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
