package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/strangerchat/stranger/internal/freeport"
)

// TestMain lets a test start this package's main as a process of its own:
// the test binary, run again with STRANGER_TEST_RUN_MAIN=1, is stranger.
func TestMain(m *testing.M) {
	if os.Getenv("STRANGER_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// Issue 12 row 8: a node started the documented way, with the TURN secret
// in a file, has no secret in its argv (what ps and /proc/PID/cmdline show
// every user of the host), and the TURN credentials it hands out are made
// with the file's secret.
func TestTURNSecretFromAFile(t *testing.T) {
	const secret = "s3cret-from-a-file-0123456789"
	dir := t.TempDir()
	path := filepath.Join(dir, "turn-secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	var cmd *exec.Cmd
	var addr string
	var stderr bytes.Buffer
	for attempt := 0; ; attempt++ {
		addr = "127.0.0.1:" + strconv.Itoa(freeport.MustTCP(t))
		stderr.Reset()
		cmd = exec.Command(self, "--addr", addr, "--admin-addr", "", "--stun", "", "--pow-difficulty", "0", "--data-dir", dataDir,
			"--turn-urls", "turn:127.0.0.1:3478?transport=udp", "--turn-secret-file", path)
		cmd.Env = append(os.Environ(), "STRANGER_TEST_RUN_MAIN=1")
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if waitHealthy(addr, 10*time.Second) {
			break
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if attempt == 2 {
			t.Fatalf("node did not come up:\n%s", stderr.String())
		}
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})

	argv, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if bytes.Contains(argv, []byte(secret)) {
		t.Fatalf("the secret is on the command line: %q", argv)
	}

	// TURN credentials come with welcome (protocol 1.0) or with matched
	// (1.1): pair two clients and look at both.
	var creds []iceServer
	var conns []*websocket.Conn
	for range 2 {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		creds = append(creds, readUntil(t, c, "welcome").ICEServers...)
	}
	for _, c := range conns {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","mode":"text"}`)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		creds = append(creds, readUntil(t, c, "matched").ICEServers...)
	}
	checked := 0
	for _, s := range creds {
		if s.Username == "" {
			continue
		}
		mac := hmac.New(sha1.New, []byte(secret))
		mac.Write([]byte(s.Username))
		if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); s.Credential != want {
			t.Fatalf("credential for %q is %q, want HMAC-SHA1 with the file's secret %q", s.Username, s.Credential, want)
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("no TURN credential handed out: %+v", creds)
	}
}

type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
}

type frame struct {
	Type       string      `json:"type"`
	ICEServers []iceServer `json:"iceServers"`
}

func readUntil(t *testing.T, c *websocket.Conn, typ string) frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

func waitHealthy(addr string, d time.Duration) bool {
	c := http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := c.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
	}
	return false
}
