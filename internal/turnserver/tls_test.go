package turnserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// testCert is a certificate for "turn.test" and the pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "turn.test"},
		DNSNames:     []string{"turn.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// tlsClient is a pion TURN client whose transport is one TLS connection to
// the server's turns: port, checking the certificate against roots.
func tlsClient(t *testing.T, s *Server, roots *x509.CertPool, cr cred) (*turn.Client, error) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(s.TLSPort())
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "turn.test", RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr,
		Username: cr.user, Password: cr.pass, Realm: s.cfg.Realm,
		Conn: turn.NewSTUNConn(conn), RTO: 200 * time.Millisecond,
	})
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	if err := c.Listen(); err != nil {
		return nil, err
	}
	return c, nil
}

// TestRelayOverTLS allocates over TURN-over-TLS and relays both ways: the
// path of a client whose network lets only TLS out.
func TestRelayOverTLS(t *testing.T) {
	cert, roots := testCert(t)
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	cfg.TLS = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }}
	s := startServer(t, cfg)
	if s.TLSPort() == 0 || s.TLSPort() == s.Port() {
		t.Fatalf("TLS port %d (plain port %d)", s.TLSPort(), s.Port())
	}
	c, err := tlsClient(t, s, roots, fresh("s_tls"))
	if err != nil {
		t.Fatalf("TURN over TLS client: %v", err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TLS: %v", err)
	}
	p := peer(t)
	if _, err := relay.WriteTo([]byte("to peer"), p.LocalAddr()); err != nil {
		t.Fatalf("write via relay: %v", err)
	}
	msg, from := readWithin(t, p, 5*time.Second)
	if msg != "to peer" {
		t.Fatalf("peer got %q", msg)
	}
	if _, err := p.WriteTo([]byte("to client"), from); err != nil {
		t.Fatal(err)
	}
	if msg, _ := readWithin(t, relay, 5*time.Second); msg != "to client" {
		t.Errorf("client got %q over TLS", msg)
	}

	// The TLS port speaks only TLS: a plain TURN client gets nothing.
	plain, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.TLSPort()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pc, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: plain.RemoteAddr().String(), TURNServerAddr: plain.RemoteAddr().String(),
		Conn: turn.NewSTUNConn(plain), RTO: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := pc.Listen(); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.SendBindingRequest(); err == nil {
		t.Error("a plain STUN binding on the TLS port was answered")
	}
}

// TestTLSRefusesUntrustedName: the certificate is checked by name, as a
// browser does for turns: URLs.
func TestTLSRefusesUntrustedName(t *testing.T) {
	cert, roots := testCert(t)
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// pion logs the failed handshake on its own goroutine, maybe after the
	// test has ended: not into the test's log.
	s, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.TLSPort()), &tls.Config{ServerName: "other.test", RootCAs: roots})
	if err == nil {
		t.Fatal("TLS handshake for a name the certificate does not cover succeeded")
	}
}

func TestTLSNeedsACertificate(t *testing.T) {
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	if err := cfg.Validate(); err == nil {
		t.Fatal("TLSListen without a certificate validated")
	}
}

func TestURLsOrder(t *testing.T) {
	got := URLs("203.0.113.10", 3478, "chat.example.org", 5349)
	want := []string{
		"turn:203.0.113.10:3478?transport=udp",
		"turn:203.0.113.10:3478?transport=tcp",
		"turns:chat.example.org:5349?transport=tcp",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("URLs = %q, want %q", got, want)
	}
	if got := URLs("2001:db8::1", 3478, "", 0); !reflect.DeepEqual(got, []string{"turn:[2001:db8::1]:3478?transport=udp", "turn:[2001:db8::1]:3478?transport=tcp"}) {
		t.Fatalf("without TLS: %q", got)
	}
}
