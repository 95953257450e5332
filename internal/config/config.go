// Package config holds the one Config of a stranger node: defaults, command
// line flags, STRANGER_* environment variables and validation.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is everything a node can be told.
type Config struct {
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
	TrustProxy      bool
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
}

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
		TURNTTL:                6 * time.Hour,
		TURNMaxAllocsPerUser:   10,
		TURNMaxAllocs:          10000,
		TURNAllocationLifetime: 4 * time.Hour,
		TURNBandwidth:          1_000_000,
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
	fs := flag.NewFlagSet("stranger", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP address for the web app, /ws, /healthz, /readyz and /metrics")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "admin HTTP address for /metrics and /debug/pprof (empty: off)")
	fs.DurationVar(&c.InterestTimeout, "interest-timeout", c.InterestTimeout, "how long a session with interests waits for a shared interest before accepting anyone")
	fs.DurationVar(&c.ResumeGrace, "resume-grace", c.ResumeGrace, "how long a dropped session is kept for a resume")
	fs.Var(listFlag{&c.AllowedOrigins}, "allowed-origins", "comma-separated extra allowed Origins, e.g. https://chat.example.com (the request's own host is always allowed)")
	fs.Var(listFlag{&c.STUN}, "stun", "comma-separated STUN URLs offered in welcome.iceServers (empty: none)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "open WebSocket connections allowed per client IP (0: unlimited)")
	fs.Float64Var(&c.MsgRate, "msg-rate", c.MsgRate, "client frames per second a session may send, sustained")
	fs.IntVar(&c.MsgBurst, "msg-burst", c.MsgBurst, "client frames a session may send in a burst")
	fs.IntVar(&c.MaxWaiting, "max-waiting", c.MaxWaiting, "sessions the queue holds; join beyond it gets 'overloaded' (0: unlimited)")
	fs.IntVar(&c.MaxSessions, "max-sessions", c.MaxSessions, "sessions this node holds; connections beyond it are refused with 503 (0: unlimited)")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "how often the server pings each connection")
	fs.DurationVar(&c.PongTimeout, "pong-timeout", c.PongTimeout, "a connection whose pongs stop for this long is dropped")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "longest graceful drain on SIGINT/SIGTERM")
	fs.IntVar(&c.BanThreshold, "ban-threshold", c.BanThreshold, "distinct reporters within --ban-duration that ban a client IP (0: never ban)")
	fs.DurationVar(&c.BanDuration, "ban-duration", c.BanDuration, "how long a ban lasts, and the window in which reports count")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", c.TrustProxy, "take the client IP from X-Forwarded-For / X-Real-IP (only behind your own proxy)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&c.Redis, "redis", c.Redis, "Redis URL shared by all nodes, e.g. redis://127.0.0.1:6379/0 (empty: in-memory, one node)")
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
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: stranger [flags]\n\nEvery flag can also be set by environment variable STRANGER_<FLAG> (e.g. STRANGER_RESUME_GRACE=10s).\n\n")
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
	return c, c.Validate()
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
		bad("max-conns-per-ip", "must not be negative")
	}
	if c.MsgRate <= 0 {
		bad("msg-rate", "must be positive")
	}
	if c.MsgBurst < 1 {
		bad("msg-burst", "must be at least 1")
	}
	if c.MaxWaiting < 0 {
		bad("max-waiting", "must not be negative")
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
	return errors.Join(errs...)
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
