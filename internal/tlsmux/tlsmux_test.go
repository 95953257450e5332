package tlsmux

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"mux.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func startMux(t *testing.T, timeout time.Duration) *Mux {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}), timeout)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func dial(t *testing.T, m *Mux, first []byte) net.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", m.HTTP().Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test's own certificate
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if first != nil {
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// accept takes one connection from l within a second and reads n bytes.
func accept(t *testing.T, l net.Listener, n int) []byte {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			got <- c
		}
	}()
	select {
	case c := <-got:
		defer c.Close()
		b := make([]byte, n)
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("reading the routed connection: %v", err)
		}
		return b
	case <-time.After(2 * time.Second):
		t.Fatalf("nothing accepted on %T", l)
		return nil
	}
}

func TestRoutesByFirstBytes(t *testing.T) {
	m := startMux(t, 2*time.Second)
	// A client that finishes its handshake and says nothing must not hold
	// up the others.
	dial(t, m, nil)

	req := []byte("GET /ws HTTP/1.1\r\nHost: mux.test\r\n\r\n")
	dial(t, m, req)
	if got := accept(t, m.HTTP(), len(req)); string(got) != string(req) {
		t.Fatalf("HTTP side read %q, want the request whole", got)
	}

	msg, err := stun.Build(stun.BindingRequest, stun.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	dial(t, m, msg.Raw)
	if got := accept(t, m.TURN(), len(msg.Raw)); string(got) != string(msg.Raw) {
		t.Fatal("TURN side did not read the STUN message whole")
	}
}

func TestCloseEndsBothSides(t *testing.T) {
	m := startMux(t, time.Second)
	if err := m.TURN().Close(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []net.Listener{m.HTTP(), m.TURN()} {
		if _, err := l.Accept(); err == nil {
			t.Fatal("Accept after Close succeeded")
		}
	}
}
