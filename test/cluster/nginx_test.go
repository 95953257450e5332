package cluster_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/freeport"
	"github.com/strangerchat/stranger/internal/redistest"
)

// nginxInstall is the hint given when nginx is missing.
const nginxInstall = "install nginx: apt-get install -y nginx"

// startNginx runs nginx in the foreground with deploy/nginx.conf, its
// upstream rewritten to ports and its listen line to a free port, and
// returns that port once nginx accepts connections.
func startNginx(t *testing.T, ports []int) int {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Fatalf("nginx not found (%v): %s", err, nginxInstall)
		}
		bin = "/usr/sbin/nginx"
	}
	src, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nginx.conf"))
	if err != nil {
		t.Fatalf("deploy/nginx.conf: %v", err)
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freeport.MustTCP(t)
		conf, err := rewriteNginxConf(string(src), port, ports)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stranger.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		// One process (no master, no workers): a SIGKILL at the end of the
		// test leaves no orphaned worker holding the port.
		main := fmt.Sprintf(`master_process off;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/stranger.conf;
}
`, dir)
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
			t.Fatal(err)
		}
		p := startProc(t, "nginx", filepath.Join(dir, fmt.Sprintf("nginx-%d.out", attempt)), bin,
			"-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
			"-e", filepath.Join(dir, "error.log"),
			"-g", fmt.Sprintf("daemon off; pid %s/nginx.pid; error_log %s/error.log;", dir, dir))
		t.Cleanup(func() {
			if t.Failed() {
				b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Logf("---- nginx error.log ----\n%s", b)
			}
		})
		deadline := time.Now().Add(waitBound)
		for {
			if p.exited() {
				b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				if attempt < 3 && strings.Contains(string(b), "Address already in use") {
					break
				}
				t.Fatalf("nginx exited: %v\n%s", p.waitErr, b)
			}
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
				c.Close()
				return port
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx not listening on %d within %v", port, waitBound)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

var (
	upstreamServer = regexp.MustCompile(`(?m)^(\s*server\s+)127\.0\.0\.1:\d+(\s.*;)$`)
	listenLine     = regexp.MustCompile(`(?m)^(\s*listen\s+)\d+;$`)
)

// rewriteNginxConf changes only the upstream's server lines and the listen
// line of deploy/nginx.conf.
func rewriteNginxConf(src string, listen int, ports []int) (string, error) {
	if n := len(upstreamServer.FindAllString(src, -1)); n != len(ports) {
		return "", fmt.Errorf("deploy/nginx.conf has %d upstream server lines, want %d", n, len(ports))
	}
	if n := len(listenLine.FindAllString(src, -1)); n != 1 {
		return "", fmt.Errorf("deploy/nginx.conf has %d plain listen lines, want 1", n)
	}
	i := 0
	out := upstreamServer.ReplaceAllStringFunc(src, func(line string) string {
		m := upstreamServer.FindStringSubmatch(line)
		line = m[1] + "127.0.0.1:" + strconv.Itoa(ports[i]) + m[2]
		i++
		return line
	})
	out = listenLine.ReplaceAllString(out, "${1}127.0.0.1:"+strconv.Itoa(listen)+";")
	return out, nil
}

// TestNginxResumeAfterNodeKilled: clients on nginx's port (deploy/nginx.conf
// in front of three nodes) are matched and chat; the node holding one of
// them is killed with SIGKILL; the client reconnects through nginx with its
// resume token and keeps its chat.
func TestNginxResumeAfterNodeKilled(t *testing.T) {
	t.Parallel()
	rd := redistest.StartServer(t)
	var nodes []*node
	var ports []int
	for i := 1; i <= 3; i++ {
		n := startNode(t, "node"+strconv.Itoa(i), rd.URL(), "--trusted-proxies", "127.0.0.1/32")
		nodes = append(nodes, n)
		ports = append(ports, n.port)
	}
	lb := "ws://127.0.0.1:" + strconv.Itoa(startNginx(t, ports)) + "/ws"

	// Which node did each socket land on? The one whose connected gauge
	// went up.
	counts := func() []int {
		c := make([]int, len(nodes))
		for i, n := range nodes {
			c[i] = connected(n)
		}
		return c
	}
	landed := func(c *client, before []int) *node {
		t.Helper()
		var at *node
		ok := waitFor(context.Background(), 5*time.Second, func() bool {
			now := counts()
			at = nil
			for i := range nodes {
				if now[i] == before[i]+1 && at == nil {
					at = nodes[i]
				}
			}
			return at != nil
		})
		if !ok {
			t.Fatalf("%s: no node counts its connection (before %v, now %v)", c.name, before, counts())
		}
		return at
	}
	before := counts()
	a := dial(t, "A", lb)
	nodeA := landed(a, before)
	before = counts()
	b := dial(t, "B", lb)
	nodeB := landed(b, before)
	t.Logf("through nginx: A on %s, B on %s", nodeA.name, nodeB.name)

	room := pair(t, a, b)
	chat(t, a, b, "hi via nginx")
	chat(t, b, a, "hi back")

	nodeA.kill()
	if err := a.waitEnded(5 * time.Second); err != nil {
		t.Fatalf("A's socket through nginx after its node died: %v", err)
	}
	var partner *client = b
	if nodeB == nodeA { // least_conn should have spread them; cope if not
		if err := b.waitEnded(5 * time.Second); err != nil {
			t.Fatalf("B's socket through nginx after its node died: %v", err)
		}
		b.resume(lb)
	}
	w := a.resume(lb)
	if w.Str("state") != "chatting" {
		t.Fatalf("A resumed through nginx: state %q, want chatting: %s", w.Str("state"), w)
	}
	if ch, _ := w["chat"].(map[string]any); ch == nil || ch["room"] != room {
		t.Fatalf("A resumed through nginx: chat %v, want room %q", w["chat"], room)
	}
	chat(t, a, partner, "A is back")
	chat(t, partner, a, "welcome back")
	partner.quiet(200 * time.Millisecond)

	// --trusted-proxies: the node sees nginx's X-Forwarded-For, and a fresh pair
	// through nginx still works with one node down.
	e := dial(t, "E", lb)
	f := dial(t, "F", lb)
	pair(t, e, f)
	chat(t, e, f, "new pair with a node down")
}
