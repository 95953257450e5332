//go:build deploy

// Package deploy tests what an operator deploys: the container image and
// the compose file. Run by `make test-deploy` (as root, with podman), which
// builds the image first and names it in STRANGER_IMAGE.
package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/strangerchat/stranger/internal/freeport"
)

// imageConfig is the part of `podman image inspect` the test runs.
type imageConfig struct {
	Size   int64
	Config struct {
		User       string
		Entrypoint []string
		Env        []string
		WorkingDir string
		Volumes    map[string]struct{}
	}
}

func image(t *testing.T) string {
	t.Helper()
	img := os.Getenv("STRANGER_IMAGE")
	if img == "" {
		t.Fatal("STRANGER_IMAGE is not set: run `make test-deploy`, which builds the image first")
	}
	return img
}

func podman(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("podman", args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// TestImageServesAMatch mounts the image's root file system and runs its
// entrypoint there, as its user with its environment, the way a container
// runtime would (starting a container does not work on these machines:
// crun refuses cgroups in hybrid mode); two WebSocket clients then get
// matched through it.
func TestImageServesAMatch(t *testing.T) {
	img := image(t)
	var inspect []imageConfig
	if err := json.Unmarshal([]byte(podman(t, "image", "inspect", img)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("inspect %s: %v", img, err)
	}
	ic := inspect[0]
	t.Logf("image %s: %.1f MB", img, float64(ic.Size)/1e6)
	if ic.Config.User == "" || strings.HasPrefix(ic.Config.User, "0") || ic.Config.User == "root" {
		t.Errorf("image user %q: want a non-root user", ic.Config.User)
	}
	if _, ok := ic.Config.Volumes["/data"]; !ok {
		t.Errorf("volumes %v: want /data", ic.Config.Volumes)
	}
	if len(ic.Config.Entrypoint) == 0 {
		t.Fatal("image has no entrypoint")
	}

	root := podman(t, "image", "mount", img)
	t.Cleanup(func() { _ = exec.Command("podman", "image", "unmount", img).Run() })
	for _, f := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd"} {
		if st, err := os.Stat(filepath.Join(root, f)); err != nil || st.Size() == 0 {
			t.Errorf("image lacks %s: %v", f, err)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "data")); err != nil || !st.IsDir() {
		t.Fatalf("image lacks /data: %v", err)
	}

	chroot := func(args ...string) *exec.Cmd {
		full := append([]string{"--userspec=" + ic.Config.User, root}, ic.Config.Entrypoint...)
		cmd := exec.Command("chroot", append(full, args...)...)
		cmd.Env = ic.Config.Env
		return cmd
	}
	out, err := chroot("--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "stranger ") || strings.Contains(string(out), "commit unknown") {
		t.Fatalf("--version in the image: %q, %v", out, err)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))

	// The image's user must be able to write its data directory (ACME
	// account and certificates live there).
	if out, err := exec.Command("chroot", "--userspec="+ic.Config.User, root, "/usr/local/bin/stranger", "--check-config").CombinedOutput(); err != nil {
		t.Fatalf("--check-config in the image: %s %v", out, err)
	}

	// A container runtime mounts the /data volume writable for the image's
	// user; the image's own mount here is read-only. A tmpfs owned by that
	// user stands in for the volume (the node keeps its SQLite store there).
	uid, gid, _ := strings.Cut(ic.Config.User, ":")
	if gid == "" {
		gid = uid
	}
	volume := filepath.Join(root, "data")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,mode=0700,uid="+uid+",gid="+gid, "tmpfs", volume).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs as the /data volume: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", volume).Run() }) // before the image's unmount (cleanups run last first)

	port := freeport.MustTCP(t)
	// The image keeps its data in /data (STRANGER_DATA_DIR), which its user
	// writes: the moderation store opens there. The raw clients below give
	// no proof of work.
	node := chroot("--addr", "127.0.0.1:"+strconv.Itoa(port), "--admin-addr", "", "--stun", "", "--pow-difficulty", "0")
	var logs strings.Builder
	node.Stdout, node.Stderr = &logs, &logs
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = node.Process.Signal(os.Interrupt)
		_ = node.Wait()
		if t.Failed() {
			t.Logf("node output:\n%s", logs.String())
		}
	})
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	var a, b *websocket.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, _, err = websocket.DefaultDialer.Dial(url, nil)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the image's node never accepted a WebSocket: %v", err)
	}
	defer a.Close()
	// The web app is embedded (make dist builds it first).
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<script") {
		t.Fatalf("GET / in the image: %s\n%.300s", resp.Status, page)
	}
	b, _, err = websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, c := range []*websocket.Conn{a, b} {
		if err := c.WriteJSON(map[string]any{"type": "join", "mode": "text", "seq": 1}); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []*websocket.Conn{a, b} {
		if got := awaitType(t, c, "matched"); got == nil {
			t.Fatalf("client %d never matched", i)
		}
	}
}

// awaitType reads frames until one of type typ (nil after 5 s).
func awaitType(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f map[string]any
		if err := c.ReadJSON(&f); err != nil {
			t.Logf("waiting for %s: %v", typ, err)
			return nil
		}
		if f["type"] == typ {
			return f
		}
	}
}
