package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// ACMEConfig says which names to get certificates for and from where.
type ACMEConfig struct {
	Domains []string
	CA      string         // ACME directory URL
	Email   string         // contact for the CA; may be empty
	Roots   *x509.CertPool // roots for the CA's own HTTPS; nil: the system's
	// Storage holds the ACME account, keys, certificates and locks when
	// set (RedisStorage: nodes sharing one Redis share them, and only one
	// node asks the CA); otherwise DataDir does.
	Storage certmagic.Storage
	// DataDir holds them (in DataDir/acme) when Storage is nil. Nodes that
	// share the directory (a shared volume) share the certificates:
	// certmagic locks with files there, so only one node asks the CA.
	DataDir string
	// HTTPPort and TLSPort are where this process answers HTTP-01 and
	// TLS-ALPN-01 challenges (80 and 443 unless the node listens
	// elsewhere, e.g. behind a port forward or in tests).
	HTTPPort, TLSPort int
	Log               *slog.Logger
}

// ACME obtains and renews certificates with certmagic.
type ACME struct {
	cache   *certmagic.Cache
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	domains []string
}

// NewACME prepares certificate management; Manage starts it.
func NewACME(c ACMEConfig) (*ACME, error) {
	if len(c.Domains) == 0 {
		return nil, errors.New("certs: no domain")
	}
	storage := c.Storage
	if storage == nil {
		if c.DataDir == "" {
			return nil, errors.New("certs: no storage and no data directory")
		}
		storage = &certmagic.FileStorage{Path: filepath.Join(c.DataDir, "acme")}
	}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	zl := zap.New(slogCore{h: log.With("component", "acme").Handler()})
	a := &ACME{domains: append([]string(nil), c.Domains...)}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		Logger:           zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage: storage,
		Logger:  zl,
	})
	a.issuer = certmagic.NewACMEIssuer(a.magic, certmagic.ACMEIssuer{
		CA:             c.CA,
		Email:          c.Email,
		Agreed:         true,
		TrustedRoots:   c.Roots,
		AltHTTPPort:    c.HTTPPort,
		AltTLSALPNPort: c.TLSPort,
		Logger:         zl,
	})
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

// Manage obtains certificates for the domains in the background (the
// listeners must already be serving HTTPHandler and TLSConfig, since the CA
// calls back on them) and renews them until Stop. Until a certificate is
// there, handshakes for its name fail.
func (a *ACME) Manage(ctx context.Context) error {
	if err := a.magic.ManageAsync(ctx, a.domains); err != nil {
		return fmt.Errorf("--tls-domain %v: %w", a.domains, err)
	}
	return nil
}

// TLSConfig serves the managed certificates and answers TLS-ALPN-01
// challenges; nextProtos are offered after the ACME one.
func (a *ACME) TLSConfig(nextProtos ...string) *tls.Config {
	tc := a.magic.TLSConfig()
	tc.NextProtos = append(append([]string(nil), nextProtos...), tc.NextProtos...)
	tc.MinVersion = tls.VersionTLS12
	return tc
}

// HTTPHandler answers HTTP-01 challenges and passes every other request to
// next.
func (a *ACME) HTTPHandler(next http.Handler) http.Handler {
	return a.issuer.HTTPChallengeHandler(next)
}

// Stop ends renewal.
func (a *ACME) Stop() { a.cache.Stop() }
