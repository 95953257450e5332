// Package config holds the one Config of a stranger node: defaults, command
// line flags, STRANGER_* environment variables and validation.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strangerchat/stranger/internal/turnserver"
)

// Role is what the process runs.
type Role int

const (
	// RoleNode is `stranger`: web app, signaling, and the embedded relay
	// if --turn-listen is set.
	RoleNode Role = iota
	// RoleRelay is `stranger turn`: only the TURN relay, for operators who
	// put relays on hosts of their own.
	RoleRelay
)

// Action is what the command line asks the process to do with its Config.
type Action int

const (
	// Serve runs the role until a signal ends it.
	Serve Action = iota
	// CheckConfig validates flags and environment, then exits
	// (--check-config), so deployment files can be checked against the
	// binary they will run.
	CheckConfig
	// PrintVersion prints the version and commit, then exits (--version).
	PrintVersion
)

// LetsEncrypt is the default ACME directory (--acme-ca).
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Config is everything a node can be told.
type Config struct {
	Role   Role
	Action Action

	Addr            string
	AdminAddr       string
	InterestTimeout time.Duration
	ResumeGrace     time.Duration
	AllowedOrigins  []string
	STUN            []string
	MaxConnsPerIP   int
	MsgRate         float64
	MsgBurst        int
	MaxWaiting      int
	MaxSessions     int
	PingInterval    time.Duration
	PongTimeout     time.Duration
	ShutdownTimeout time.Duration
	BanThreshold    int
	BanDuration     time.Duration
	LogFormat       string
	LogLevel        string
	Redis           string

	TURNListen             string
	TURNPublicIP           string
	TURNRealm              string
	TURNRelayPorts         string
	TURNSecret             string
	TURNURLs               []string
	TURNTTL                time.Duration
	TURNAllowLoopback      bool
	TURNMaxAllocsPerUser   int
	TURNMaxAllocs          int
	TURNAllocationLifetime time.Duration
	TURNBandwidth          int64
	// Abuse limits of the embedded relay (turnAbuseFlags).
	TURNMaxAllocsPerIP int
	TURNMaxTCPPerIP    int
	TURNAuthTimeout    time.Duration
	// TURNTLSListen is the embedded relay's TURN-over-TLS (turns:) address;
	// it defaults to :5349 when TLS is on and the relay is.
	TURNTLSListen string
	// GOMAXPROCS for `stranger turn` (0: the Go default, one per core).
	GOMAXPROCS int

	// TLSDomains turns on automatic HTTPS: certificates for these names
	// from the ACME CA at ACMECA.
	TLSDomains []string
	ACMECA     string
	ACMEEmail  string
	// ACMECARoot is a PEM file of roots to trust for the ACME CA's own
	// HTTPS (a private CA such as Pebble); empty: the system's roots.
	ACMECARoot string
	// TLSCert and TLSKey are PEM files of a certificate the operator already
	// has (reloaded on SIGHUP); they exclude TLSDomains.
	TLSCert string
	TLSKey  string
	// HTTPAddr serves ACME HTTP-01 challenges and redirects everything else
	// to HTTPS; it defaults to :80 when TLS is on.
	HTTPAddr string
	// DataDir holds what a node keeps across restarts: the moderation
	// store (SQLite, without Database), the ACME account and certificates.
	// Parse defaults it to the user's state directory; "" (Default, as
	// tests build nodes) keeps reports and bans in a temporary directory
	// removed at shutdown.
	DataDir string

	// Moderation (docs/moderation.md).
	// Database is a PostgreSQL URL for reports, evidence and bans, shared by
	// the nodes of a deployment; "": SQLite in DataDir.
	Database string
	// AdminToken opens the operator API and console on the public listener
	// (Bearer); "": they are only on the admin listener.
	AdminToken string
	Moderation ModerationLimits
	// MaxReportBlocks caps the report blocks a single node's in-memory
	// engine holds (pairs of sessions and of identities); the oldest is
	// lifted early when it is full. The Redis engine's blocks expire in
	// Redis instead.
	MaxReportBlocks int
	// Quotas per identity (quotaFlags; docs/security.md, "Quotas"). The
	// sessions per identity are MaxConnsPerIP above.
	ConnRate        float64
	ConnBurst       int
	MaxWaitingPerIP int
	NextRate        float64
	NextBurst       int
	// HTTP and transport hardening (harden.go, docs/security.md).
	//
	// TrustedProxies are the peers whose X-Forwarded-For is honoured
	// (--trusted-proxies; the deprecated --trust-proxy means loopback).
	TrustedProxies []netip.Prefix
	// PublicMetrics serves /metrics on --addr too, not only on the admin
	// listener.
	PublicMetrics bool
	// HTTPIdleTimeout closes keep-alive connections idle for this long.
	HTTPIdleTimeout time.Duration
	// IdentityKey is the key of the HMAC that turns client addresses into
	// identities, from --identity-key-file; nil when not given.
	IdentityKey []byte
	// Warnings are logged once at start: deprecated flags, secret files
	// others may read.
	Warnings []string
	// PowDifficulty is ALTCHA's maxnumber for the proof of work a new
	// session gives before its first join or next (docs/security.md,
	// "Proof of work"); 0 turns it off.
	PowDifficulty int64
}

// TLS reports whether the node serves HTTPS itself.
func (c Config) TLS() bool { return len(c.TLSDomains) > 0 || c.TLSCert != "" }

// Default returns the configuration of `stranger` with no flags.
func Default() Config {
	return Config{
		Addr:                   ":8080",
		AdminAddr:              "127.0.0.1:6060",
		InterestTimeout:        5 * time.Second,
		ResumeGrace:            15 * time.Second,
		STUN:                   []string{"stun:stun.l.google.com:19302"},
		MaxConnsPerIP:          20,
		MsgRate:                20,
		MsgBurst:               60,
		MaxWaiting:             100000,
		MaxReportBlocks:        100000,
		MaxSessions:            0,
		PingInterval:           10 * time.Second,
		PongTimeout:            30 * time.Second,
		ShutdownTimeout:        10 * time.Second,
		BanThreshold:           3,
		BanDuration:            24 * time.Hour,
		LogFormat:              "text",
		LogLevel:               "info",
		TURNRealm:              "stranger",
		TURNRelayPorts:         "49152-65535",
		TURNTTL:                turnserver.DefaultCredentialTTL,
		TURNMaxAllocsPerUser:   10,
		TURNMaxAllocs:          10000,
		TURNAllocationLifetime: 4 * time.Hour,
		TURNBandwidth:          1_000_000,
		TURNMaxAllocsPerIP:     turnserver.DefaultMaxAllocationsPerIP,
		TURNMaxTCPPerIP:        turnserver.DefaultMaxTCPPerIP,
		TURNAuthTimeout:        turnserver.DefaultAuthTimeout,
		ACMECA:                 LetsEncrypt,
		Moderation:             defaultModeration(),
		ConnRate:               5,
		ConnBurst:              40,
		MaxWaitingPerIP:        10,
		NextRate:               0.5,
		NextBurst:              5,
		HTTPIdleTimeout:        DefaultHTTPIdleTimeout,
		PowDifficulty:          DefaultPowDifficulty,
	}
}

// listFlag is a comma-separated list; an empty string means an empty list.
type listFlag struct{ p *[]string }

// ListValue is a flag.Value for a comma-separated list stored in *p (blank
// items dropped; an empty string means an empty list), for every command of
// the project that takes lists.
func ListValue(p *[]string) flag.Value { return listFlag{p} }

func (l listFlag) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l listFlag) Set(s string) error {
	*l.p = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l.p = append(*l.p, v)
		}
	}
	return nil
}

// EnvName is the environment variable for a flag: STRANGER_ + upper snake case.
func EnvName(flagName string) string {
	return "STRANGER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse reads flags from args (without the program name) and, for flags not
// given there, STRANGER_* variables from getenv. It returns flag.ErrHelp for
// --help after printing usage to out.
func Parse(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Default()
	name := "stranger"
	if len(args) > 0 && args[0] == "turn" {
		c.Role, name, args = RoleRelay, "stranger turn", args[1:]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	commonFlags(fs, &c)
	turnFlags(fs, &c)
	turnAbuseFlags(fs, &c)
	tlsFlags(fs, &c)
	secrets := hardenFlags(fs, &c)
	if c.Role == RoleNode {
		nodeFlags(fs, &c)
		storeFlags(fs, &c)
		moderationFlags(fs, &c)
		engineFlags(fs, &c)
		quotaFlags(fs, &c)
		powFlags(fs, &c)
	} else {
		fs.IntVar(&c.GOMAXPROCS, "gomaxprocs", 1, "OS threads running Go code at once (0: one per core); 1 relayed the most bytes per CPU-second in docs/benchmarks.md")
	}
	checkOnly := fs.Bool("check-config", false, "validate the flags and STRANGER_* environment, print the result and exit (0: valid, 2: not)")
	version := fs.Bool("version", false, "print the version and commit, then exit")
	fs.Usage = func() {
		if c.Role == RoleRelay {
			fmt.Fprintf(out, "Usage: stranger turn [flags]\n\nRuns only the TURN relay (the same credentials and policy as a node's embedded relay).\n")
		} else {
			fmt.Fprintf(out, "Usage: stranger [flags]\n       stranger turn [flags]   (only the TURN relay; see stranger turn --help)\n")
		}
		fmt.Fprintf(out, "\nEvery flag can also be set by environment variable STRANGER_<FLAG> (e.g. STRANGER_RESUME_GRACE=10s).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags only; see --help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		name := EnvName(f.Name)
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s (--%s): %w", name, f.Name, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := secrets.apply(&c); err != nil {
		return c, err
	}
	switch {
	case *version:
		c.Action = PrintVersion
		return c, nil
	case *checkOnly:
		c.Action = CheckConfig
	}
	if !set["data-dir"] && getenv(EnvName("data-dir")) == "" {
		c.DataDir = defaultDataDir(getenv)
	}
	if c.TLS() {
		// With TLS the main listener is HTTPS and plain HTTP only answers
		// ACME challenges and redirects; their usual ports unless told.
		if !set["addr"] && getenv(EnvName("addr")) == "" && c.Role == RoleNode {
			c.Addr = ":443"
		}
		if !set["http-addr"] && getenv(EnvName("http-addr")) == "" && c.Role == RoleNode && len(c.TLSDomains) > 0 {
			c.HTTPAddr = ":80"
		}
		if !set["turn-tls-listen"] && getenv(EnvName("turn-tls-listen")) == "" && c.TURNListen != "" {
			c.TURNTLSListen = ":5349"
		}
	}
	return c, c.Validate()
}

// defaultDataDir is where `stranger` with no flags keeps its data: the
// user's state directory (XDG), so `make run` works for anyone; system
// services set --data-dir (the systemd unit: /var/lib/stranger).
func defaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "stranger")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "stranger")
	}
	return "stranger-data"
}

// storeFlags are where reports and bans are kept and who reads them.
func storeFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Database, "database", c.Database, "PostgreSQL URL for reports, evidence and bans, shared by every node, e.g. postgres://stranger@db/stranger (empty: SQLite in --data-dir; several nodes on --redis need it)")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "serve the operator API and console on the public listener too, under /admin/, to requests with 'Authorization: Bearer <token>' (prefer STRANGER_ADMIN_TOKEN: a flag shows in ps)")
}

func commonFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "admin HTTP address for /metrics and /debug/pprof (empty: off)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
}

// turnAbuseFlags are the relay's limits against one client hoarding it
// (docs/security.md, "TURN relay"), shared by a node's embedded relay and
// `stranger turn`; the relay alone also takes --redis, to check sessions.
func turnAbuseFlags(fs *flag.FlagSet, c *Config) {
	fs.IntVar(&c.TURNMaxAllocsPerIP, "turn-max-allocs-per-ip", c.TURNMaxAllocsPerIP, "embedded TURN allocations per client IP (IPv6: per /64), however many credentials it holds (0: no cap)")
	fs.IntVar(&c.TURNMaxTCPPerIP, "turn-max-tcp-per-ip", c.TURNMaxTCPPerIP, "open TCP and TLS connections to the embedded TURN per client IP (IPv6: per /64) (0: no cap)")
	fs.DurationVar(&c.TURNAuthTimeout, "turn-auth-timeout", c.TURNAuthTimeout, "a TCP or TLS TURN connection that has not authenticated a request within this is closed (0: never)")
	if c.Role == RoleRelay {
		fs.StringVar(&c.Redis, "redis", c.Redis, "the nodes' Redis URL: the relay then refuses credentials of chats that have ended (empty: it cannot tell and accepts every unexpired credential)")
	}
}

// turnFlags are the relay's, shared by a node's embedded relay and
// `stranger turn`.
func turnFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.TURNListen, "turn-listen", c.TURNListen, "embedded TURN relay address, UDP and TCP, e.g. :3478 (empty: off)")
	fs.StringVar(&c.TURNPublicIP, "turn-public-ip", c.TURNPublicIP, "relay IP address the embedded TURN advertises to clients")
	fs.StringVar(&c.TURNRealm, "turn-realm", c.TURNRealm, "TURN realm")
	fs.StringVar(&c.TURNRelayPorts, "turn-relay-ports", c.TURNRelayPorts, "UDP port range for relayed allocations, MIN-MAX")
	fs.StringVar(&c.TURNSecret, "turn-secret", c.TURNSecret, "shared secret for TURN REST API credentials (coturn static-auth-secret)")
	fs.Var(listFlag{&c.TURNURLs}, "turn-urls", "comma-separated TURN URLs offered to clients, e.g. turn:turn.example.com:3478?transport=udp (default with --turn-listen: the embedded relay)")
	fs.DurationVar(&c.TURNTTL, "turn-ttl", c.TURNTTL, "lifetime of minted TURN credentials")
	fs.BoolVar(&c.TURNAllowLoopback, "turn-allow-loopback", c.TURNAllowLoopback, "let the embedded TURN relay to loopback peers (tests and local development only)")
	fs.IntVar(&c.TURNMaxAllocsPerUser, "turn-max-allocs-per-user", c.TURNMaxAllocsPerUser, "embedded TURN allocations per credential")
	fs.IntVar(&c.TURNMaxAllocs, "turn-max-allocs", c.TURNMaxAllocs, "embedded TURN allocations in total")
	fs.DurationVar(&c.TURNAllocationLifetime, "turn-allocation-lifetime", c.TURNAllocationLifetime, "longest lifetime of an embedded TURN allocation, however often refreshed (0: no cap)")
	fs.Int64Var(&c.TURNBandwidth, "turn-bandwidth", c.TURNBandwidth, "embedded TURN relay bytes per second per allocation and direction (0: no cap)")
	fs.StringVar(&c.TURNTLSListen, "turn-tls-listen", c.TURNTLSListen, "TURN over TLS (turns:) address of the relay, with the node's certificate (default with TLS and --turn-listen: :5349; the same as --addr: share the HTTPS port; empty: off)")
}

func tlsFlags(fs *flag.FlagSet, c *Config) {
	fs.Var(listFlag{&c.TLSDomains}, "tls-domain", "serve HTTPS with certificates from an ACME CA for these names (repeatable or comma-separated); HTTPS on --addr (default :443), ACME challenges and redirects on --http-addr (default :80); with --redis the certificates are kept in Redis, shared by the nodes, else in --data-dir")
	fs.StringVar(&c.ACMECA, "acme-ca", c.ACMECA, "ACME directory URL for --tls-domain")
	fs.StringVar(&c.ACMEEmail, "acme-email", c.ACMEEmail, "contact e-mail given to the ACME CA (expiry warnings)")
	fs.StringVar(&c.ACMECARoot, "acme-ca-root", c.ACMECARoot, "PEM file of roots trusted for the ACME CA's HTTPS (a private CA; empty: the system's)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate chain you already have (with --tls-key; reloaded on SIGHUP)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key of --tls-cert")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for what the node keeps across restarts: reports, evidence and bans (without --database), the ACME account and certificates (with --redis those are kept in Redis instead); default $XDG_STATE_HOME/stranger or ~/.local/state/stranger")
}

func engineFlags(fs *flag.FlagSet, c *Config) {
	fs.IntVar(&c.MaxReportBlocks, "max-report-blocks", c.MaxReportBlocks, "report blocks (reported pairs of sessions and of identities, kept 24 h) the in-memory engine holds; when full the oldest is lifted early (0: 100000)")
}

func nodeFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP address for the web app, /ws, /healthz, /readyz and /api/online (and /metrics with --public-metrics)")
	fs.DurationVar(&c.InterestTimeout, "interest-timeout", c.InterestTimeout, "how long a session with interests waits for a shared interest before accepting anyone")
	fs.DurationVar(&c.ResumeGrace, "resume-grace", c.ResumeGrace, "how long a dropped session is kept for a resume")
	fs.Var(listFlag{&c.AllowedOrigins}, "allowed-origins", "comma-separated extra allowed Origins, e.g. https://chat.example.com (the request's own host is always allowed)")
	fs.Var(listFlag{&c.STUN}, "stun", "comma-separated STUN URLs offered in welcome.iceServers (empty: none)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "sessions allowed per client IP, those in their grace period included (older name of --max-sessions-per-ip; 0: unlimited)")
	fs.Float64Var(&c.MsgRate, "msg-rate", c.MsgRate, "client frames per second a session may send, sustained")
	fs.IntVar(&c.MsgBurst, "msg-burst", c.MsgBurst, "client frames a session may send in a burst")
	fs.IntVar(&c.MaxWaiting, "max-waiting", c.MaxWaiting, "sessions the queue holds; join beyond it gets 'overloaded' (0: unlimited)")
	fs.IntVar(&c.MaxSessions, "max-sessions", c.MaxSessions, "sessions this node holds; connections beyond it are refused with 503 (0: unlimited)")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "how often the server pings each connection")
	fs.DurationVar(&c.PongTimeout, "pong-timeout", c.PongTimeout, "a connection whose pongs stop for this long is dropped")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "longest graceful drain on SIGINT/SIGTERM")
	fs.IntVar(&c.BanThreshold, "ban-threshold", c.BanThreshold, "distinct reporters within --ban-duration that ban a client IP (0: never ban)")
	fs.DurationVar(&c.BanDuration, "ban-duration", c.BanDuration, "how long a ban lasts, and the window in which reports count")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "plain HTTP address answering ACME challenges and redirecting to HTTPS (default with --tls-domain: :80; empty: off)")
	fs.StringVar(&c.Redis, "redis", c.Redis, "Redis URL shared by all nodes, e.g. redis://127.0.0.1:6379/0 (empty: in-memory, one node)")
}

// quotaFlags are the per-identity quotas; --max-conns-per-ip (nodeFlags)
// is the sessions per identity, and --max-sessions-per-ip its new name.
func quotaFlags(fs *flag.FlagSet, c *Config) {
	fs.IntVar(&c.MaxConnsPerIP, "max-sessions-per-ip", c.MaxConnsPerIP, "sessions one client IP (IPv6: its /64) may hold, those in their resume grace period included; beyond it new connections get 429 (0: unlimited; same as --max-conns-per-ip)")
	fs.Float64Var(&c.ConnRate, "conn-rate", c.ConnRate, "WebSocket connection attempts per second one client IP (IPv6: its /64) may make, sustained; beyond it 429 with Retry-After (0: unlimited)")
	fs.IntVar(&c.ConnBurst, "conn-burst", c.ConnBurst, "connection attempts one client IP may make in a burst")
	fs.IntVar(&c.MaxWaitingPerIP, "max-waiting-per-ip", c.MaxWaitingPerIP, "sessions of one client IP (IPv6: its /64) waiting for a partner at once; join/next beyond it gets 'rate_limited' (0: unlimited)")
	fs.Float64Var(&c.NextRate, "next-rate", c.NextRate, "join/next frames per second one session may send, sustained; beyond it 'rate_limited' (0: unlimited)")
	fs.IntVar(&c.NextBurst, "next-burst", c.NextBurst, "join/next frames one session may send in a burst")
}

// validateQuotas is Validate for quotaFlags.
func (c Config) validateQuotas(bad func(flag, format string, args ...any)) {
	if c.ConnRate < 0 {
		bad("conn-rate", "must not be negative")
	}
	if c.ConnRate > 0 && c.ConnBurst < 1 {
		bad("conn-burst", "must be at least 1 with --conn-rate")
	}
	if c.MaxWaitingPerIP < 0 {
		bad("max-waiting-per-ip", "must not be negative")
	}
	if c.NextRate < 0 {
		bad("next-rate", "must not be negative")
	}
	if c.NextRate > 0 && c.NextBurst < 1 {
		bad("next-burst", "must be at least 1 with --next-rate")
	}
}

// Validate names the first setting that cannot work and why.
func (c Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "want host:port, e.g. :8080 (%v)", err)
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			bad("admin-addr", "want host:port, e.g. 127.0.0.1:6060 (%v)", err)
		}
	}
	if c.InterestTimeout < 0 {
		bad("interest-timeout", "must not be negative")
	}
	if c.ResumeGrace <= 0 {
		bad("resume-grace", "must be positive")
	}
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("allowed-origins", "%q is not an origin like https://chat.example.com", o)
		}
	}
	for _, s := range c.STUN {
		if !strings.HasPrefix(s, "stun:") && !strings.HasPrefix(s, "stuns:") {
			bad("stun", "%q is not a stun: or stuns: URL", s)
		}
	}
	if c.MaxConnsPerIP < 0 {
		bad("max-sessions-per-ip", "must not be negative (--max-conns-per-ip is its older name)")
	}
	c.validateQuotas(bad)
	if c.MsgRate <= 0 {
		bad("msg-rate", "must be positive")
	}
	if c.MsgBurst < 1 {
		bad("msg-burst", "must be at least 1")
	}
	if c.MaxWaiting < 0 {
		bad("max-waiting", "must not be negative")
	}
	if c.MaxReportBlocks < 0 {
		bad("max-report-blocks", "must not be negative (0: the default, 100000)")
	}
	if c.MaxSessions < 0 {
		bad("max-sessions", "must not be negative")
	}
	if c.PingInterval <= 0 {
		bad("ping-interval", "must be positive")
	}
	if c.PongTimeout <= c.PingInterval {
		bad("pong-timeout", "must be longer than --ping-interval (%s)", c.PingInterval)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be positive")
	}
	if c.BanThreshold < 0 {
		bad("ban-threshold", "must not be negative")
	}
	if c.BanDuration <= 0 {
		bad("ban-duration", "must be positive")
	}
	if c.Database != "" {
		u, err := url.Parse(c.Database)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("database", "want a postgres:// URL (the value is not shown: it may hold a password)")
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		bad("admin-token", "too short: use at least 16 random characters (e.g. openssl rand -hex 16)")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "%q: want text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	if c.Redis != "" {
		u, err := url.Parse(c.Redis)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			bad("redis", "%q is not a redis:// URL", c.Redis)
		}
	}
	if c.TURNListen != "" {
		if _, _, err := net.SplitHostPort(c.TURNListen); err != nil {
			bad("turn-listen", "want host:port, e.g. :3478 (%v)", err)
		}
		if c.TURNSecret == "" {
			bad("turn-secret", "required with --turn-listen (credentials are minted from it)")
		}
		if c.TURNPublicIP == "" {
			bad("turn-public-ip", "required with --turn-listen: the IP address clients reach the relay at (127.0.0.1 for local development)")
		}
	}
	if c.TURNPublicIP != "" && net.ParseIP(c.TURNPublicIP) == nil {
		bad("turn-public-ip", "%q is not an IP address", c.TURNPublicIP)
	}
	if _, _, err := c.RelayPortRange(); err != nil {
		bad("turn-relay-ports", "%v", err)
	}
	for _, s := range c.TURNURLs {
		if !strings.HasPrefix(s, "turn:") && !strings.HasPrefix(s, "turns:") {
			bad("turn-urls", "%q is not a turn: or turns: URL", s)
		}
	}
	if len(c.TURNURLs) > 0 && c.TURNSecret == "" {
		bad("turn-secret", "required with --turn-urls (clients need credentials)")
	}
	if c.TURNSecret != "" && len(c.TURNSecret) < 16 {
		bad("turn-secret", "must be at least 16 characters: anyone can try to guess it offline from the credentials every client receives")
	}
	if c.TURNBandwidth < 0 {
		bad("turn-bandwidth", "must not be negative")
	}
	if c.TURNMaxAllocsPerIP < 0 {
		bad("turn-max-allocs-per-ip", "must not be negative")
	}
	if c.TURNMaxTCPPerIP < 0 {
		bad("turn-max-tcp-per-ip", "must not be negative")
	}
	if c.TURNAuthTimeout < 0 {
		bad("turn-auth-timeout", "must not be negative")
	}
	if c.TURNTTL < time.Minute {
		bad("turn-ttl", "must be at least 1m")
	}
	if c.TURNMaxAllocsPerUser < 1 {
		bad("turn-max-allocs-per-user", "must be at least 1")
	}
	if c.TURNMaxAllocs < 1 {
		bad("turn-max-allocs", "must be at least 1")
	}
	if c.TURNAllocationLifetime != 0 && c.TURNAllocationLifetime < time.Minute {
		bad("turn-allocation-lifetime", "must be 0 (no cap) or at least 1m")
	}
	c.validateTLS(bad)
	if c.Role == RoleNode {
		c.validateModeration(bad)
	}
	c.validateHardening(bad)
	c.validatePow(bad)
	if c.Role == RoleRelay {
		if c.TURNListen == "" {
			bad("turn-listen", "required by stranger turn (the relay's UDP and TCP address, e.g. :3478)")
		}
		if c.GOMAXPROCS < 0 {
			bad("gomaxprocs", "must not be negative")
		}
	}
	return errors.Join(errs...)
}

func (c Config) validateTLS(bad func(flag, format string, args ...any)) {
	for _, d := range c.TLSDomains {
		if strings.ContainsAny(d, ":/ ") || !strings.Contains(d, ".") {
			bad("tls-domain", "%q is not a host name like chat.example.org", d)
		}
	}
	if len(c.TLSDomains) > 0 && c.TLSCert != "" {
		bad("tls-cert", "give either --tls-domain (automatic certificates) or --tls-cert/--tls-key, not both")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls-key", "--tls-cert and --tls-key go together")
	}
	if c.TLSCert != "" && c.TLSKey != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			bad("tls-cert", "%v", err)
		}
	}
	if len(c.TLSDomains) > 0 {
		if c.Role == RoleRelay {
			bad("tls-domain", "stranger turn cannot answer ACME challenges; give it the nodes' certificate with --tls-cert/--tls-key")
		}
		u, err := url.Parse(c.ACMECA)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			bad("acme-ca", "%q is not an https:// ACME directory URL", c.ACMECA)
		}
		if c.DataDir == "" && c.Redis == "" {
			bad("data-dir", "required with --tls-domain without --redis: the ACME account and certificates are kept there")
		}
	}
	if c.ACMECARoot != "" {
		if b, err := os.ReadFile(c.ACMECARoot); err != nil {
			bad("acme-ca-root", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			bad("acme-ca-root", "%s holds no PEM certificate", c.ACMECARoot)
		}
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("http-addr", "want host:port, e.g. :80 (%v)", err)
		}
		if !c.TLS() {
			bad("http-addr", "only with --tls-domain or --tls-cert (it redirects to HTTPS)")
		}
	}
	if c.TURNTLSListen != "" {
		if _, _, err := net.SplitHostPort(c.TURNTLSListen); err != nil {
			bad("turn-tls-listen", "want host:port, e.g. :5349 (%v)", err)
		}
		if !c.TLS() {
			bad("turn-tls-listen", "needs a certificate: --tls-domain or --tls-cert/--tls-key")
		}
		if c.TURNListen == "" {
			bad("turn-tls-listen", "needs --turn-listen (the relay itself)")
		}
	}
}

// RelayPortRange parses --turn-relay-ports.
func (c Config) RelayPortRange() (lo, hi int, err error) {
	a, b, ok := strings.Cut(c.TURNRelayPorts, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want MIN-MAX, e.g. 49152-65535", c.TURNRelayPorts)
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q: want MIN-MAX with 1 <= MIN <= MAX <= 65535", c.TURNRelayPorts)
	}
	return lo, hi, nil
}

// TURNServer is the relay's configuration from these flags, for the
// embedded relay and `stranger turn` alike; the caller adds the TLS
// certificate source when TURNTLSListen is set.
func (c Config) TURNServer() turnserver.Config {
	lo, hi, _ := c.RelayPortRange() // checked by Validate
	return turnserver.Config{
		Listen:                 c.TURNListen,
		TLSListen:              c.TURNTLSListen,
		PublicIP:               c.TURNPublicIP,
		Realm:                  c.TURNRealm,
		RelayPortMin:           lo,
		RelayPortMax:           hi,
		Secret:                 c.TURNSecret,
		AllowLoopback:          c.TURNAllowLoopback,
		MaxAllocationsPerUser:  c.TURNMaxAllocsPerUser,
		MaxAllocations:         c.TURNMaxAllocs,
		AllocationLifetime:     c.TURNAllocationLifetime,
		BandwidthPerAllocation: c.TURNBandwidth,
		MaxAllocationsPerIP:    c.TURNMaxAllocsPerIP,
		MaxTCPPerIP:            c.TURNMaxTCPPerIP,
		AuthTimeout:            c.TURNAuthTimeout,
	}
}

// DefaultPowDifficulty is --pow-difficulty's default: on average 2 500
// SHA-256 hashes. The web client hashes with WebCrypto one awaited digest at
// a time (altcha-lib's solver); in headless Chromium on this project's 2-core
// benchmark machine, loaded, a solve in the worker took a median of 64–98 ms,
// most of it the worker's start, so some 190–330 ms on a phone 3–5 times
// slower (docs/benchmarks.md, "Proof of work").
const DefaultPowDifficulty = 5_000

// maxPowDifficulty: beyond it a phone would take many seconds.
const maxPowDifficulty = 10_000_000

func powFlags(fs *flag.FlagSet, c *Config) {
	fs.Int64Var(&c.PowDifficulty, "pow-difficulty", c.PowDifficulty, "proof of work asked of every new session before its first join or next: ALTCHA maxnumber, a client tries half of it on average (0: off)")
}

func (c Config) validatePow(bad func(flag, format string, args ...any)) {
	if c.PowDifficulty < 0 || c.PowDifficulty > maxPowDifficulty {
		bad("pow-difficulty", "must be 0 (off) or 1..%d", maxPowDifficulty)
	}
}
