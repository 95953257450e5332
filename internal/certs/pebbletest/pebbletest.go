// Package pebbletest runs Pebble, Let's Encrypt's test ACME server, inside
// the test process, with a DNS server that resolves every name to
// 127.0.0.1, so a node's real ACME code (certmagic) obtains a real
// certificate over real HTTP-01 or TLS-ALPN-01 challenges on loopback. It
// is imported only by tests.
package pebbletest

import (
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// CA is a running Pebble.
type CA struct {
	// Directory is the ACME directory URL (--acme-ca).
	Directory string
	// ServerRoots trust the CA's own HTTPS (--acme-ca-root).
	ServerRoots *x509.CertPool
	// ServerRootPEM is the same root as PEM, for a file.
	ServerRootPEM []byte
	ca            *ca.CAImpl
	finalized     *atomic.Int64
}

// Start runs Pebble validating challenges on httpPort (HTTP-01) and tlsPort
// (TLS-ALPN-01) of 127.0.0.1, where the node under test listens; it stops
// when the test ends.
func Start(t testing.TB, httpPort, tlsPort int) *CA {
	t.Helper()
	// Pebble waits up to 15 s before each validation to shake out clients
	// that poll too early; the test need not.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	resolver := startDNS(t)
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(testWriter{t}, "pebble ", 0)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, tlsPort, false, resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	finalized := new(atomic.Int64)
	handler := front.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, finalizePath) {
			handler.ServeHTTP(w, r)
			return
		}
		// Only a finalize Pebble accepted: it refuses some nonces on
		// purpose (as CAs may), and the client sends the request again.
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		handler.ServeHTTP(sw, r)
		if sw.status == http.StatusOK {
			finalized.Add(1)
		}
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return &CA{
		Directory:     srv.URL + "/dir",
		ServerRoots:   roots,
		ServerRootPEM: pemCert(srv.Certificate()),
		ca:            authority,
		finalized:     finalized,
	}
}

// finalizePath starts the URL of an order's finalize (Pebble's wfe).
const finalizePath = "/finalize-order/"

// Finalized is how many orders Pebble has finalized: each is a CSR accepted
// once the order's challenges passed, so one certificate issued. (Orders
// are no measure: a client starts a new order for each challenge type it
// tries.)
func (c *CA) Finalized() int64 { return c.finalized.Load() }

// IssuedRoots trust the certificates this CA issues, and nothing else.
func (c *CA) IssuedRoots() *x509.CertPool {
	p := x509.NewCertPool()
	for i := range c.ca.GetNumberOfRootCerts() {
		p.AddCert(c.ca.GetRootCert(i).Cert)
	}
	return p
}

// IssuedRootPEM is IssuedRoots as PEM (for a browser or SSL_CERT_FILE).
func (c *CA) IssuedRootPEM() []byte {
	var out []byte
	for i := range c.ca.GetNumberOfRootCerts() {
		out = append(out, pemCert(c.ca.GetRootCert(i).Cert)...)
	}
	return out
}

// startDNS answers every A query with 127.0.0.1 and every other query with
// no records, on a free port of 127.0.0.1, UDP and TCP (Pebble asks over
// TCP).
func startDNS(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return ln.Addr().String()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// statusWriter remembers the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
