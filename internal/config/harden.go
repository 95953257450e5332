package config

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/strangerchat/stranger/internal/clientip"
)

// DefaultHTTPIdleTimeout is how long a keep-alive connection may sit idle
// (--http-idle-timeout).
const DefaultHTTPIdleTimeout = 60 * time.Second

// secretFiles are the *-file flags of secrets, read once every flag and
// variable is known, so that each can be checked against its inline form.
type secretFiles struct {
	turnSecret, adminToken, identityKey string
	// trustProxy is the deprecated --trust-proxy.
	trustProxy bool
}

// hardenFlags adds the flags of HTTP and transport hardening: who may set
// X-Forwarded-For, where /metrics is served, the idle timeout, and the
// secrets read from files rather than given on the command line (where ps
// and /proc show them to every user of the host).
func hardenFlags(fs *flag.FlagSet, c *Config) *secretFiles {
	sf := &secretFiles{}
	fs.StringVar(&sf.turnSecret, "turn-secret-file", "", "file holding --turn-secret (one line; keep it mode 600), instead of the secret on the command line")
	if c.Role != RoleNode {
		return sf
	}
	fs.Var(prefixList{&c.TrustedProxies}, "trusted-proxies", "comma-separated CIDR prefixes of your own proxies, e.g. 10.0.0.5/32: only requests from them may name the client in X-Forwarded-For (the right-most address not in this list is the client's)")
	fs.BoolVar(&sf.trustProxy, "trust-proxy", false, "deprecated: means --trusted-proxies 127.0.0.0/8,::1/128")
	fs.BoolVar(&c.PublicMetrics, "public-metrics", c.PublicMetrics, "serve /metrics on --addr as well as on --admin-addr (anyone who reaches the node reads them)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", c.HTTPIdleTimeout, "close HTTP keep-alive connections idle for this long (every listener)")
	fs.StringVar(&sf.adminToken, "admin-token-file", "", "file holding the operator API's bearer token (one line; mode 600)")
	fs.StringVar(&sf.identityKey, "identity-key-file", "", "file holding the key of the HMAC that turns client addresses into identities: hex (at least 32 digits) or at least 16 raw bytes; mode 600")
	return sf
}

// apply reads the secret files into c and resolves --trust-proxy.
func (sf *secretFiles) apply(c *Config) error {
	var errs []error
	if sf.trustProxy {
		if len(c.TrustedProxies) > 0 {
			errs = append(errs, errors.New("--trust-proxy: deprecated alias of --trusted-proxies 127.0.0.0/8,::1/128; give only --trusted-proxies"))
		} else {
			c.TrustedProxies = clientip.Loopback()
			c.Warnings = append(c.Warnings, "--trust-proxy is deprecated: it trusts X-Forwarded-For from loopback peers only; say --trusted-proxies with your proxies' addresses instead")
		}
	}
	read := func(flag, path, inline string, into *string) {
		if path == "" {
			return
		}
		if inline != "" {
			errs = append(errs, fmt.Errorf("--%s: give the secret inline (flag or environment) or in a file, not both", flag))
			return
		}
		v, warn, err := readSecret(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", flag, err))
			return
		}
		if warn != "" {
			c.Warnings = append(c.Warnings, "--"+flag+": "+warn)
		}
		*into = v
	}
	read("turn-secret-file", sf.turnSecret, c.TURNSecret, &c.TURNSecret)
	read("admin-token-file", sf.adminToken, c.AdminToken, &c.AdminToken)
	var key string
	read("identity-key-file", sf.identityKey, string(c.IdentityKey), &key)
	if key != "" {
		k, err := parseKey(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("--identity-key-file: %w", err))
		}
		c.IdentityKey = k
	}
	return errors.Join(errs...)
}

// readSecret reads a secret file: its content without the trailing line
// break. An empty file is an error (a secret that is not there must not
// quietly become ""); a file that group or others may read is a warning,
// not an error, since container secrets are often mounted that way.
func readSecret(path string) (secret, warning string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	secret = strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(secret) == "" {
		return "", "", fmt.Errorf("%s is empty", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		warning = fmt.Sprintf("%s may be read by other users (mode %04o); chmod 600 it", path, fi.Mode().Perm())
	}
	return secret, warning, nil
}

// parseKey reads an identity key: hex digits if it is only those (and
// long enough), else the bytes themselves.
func parseKey(s string) ([]byte, error) {
	if len(s) >= 32 && len(s)%2 == 0 {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	if len(s) < 16 {
		return nil, errors.New("the key must be at least 16 bytes (or 32 hex digits); make one with openssl rand -hex 32")
	}
	return []byte(s), nil
}

// validateHardening checks the hardening settings that come from flags
// and from callers who build a Config themselves.
func (c Config) validateHardening(bad func(flag, format string, args ...any)) {
	if c.Role == RoleNode && c.HTTPIdleTimeout <= 0 {
		bad("http-idle-timeout", "must be positive")
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			bad("trusted-proxies", "%v is not a CIDR prefix", p)
		}
	}
}

// prefixList is a flag.Value for a comma-separated list of CIDR prefixes.
type prefixList struct{ p *[]netip.Prefix }

func (l prefixList) String() string {
	if l.p == nil {
		return ""
	}
	var s []string
	for _, p := range *l.p {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

func (l prefixList) Set(s string) error {
	var items []string
	if err := ListValue(&items).Set(s); err != nil {
		return err
	}
	ps, err := clientip.ParsePrefixes(items)
	if err != nil {
		return err
	}
	*l.p = ps
	return nil
}
