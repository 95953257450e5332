package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/certs/pebbletest"
)

// TestACMEObtainsFromPebble gets a certificate from a real ACME server
// (Pebble, in process) that validates the challenge by calling back on the
// listeners, then completes a TLS handshake trusting only Pebble's root.
func TestACMEObtainsFromPebble(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) { obtain(t, challenge) })
	}
}

func obtain(t *testing.T, challenge string) {
	const domain = "chat.stranger.test"
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpPort, tlsPort := httpLn.Addr().(*net.TCPAddr).Port, tlsLn.Addr().(*net.TCPAddr).Port
	// Pebble tries one challenge of those offered; make it the one under
	// test by pointing the other at a closed port.
	if challenge == "http-01" {
		tlsPort = closedPort(t)
	} else {
		httpPort = closedPort(t)
	}
	pebble := pebbletest.Start(t, httpPort, tlsPort)
	dir := t.TempDir()
	a, err := NewACME(ACMEConfig{
		Domains: []string{domain}, CA: pebble.Directory, Roots: pebble.ServerRoots,
		Email: "ops@stranger.test", DataDir: dir,
		HTTPPort: httpPort, TLSPort: tlsPort,
		Log: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	hs := &http.Server{Handler: a.HTTPHandler(http.NotFoundHandler()), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(httpLn) }()
	defer hs.Close()
	ts := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello over TLS") }),
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ts.Serve(tls.NewListener(tlsLn, a.TLSConfig("http/1.1"))) }()
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := a.Manage(ctx); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pebble.IssuedRoots(), ServerName: domain},
	}}
	url := "https://127.0.0.1:" + strconv.Itoa(tlsLn.Addr().(*net.TCPAddr).Port) + "/"
	var lastErr error
	for ctx.Err() == nil {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if string(body) != "hello over TLS" {
				t.Fatalf("body %q", body)
			}
			lastErr = nil
			break
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("no certificate from Pebble by %s: %v", challenge, lastErr)
	}
	if n := pebble.Finalized(); n != 1 {
		t.Errorf("Pebble issued %d certificates, want 1", n)
	}
	// The certificate is kept in the data directory, for restarts and for
	// nodes sharing it.
	var found bool
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, _ error) error {
		found = found || (d != nil && !d.IsDir() && strings.HasSuffix(p, domain+".crt"))
		return nil
	})
	if !found {
		t.Error("no certificate file in the data directory")
	}
	// Only Pebble's issued root is trusted, so the check is real: the
	// system roots would refuse it.
	if _, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: domain},
	}}).Get(url); err == nil || !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Errorf("the system roots accepted Pebble's certificate (err %v)", err)
	}
}

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return p
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
