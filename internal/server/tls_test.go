package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/turn/v5"
	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/certs/pebbletest"
	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/freeport"
	"github.com/strangerchat/stranger/internal/pgtest"
	"github.com/strangerchat/stranger/internal/redistest"
)

const domain = "chat.stranger.test"

// TestAutomaticHTTPS: a node told only its domain gets its certificate
// from a real ACME server (Pebble), serves the page over HTTPS with HSTS,
// redirects plain HTTP, takes the WebSocket over wss:// and offers its
// relay as turn: UDP, turn: TCP and turns: with that name, in that order;
// the turns: port presents the same certificate. The client trusts only
// Pebble's root.
func TestAutomaticHTTPS(t *testing.T) {
	httpsPort, httpPort := freeport.MustTCP(t), freeport.MustTCP(t)
	pebble := pebbletest.Start(t, httpPort, httpsPort)
	rootFile := filepath.Join(t.TempDir(), "pebble-server-root.pem")
	if err := os.WriteFile(rootFile, pebble.ServerRootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c := testConfig()
	c.Addr = "127.0.0.1:" + strconv.Itoa(httpsPort)
	c.HTTPAddr = "127.0.0.1:" + strconv.Itoa(httpPort)
	c.TLSDomains = []string{domain}
	c.ACMECA, c.ACMECARoot, c.ACMEEmail = pebble.Directory, rootFile, "ops@stranger.test"
	c.DataDir = t.TempDir()
	c.TURNListen, c.TURNTLSListen, c.TURNPublicIP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1"
	c.TURNSecret, c.TURNAllowLoopback = "tls-test-secret-0123456789", true
	s := start(t, c)

	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, p, _ := net.SplitHostPort(addr)
		return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+p) // the domain is this host
	}
	trust := &tls.Config{RootCAs: pebble.IssuedRoots()}
	client := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{DialContext: dial, TLSClientConfig: trust},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := "https://" + domain + ":" + strconv.Itoa(httpsPort)
	deadline := time.Now().Add(90 * time.Second)
	var resp *http.Response
	for {
		var err error
		resp, err = client.Get(base + "/healthz")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS with a certificate from Pebble: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("GET /healthz over HTTPS: %s %q", resp.Status, body)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("no HSTS header: %q", got)
	}
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].DNSNames[0] != domain {
		t.Errorf("certificate for %v", resp.TLS.PeerCertificates[0].DNSNames)
	}

	// Plain HTTP redirects to the same path on HTTPS.
	resp, err := client.Get("http://" + domain + ":" + strconv.Itoa(httpPort) + "/some/path?x=1")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if want := base + "/some/path?x=1"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %s to %q, want 301 to %q", resp.Status, resp.Header.Get("Location"), want)
	}

	// The WebSocket over wss://, and the relay URLs it is offered.
	// (TURN URLs come with matched, protocol 1.1.)
	d := websocket.Dialer{NetDialContext: dial, TLSClientConfig: trust, HandshakeTimeout: 5 * time.Second}
	m := matchedICE(t, func() (*websocket.Conn, error) {
		ws, _, err := d.Dial("wss://"+domain+":"+strconv.Itoa(httpsPort)+"/ws", nil)
		return ws, err
	})
	hp := "127.0.0.1:" + strconv.Itoa(s.TURNPort())
	want := []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp",
		"turns:" + domain + ":" + strconv.Itoa(s.TURNTLSPort()) + "?transport=tcp"}
	if got := m.urls; !reflect.DeepEqual(got, want) {
		t.Errorf("ICE server URLs %q, want %q", got, want)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(s.TURNTLSPort()),
		&tls.Config{RootCAs: pebble.IssuedRoots(), ServerName: domain})
	if err != nil {
		t.Fatalf("TURN over TLS with the ACME certificate: %v", err)
	}
	_ = conn.Close()
}

// writePair writes a self-signed certificate for name and its key into dir.
func writePair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestCertificateFilesReload: with --tls-cert the node serves that
// certificate, and after ReloadCertificates (SIGHUP) the new one, on HTTPS
// and on TURN over TLS alike.
func TestCertificateFilesReload(t *testing.T) {
	dir := t.TempDir()
	c := testConfig()
	c.TLSCert, c.TLSKey = writePair(t, dir, "old.stranger.test")
	c.TURNListen, c.TURNTLSListen, c.TURNPublicIP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1"
	c.TURNSecret = "tls-test-secret-0123456789"
	s := start(t, c)
	name := func(addr string) string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the name only
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].DNSNames[0]
	}
	turns := "127.0.0.1:" + strconv.Itoa(s.TURNTLSPort())
	if a, b := name(s.Addr()), name(turns); a != "old.stranger.test" || b != a {
		t.Fatalf("serving %q on HTTPS and %q on TURN over TLS", a, b)
	}
	writePair(t, dir, "new.stranger.test")
	if err := s.ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	if a, b := name(s.Addr()), name(turns); a != "new.stranger.test" || b != a {
		t.Fatalf("after reload: %q on HTTPS and %q on TURN over TLS", a, b)
	}
}

// TestTURNSharesTheHTTPSPort: with --turn-tls-listen equal to --addr, one
// port serves the page over HTTPS and TURN over TLS, and turns: names it.
func TestTURNSharesTheHTTPSPort(t *testing.T) {
	c := testConfig()
	c.TLSCert, c.TLSKey = writePair(t, t.TempDir(), "shared.stranger.test")
	c.Addr = "127.0.0.1:" + strconv.Itoa(freeport.MustTCP(t))
	c.TURNListen, c.TURNTLSListen, c.TURNPublicIP = "127.0.0.1:0", c.Addr, "127.0.0.1"
	c.TURNSecret, c.TURNAllowLoopback = "tls-test-secret-0123456789", true
	s := start(t, c)
	if s.TURNTLSPort() != port(t, s.Addr()) {
		t.Fatalf("TURN over TLS on %d, HTTPS on %s", s.TURNTLSPort(), s.Addr())
	}
	insecure := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test's own self-signed certificate

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: insecure}}
	resp, err := client.Get("https://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS on the shared port: %s", resp.Status)
	}

	// The relay honours credentials of a chat in progress (protocol 1.1).
	m := matchedICE(t, func() (*websocket.Conn, error) {
		ws, _, err := (&websocket.Dialer{TLSClientConfig: insecure}).Dial("wss://"+s.Addr()+"/ws", nil)
		return ws, err
	})
	conn, err := tls.Dial("tcp", s.Addr(), insecure)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: s.Addr(), TURNServerAddr: s.Addr(),
		Username: m.user, Password: m.pass, Conn: turn.NewSTUNConn(conn), RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Listen(); err != nil {
		t.Fatal(err)
	}
	alloc, err := tc.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TLS on the HTTPS port: %v", err)
	}
	_ = alloc.Close()

	want := "turns:shared.stranger.test:" + strconv.Itoa(port(t, s.Addr())) + "?transport=tcp"
	if urls := m.urls; len(urls) != 3 || urls[2] != want {
		t.Fatalf("URLs %q, want the third %q", urls, want)
	}
}

// callICE is what matched carries for one side of a chat: the URLs of its
// iceServers and the TURN credential.
type callICE struct {
	urls       []string
	user, pass string
}

// matchedICE opens two sessions with dial, matches them and returns the
// first one's matched.iceServers (protocol 1.1: TURN comes with the match).
// The connections stay open, so the chat lasts, until the test ends.
func matchedICE(t *testing.T, dial func() (*websocket.Conn, error)) callICE {
	t.Helper()
	var conns []*websocket.Conn
	for range 2 {
		ws, err := dial()
		if err != nil {
			t.Fatalf("wss: %v", err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var w struct{ Type string }
		if err := ws.ReadJSON(&w); err != nil || w.Type != "welcome" {
			t.Fatalf("welcome over wss: %+v %v", w, err)
		}
		if err := ws.WriteJSON(map[string]any{"type": "join", "seq": 1}); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, ws)
	}
	for {
		var m struct {
			Type       string
			ICEServers []struct {
				URLs       []string `json:"urls"`
				Username   string   `json:"username"`
				Credential string   `json:"credential"`
			} `json:"iceServers"`
		}
		if err := conns[0].ReadJSON(&m); err != nil {
			t.Fatalf("waiting for matched: %v", err)
		}
		if m.Type != "matched" {
			continue
		}
		var c callICE
		for _, is := range m.ICEServers {
			c.urls = append(c.urls, is.URLs...)
			if is.Username != "" {
				c.user, c.pass = is.Username, is.Credential
			}
		}
		return c
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestAutomaticHTTPSSharedInRedis: two nodes on one Redis (--redis, no
// --data-dir) with the same --tls-domain get one certificate from the CA
// and both serve it; the certificate is kept in Redis under the
// deployment's prefix. Pebble calls back only on the first node's ports,
// so whichever node asks, the first answers the challenge from Redis.
func TestAutomaticHTTPSSharedInRedis(t *testing.T) {
	rs := redistest.StartServer(t)
	httpsPort, httpPort := freeport.MustTCP(t), freeport.MustTCP(t)
	pebble := pebbletest.Start(t, httpPort, httpsPort)
	rootFile := filepath.Join(t.TempDir(), "pebble-server-root.pem")
	if err := os.WriteFile(rootFile, pebble.ServerRootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	database := pgtest.Shared(t).NewDatabase(t) // several nodes share one (moderation)
	node := func(https, http int) config.Config {
		c := testConfig()
		c.Addr = "127.0.0.1:" + strconv.Itoa(https)
		c.HTTPAddr = "127.0.0.1:" + strconv.Itoa(http)
		c.TLSDomains = []string{domain}
		c.ACMECA, c.ACMECARoot, c.ACMEEmail = pebble.Directory, rootFile, "ops@stranger.test"
		c.Redis = rs.URL()
		c.Database = database
		return c
	}
	otherHTTPS := freeport.MustTCP(t)
	start(t, node(httpsPort, httpPort))
	start(t, node(otherHTTPS, freeport.MustTCP(t)))

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, p, _ := net.SplitHostPort(addr)
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+p)
		},
		TLSClientConfig: &tls.Config{RootCAs: pebble.IssuedRoots()},
	}}
	deadline := time.Now().Add(90 * time.Second)
	var serials []string
	for _, p := range []int{httpsPort, otherHTTPS} {
		for {
			resp, err := client.Get("https://" + domain + ":" + strconv.Itoa(p) + "/healthz")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("port %d: %s", p, resp.Status)
				}
				serials = append(serials, resp.TLS.PeerCertificates[0].SerialNumber.String())
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("port %d: no HTTPS with a certificate from Pebble: %v", p, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	if serials[0] != serials[1] {
		t.Errorf("the nodes serve different certificates: %v", serials)
	}
	if n := pebble.Finalized(); n != 1 {
		t.Errorf("Pebble issued %d certificates, want 1", n)
	}
	check := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer check.Close()
	keys, err := check.ZRange(context.Background(), "st:cert:index", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/"+domain+".crt") }) {
		t.Errorf("no certificate under st:cert: in Redis; keys %q", keys)
	}
}
