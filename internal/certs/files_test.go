package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// writePair writes a self-signed certificate for name and its key.
func writePair(t *testing.T, dir, name string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func TestFilesReload(t *testing.T) {
	dir := t.TempDir()
	cp, kp := writePair(t, dir, "old.example.org")
	f, err := LoadFiles(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"old.example.org"}) {
		t.Fatalf("names %q", got)
	}
	writePair(t, dir, "new.example.org")
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	c, _ := f.GetCertificate(nil)
	if c.Leaf.DNSNames[0] != "new.example.org" {
		t.Fatalf("after reload the handshake gets %q", c.Leaf.DNSNames)
	}

	// A half-written renewal keeps the certificate that works.
	if err := os.WriteFile(kp, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	if c, _ := f.GetCertificate(nil); c.Leaf.DNSNames[0] != "new.example.org" {
		t.Fatalf("a failed reload replaced the certificate: %q", c.Leaf.DNSNames)
	}
}

func TestLoadFilesFailsOnMismatch(t *testing.T) {
	cp, _ := writePair(t, t.TempDir(), "a.example.org")
	_, kp := writePair(t, t.TempDir(), "b.example.org")
	if _, err := LoadFiles(cp, kp); err == nil {
		t.Fatal("a certificate with another certificate's key loaded")
	}
}
