//go:build netsim

// Package netsim proves NAT traversal on a simulated internet: network
// namespaces joined by veth pairs through a switch, routers with nftables
// NATs and a firewall, a Stranger node with a TURN relay on a "public"
// address, and real peers behind them. Needs root, iproute2 and nftables
// (scripts/deps.sh); run by `make test-netsim`. Every namespace is the
// test's own and is deleted when it ends, failed or not; no interface or
// address of the host is touched.
package netsim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/logbuf"
)

const (
	chromium  = "/usr/bin/chromium"
	serverIP  = "11.0.0.10" // the node and its relay. The "public" addresses exist only inside the test's own namespaces, joined by veths to each other and never to the host's interfaces, so no packet to them leaves the namespaces
	relayName = "relay.netsim.test"
	nodeName  = "chat.netsim.test"
	secret    = "netsim-turn-secret-0123456789"
)

// netsims counts the simulated internets of this process, so their
// namespaces have names of their own (subtests run one after another).
var netsims int

// netsim is one simulated internet.
type netsim struct {
	t      *testing.T
	prefix string
	names  []string // namespaces created, for cleanup
	dir    string
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func newNetsim(t *testing.T) *netsim {
	if os.Geteuid() != 0 {
		t.Fatal("test/netsim needs root (network namespaces, nftables): run `make test-netsim` as root")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: run scripts/deps.sh (Debian packages iproute2, nftables)", bin)
		}
	}
	netsims++
	n := &netsim{t: t, prefix: fmt.Sprintf("st%d%c-", os.Getpid()%100000, 'a'+netsims), dir: t.TempDir()}
	t.Cleanup(n.cleanup)
	n.ns("inet")
	n.exec("inet", "ip", "link", "add", "br0", "type", "bridge")
	n.exec("inet", "ip", "link", "set", "br0", "up")
	return n
}

func (n *netsim) name(short string) string { return n.prefix + short }

// ns creates a namespace with loopback up.
func (n *netsim) ns(short string) {
	run(n.t, "ip", "netns", "add", n.name(short))
	n.names = append(n.names, n.name(short))
	n.exec(short, "ip", "link", "set", "lo", "up")
}

func (n *netsim) exec(short string, args ...string) {
	n.t.Helper()
	run(n.t, "ip", append([]string{"netns", "exec", n.name(short)}, args...)...)
}

func (n *netsim) cleanup() {
	for i := len(n.names) - 1; i >= 0; i-- {
		// Deleting a namespace deletes its veths and with them their peers.
		_ = exec.Command("ip", "netns", "delete", n.names[i]).Run()
		_ = os.RemoveAll(filepath.Join("/etc/netns", n.names[i]))
	}
}

// link joins namespace a (interface ifA, address addrA) to b (ifB, addrB)
// with a veth pair made inside a, so no interface ever exists on the host.
func (n *netsim) link(a, ifA, addrA, b, ifB, addrB string) {
	n.exec(a, "ip", "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", n.name(b))
	if addrA != "" {
		n.exec(a, "ip", "addr", "add", addrA, "dev", ifA)
	}
	if addrB != "" {
		n.exec(b, "ip", "addr", "add", addrB, "dev", ifB)
	}
	n.exec(a, "ip", "link", "set", ifA, "up")
	n.exec(b, "ip", "link", "set", ifB, "up")
}

// public plugs a namespace into the switch with a public address.
func (n *netsim) public(short, addr string) {
	port := "p-" + short
	if len(port) > 15 {
		port = port[:15]
	}
	n.link("inet", port, "", short, "eth0", addr+"/24")
	n.exec("inet", "ip", "link", "set", port, "master", "br0")
}

// natKind is what a client's router does.
type natKind int

const (
	portPreserving natKind = iota // masquerade: keeps the source port, so STUN's answer works for every peer ("cone")
	symmetric                     // masquerade random,fully-random: a new port per destination
	firewall                      // port-preserving NAT that forwards only TCP to ports 443 and 5349
)

// client makes a router namespace on public address wan and a client
// namespace behind it on 10.0.<idx>.2.
func (n *netsim) client(short string, idx int, wan string, kind natKind) {
	r := short + "-r"
	n.ns(r)
	n.ns(short)
	n.public(r, wan)
	n.link(r, "eth1", fmt.Sprintf("10.0.%d.1/24", idx), short, "eth0", fmt.Sprintf("10.0.%d.2/24", idx))
	n.exec(short, "ip", "route", "add", "default", "via", fmt.Sprintf("10.0.%d.1", idx))
	n.exec(r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	masq := "masquerade"
	if kind == symmetric {
		masq = "masquerade random,fully-random"
	}
	// Unsolicited packets from outside are dropped before conntrack
	// confirms an entry for them. Without that, a peer's first check that
	// arrives before our own packet to it leaves an entry whose reply
	// tuple takes our port, and our NAT then maps our packet to a random
	// port: a cone NAT would act symmetric for that peer.
	forward := `iifname "eth0" ct state new drop`
	if kind == firewall {
		forward = `ct state established,related accept
		iifname "eth1" oifname "eth0" tcp dport { 443, 5349 } accept
		drop`
	}
	rules := fmt.Sprintf(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "eth0" %s
	}
}
table ip filter {
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "eth0" ct state new drop
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		%s
	}
}
`, masq, forward)
	f := filepath.Join(n.dir, r+".nft")
	if err := os.WriteFile(f, []byte(rules), 0o600); err != nil {
		n.t.Fatal(err)
	}
	n.exec(r, "nft", "-f", f)
	// The relay's name resolves only inside the client's namespace:
	// `ip netns exec` mounts /etc/netns/<ns>/hosts over /etc/hosts.
	etc := filepath.Join("/etc/netns", n.name(short))
	if err := os.MkdirAll(etc, 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte("127.0.0.1 localhost\n"+serverIP+" "+relayName+" "+nodeName+"\n"), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// start runs a long-lived process in a namespace until the test ends.
func (n *netsim) start(short string, env []string, name string, args ...string) *exec.Cmd {
	n.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.name(short), name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var logs logbuf.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if n.t.Failed() {
			n.t.Logf("%s in %s:\n%s", filepath.Base(name), short, logs.String())
		}
	})
	return cmd
}

// build compiles the commands the namespaces run (nothing is downloaded
// inside them).
func build(t *testing.T, dir string) (stranger, peer string) {
	t.Helper()
	stranger, peer = filepath.Join(dir, "stranger"), filepath.Join(dir, "peer")
	for _, b := range [][2]string{{stranger, "../../cmd/stranger"}, {peer, "./peer"}} {
		out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	return stranger, peer
}

// writeCA writes a CA and a certificate for the relay's name signed by it;
// peers trust the CA through SSL_CERT_FILE, as a browser trusts a public CA.
func writeCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netsim CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: nodeName}, DNSNames: []string{nodeName, relayName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string]*pem.Block{caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kb}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// result is one peer's report (test/netsim/peer).
type result struct {
	Name, LocalType, RemoteType, RelayProtocol, Local, Remote, Got string
	Ms                                                             int64
}

// call runs two peers in namespaces a and b until both have the other's
// message, and returns their reports.
// With browserA, side a is headless Chromium (driven by the peer command).
func (n *netsim) call(ctx context.Context, peer, caFile, ws, a, b string, browserA bool) (ra, rb result) {
	n.t.Helper()
	var wg sync.WaitGroup
	var errs [2]error
	var res [2]result
	for i, side := range []string{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"netns", "exec", n.name(side), peer, "-ws", ws, "-name", side, "-interest", a + "+" + b}
			if browserA && i == 0 {
				args = append(args, "-browser", chromium)
			}
			cmd := exec.CommandContext(ctx, "ip", args...)
			cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+caFile)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				errs[i] = fmt.Errorf("peer in %s: %v\n%s", side, err, stderr.String())
				return
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				if err := json.Unmarshal(sc.Bytes(), &res[i]); err == nil {
					return
				}
			}
			errs[i] = fmt.Errorf("peer in %s printed no result: %q", side, out)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			n.t.Fatal(err)
		}
	}
	for i, other := range []string{b, a} {
		if res[i].Got != "hello from "+other {
			n.t.Errorf("%s got %q, want the message of %s", res[i].Name, res[i].Got, other)
		}
	}
	return res[0], res[1]
}

// path describes the pair one side nominated.
func path(r result) string {
	s := fmt.Sprintf("%s %s/%s (%s ↔ %s)", r.Name, r.LocalType, r.RemoteType, r.Local, r.Remote)
	if r.RelayProtocol != "" {
		s += " relayed over " + r.RelayProtocol
	}
	return s + fmt.Sprintf(", %d ms", r.Ms)
}

func isDirect(r result) bool { return r.LocalType != "relay" && r.RemoteType != "relay" }

// TestTraversal: cone–cone goes direct, symmetric–symmetric through the
// relay, and a client whose network lets only TCP 443/5349 out through the
// relay over TLS; data flows both ways in each. Twice: with one binary on
// the public host (HTTPS, the embedded relay with TURN over TLS, the relay
// URLs the node builds), and with a plain node and `stranger turn` beside it
// (--turn-urls, the dedicated relay mode).
func TestTraversal(t *testing.T) {
	stranger, peer := build(t, t.TempDir())
	t.Run("one-binary", func(t *testing.T) { traversal(t, stranger, peer, true) })
	t.Run("dedicated-relay", func(t *testing.T) { traversal(t, stranger, peer, false) })
}

func traversal(t *testing.T, stranger, peer string, oneBinary bool) {
	n := newNetsim(t)
	caFile, certFile, keyFile := writeCA(t, n.dir)

	n.ns("srv")
	n.public("srv", serverIP)
	n.client("cone1", 1, "11.0.0.21", portPreserving)
	n.client("cone2", 2, "11.0.0.22", portPreserving)
	n.client("sym1", 3, "11.0.0.31", symmetric)
	n.client("sym2", 4, "11.0.0.32", symmetric)
	n.client("fw", 5, "11.0.0.41", firewall)

	node := []string{"--addr", serverIP + ":443", "--admin-addr", "", "--stun", "stun:" + serverIP + ":3478",
		"--turn-secret", secret, "--interest-timeout", "1m", "--max-conns-per-ip", "0",
		"--allowed-origins", "http://127.0.0.1:8000",
		// The peer command speaks protocol 1.0 plus matched.iceServers: no
		// proof of work (conformance tests it); reports and bans in the
		// test's directory.
		"--pow-difficulty", "0", "--data-dir", n.dir}
	relay := []string{"--turn-listen", serverIP + ":3478", "--turn-public-ip", serverIP, "--turn-secret", secret,
		"--tls-cert", certFile, "--tls-key", keyFile, "--turn-tls-listen", serverIP + ":5349",
		"--turn-relay-ports", "40000-40999"}
	ws := "ws://" + serverIP + ":443/ws"
	if oneBinary {
		// HTTPS and the relay from the same certificate; the node offers
		// turn:udp, turn:tcp, turns: by itself.
		n.start("srv", nil, stranger, append(node, relay...)...)
		ws = "wss://" + nodeName + ":443/ws"
	} else {
		n.start("srv", nil, stranger, append([]string{"turn", "--admin-addr", ""}, relay...)...)
		n.start("srv", nil, stranger, append(node, "--turn-urls", strings.Join([]string{
			"turn:" + serverIP + ":3478?transport=udp",
			"turn:" + serverIP + ":3478?transport=tcp",
			"turns:" + relayName + ":5349?transport=tcp",
		}, ","))...)
	}
	waitTCP(t, n, "cone1", serverIP+":443")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	a, b := n.call(ctx, peer, caFile, ws, "cone1", "cone2", false)
	t.Logf("cone–cone: %s | %s", path(a), path(b))
	if !isDirect(a) || !isDirect(b) {
		t.Errorf("cone–cone went through the relay: %+v / %+v", a, b)
	}

	a, b = n.call(ctx, peer, caFile, ws, "sym1", "sym2", false)
	t.Logf("symmetric–symmetric: %s | %s", path(a), path(b))
	if isDirect(a) || isDirect(b) {
		t.Errorf("symmetric–symmetric claims a direct path: %+v / %+v", a, b)
	}

	a, b = n.call(ctx, peer, caFile, ws, "fw", "cone1", false)
	t.Logf("firewalled–cone: %s | %s", path(a), path(b))
	if a.LocalType != "relay" || a.RelayProtocol != "tls" {
		t.Errorf("firewalled client: local %s over %q, want relay over tls", a.LocalType, a.RelayProtocol)
	}

	if !oneBinary {
		return
	}
	// The same cone–cone call with headless Chromium on one side.
	a, b = n.call(ctx, peer, caFile, ws, "cone1", "cone2", true)
	t.Logf("cone–cone, Chromium ↔ pion: %s | %s", path(a), path(b))
	if !isDirect(a) || !isDirect(b) {
		t.Errorf("cone–cone with Chromium went through the relay: %+v / %+v", a, b)
	}
}

// waitTCP waits until addr accepts a TCP connection from namespace short.
func waitTCP(t *testing.T, n *netsim, short, addr string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := exec.Command("ip", "netns", "exec", n.name(short), "bash", "-c", "exec 3<>/dev/tcp/"+host+"/"+port).Run()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reachable from %s: %v", addr, short, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
