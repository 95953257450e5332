// Package certs is where a node's TLS certificates come from: PEM files the
// operator already has (reloaded on demand, e.g. on SIGHUP), or an ACME CA
// through certmagic (acme.go).
package certs

import (
	"crypto/tls"
	"fmt"
	"sync"
)

// Files serves the certificate in a PEM certificate chain and key file pair.
type Files struct {
	certPath, keyPath string

	mu   sync.RWMutex
	cert *tls.Certificate
}

// LoadFiles reads the pair once; it fails if they do not load or do not match.
func LoadFiles(certPath, keyPath string) (*Files, error) {
	f := &Files{certPath: certPath, keyPath: keyPath}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the files again. On an error the previous certificate stays
// in use: a renewal script that writes the files in two steps must not take
// the node off the air.
func (f *Files) Reload() error {
	c, err := tls.LoadX509KeyPair(f.certPath, f.keyPath)
	if err != nil {
		return fmt.Errorf("--tls-cert %s / --tls-key %s: %w", f.certPath, f.keyPath, err)
	}
	f.mu.Lock()
	f.cert = &c
	f.mu.Unlock()
	return nil
}

// GetCertificate is the tls.Config hook: every handshake gets the latest
// certificate.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cert, nil
}

// Names are the DNS names the current certificate covers (its leaf).
func (f *Files) Names() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.cert.Leaf == nil {
		return nil
	}
	return append([]string(nil), f.cert.Leaf.DNSNames...)
}

// TLSConfig is a server configuration using f; nextProtos are the ALPN
// protocols offered (e.g. h2, http/1.1; nil for TURN).
func (f *Files) TLSConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{GetCertificate: f.GetCertificate, MinVersion: tls.VersionTLS12, NextProtos: nextProtos}
}
