package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"

	"github.com/strangerchat/stranger/internal/certs"
	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/config"
)

// hsts tells browsers to use HTTPS only for this host for a year (not its
// subdomains: the operator may run other sites under the same domain).
const hsts = "max-age=31536000"

// tlsFront is the node's own HTTPS: where its certificate comes from
// (files or ACME, exactly one set), and what turns: URLs name.
type tlsFront struct {
	files *certs.Files // --tls-cert/--tls-key
	acme  *certs.ACME  // --tls-domain
	// domains are the names this node answers for (ACME), empty with
	// files; redirects go only to these.
	domains []string
	// turnsHost is the name in turns: URLs; it must be one the certificate
	// covers, since browsers check it.
	turnsHost string
	// closeStore closes the Redis client of the ACME storage (--redis);
	// nil with the data directory or files.
	closeStore func() error
}

// certPrefix starts the keys of the ACME storage in Redis, beside the
// deployment's other keys.
const certPrefix = cluster.DefaultPrefix + "cert:"

func newTLSFront(cfg config.Config, log *slog.Logger) (*tlsFront, error) {
	if cfg.TLSCert != "" {
		files, err := certs.LoadFiles(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		f := &tlsFront{files: files}
		if names := files.Names(); len(names) > 0 {
			f.turnsHost = names[0]
		}
		return f, nil
	}
	var roots *x509.CertPool
	if cfg.ACMECARoot != "" {
		b, err := os.ReadFile(cfg.ACMECARoot)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--acme-ca-root %s: no PEM certificate", cfg.ACMECARoot)
		}
	}
	f := &tlsFront{domains: cfg.TLSDomains, turnsHost: cfg.TLSDomains[0]}
	ac := certs.ACMEConfig{
		Domains: cfg.TLSDomains, CA: cfg.ACMECA, Email: cfg.ACMEEmail, Roots: roots,
		DataDir:  cfg.DataDir,
		HTTPPort: port(cfg.HTTPAddr, 80), TLSPort: port(cfg.Addr, 443),
		Log: log,
	}
	if cfg.Redis != "" {
		// Nodes sharing Redis share the certificates and the locks
		// around obtaining them, so one node asks the CA for all.
		rdb, err := cluster.NewClient(cfg.Redis)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		store, err := certs.NewRedisStorage(certs.RedisStorageOptions{Client: rdb, Prefix: certPrefix, Log: log})
		if err != nil {
			_ = rdb.Close()
			return nil, err
		}
		ac.Storage, f.closeStore = store, rdb.Close
	}
	a, err := certs.NewACME(ac)
	if err != nil {
		if f.closeStore != nil {
			_ = f.closeStore()
		}
		return nil, err
	}
	f.acme = a
	return f, nil
}

// port is addr's port, or def when addr has none or asks for any (0).
func port(addr string, def int) int {
	_, p, err := net.SplitHostPort(addr)
	if n, err2 := strconv.Atoi(p); err == nil && err2 == nil && n > 0 {
		return n
	}
	return def
}

// config is a server TLS configuration with the current certificate.
func (f *tlsFront) config(nextProtos ...string) *tls.Config {
	if f.acme != nil {
		return f.acme.TLSConfig(nextProtos...)
	}
	return f.files.TLSConfig(nextProtos...)
}

// reload reads --tls-cert/--tls-key again (SIGHUP); ACME certificates
// renew by themselves.
func (f *tlsFront) reload() error {
	if f.files == nil {
		return errors.New("no certificate files to reload (certificates from ACME renew by themselves)")
	}
	return f.files.Reload()
}

// withHSTS marks every HTTPS answer Strict-Transport-Security.
func withHSTS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hsts)
		next.ServeHTTP(w, r)
	})
}

// redirectToHTTPS answers plain HTTP with a redirect to the same path on
// HTTPS at httpsPort. With known domains, a Host that is not one of them
// is redirected to the first, so the node is no open redirector.
func redirectToHTTPS(domains []string, httpsPort int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if len(domains) > 0 && !slices.Contains(domains, host) {
			host = domains[0]
		}
		if httpsPort != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(httpsPort))
		}
		code := http.StatusMovedPermanently
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			code = http.StatusPermanentRedirect // keeps the method and body
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), code)
	})
}
