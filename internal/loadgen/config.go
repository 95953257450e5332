// Package loadgen is stranger-load: it simulates many protocol-level
// clients (docs/protocol.md) against one or more Stranger nodes and reports
// connections held, matches per second, time to match, relay latencies,
// errors, and the server's RSS and CPU time read from /proc.
//
// One process holds up to about its open-file limit in connections; larger
// runs re-execute the binary as several child processes (--procs) that
// report to the parent as JSON lines on stdout.
package loadgen

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

	"github.com/strangerchat/stranger/internal/config"
)

// Config is everything stranger-load can be told.
type Config struct {
	URLs          []string
	Clients       int
	Duration      time.Duration
	Ramp          time.Duration // spread connects over this long; 0: use ConnectRate
	ConnectRate   float64       // connects per second when Ramp is 0
	Churn         float64       // sessions per second replaced by fresh ones
	ChatDuration  time.Duration // how long a client stays in a chat after the exchange
	ChatMsgs      int           // chat messages each side sends per chat
	Typing        bool          // send typing before each chat message
	TextRatio     float64       // fraction of clients in text mode
	InterestRatio float64       // fraction of clients with interests
	Interests     []string      // pool interests are drawn from
	LeaveRatio    float64       // fraction of chat ends done as leave + join instead of next
	Idle          bool          // connect and hold only
	PIDs          []int         // server processes to sample (summed); empty: none
	Src           []string      // local source addresses; empty: automatic
	Procs         int           // processes; 0: as many as the open-file limit needs
	Origin        string        // Origin header, empty: none
	JSON          bool          // final report as JSON on stdout
	MaxErrors     int           // stop after this many errors; 0: never
	Seed          uint64        // random seed; 0: from the clock
	CPUProfile    string        // write this process's CPU profile here
	Batch         bool          // one write per burst of frames

	// Set by a parent for its children; not for people.
	Child   bool
	StartAt int64 // unix ns at which to start connecting
}

// Default returns the configuration with no flags.
func Default() Config {
	return Config{
		URLs:          []string{"ws://127.0.0.1:8080/ws"},
		Clients:       100,
		Duration:      30 * time.Second,
		ConnectRate:   2000,
		ChatDuration:  2 * time.Second,
		ChatMsgs:      3,
		Typing:        true,
		TextRatio:     0.2,
		InterestRatio: 0.3,
		Interests:     strings.Split("music,films,games,books,sports,travel,art,tech,anime,cooking", ","),
		MaxErrors:     1000,
	}
}

// maxDuration bounds every run: the tool always stops by itself.
const maxDuration = 24 * time.Hour

type pidsFlag struct{ p *[]int }

func (f pidsFlag) String() string {
	if f.p == nil {
		return ""
	}
	s := make([]string, len(*f.p))
	for i, v := range *f.p {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (f pidsFlag) Set(s string) error {
	*f.p = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a PID", v)
		}
		*f.p = append(*f.p, n)
	}
	return nil
}

// Parse reads the command line (without the program name). It returns
// flag.ErrHelp after printing usage to out for --help.
func Parse(args []string, out io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("stranger-load", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Var(config.ListValue(&c.URLs), "url", "comma-separated node WebSocket URLs; clients are spread over them round-robin")
	fs.IntVar(&c.Clients, "clients", c.Clients, "concurrent clients")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "hard stop: the run ends after this long (at most 24h)")
	fs.DurationVar(&c.Ramp, "ramp", c.Ramp, "spread the initial connects over this long (0: use --connect-rate)")
	fs.Float64Var(&c.ConnectRate, "connect-rate", c.ConnectRate, "initial connects per second when --ramp is 0")
	fs.Float64Var(&c.Churn, "churn", c.Churn, "sessions per second that close (status 1000) and are replaced by a fresh connection")
	fs.DurationVar(&c.ChatDuration, "chat-duration", c.ChatDuration, "how long a client stays in a chat after the signal exchange before 'next' (may be 0)")
	fs.IntVar(&c.ChatMsgs, "chat-msgs", c.ChatMsgs, "chat messages each side sends per chat")
	fs.BoolVar(&c.Typing, "typing", c.Typing, "send a typing frame before each chat message")
	fs.Float64Var(&c.TextRatio, "text-ratio", c.TextRatio, "fraction of clients in text mode (the others: video, with offer/answer and candidates)")
	fs.Float64Var(&c.InterestRatio, "interest-ratio", c.InterestRatio, "fraction of clients that join with 1-3 interests")
	fs.Var(config.ListValue(&c.Interests), "interests", "comma-separated pool of interests")
	fs.Float64Var(&c.LeaveRatio, "leave-ratio", c.LeaveRatio, "fraction of chat ends done as leave + join instead of next")
	fs.BoolVar(&c.Idle, "idle", c.Idle, "connect and hold only: no join (idle-session memory measurement)")
	fs.Var(pidsFlag{&c.PIDs}, "pid", "comma-separated server PIDs on this machine: sample their RSS and CPU time from /proc (summed; give every node the clients talk to)")
	fs.Var(config.ListValue(&c.Src), "src", "comma-separated local source addresses, filled in order (default for loopback targets: 127.0.0.1, 127.0.0.2, ... as each runs out of ports)")
	fs.IntVar(&c.Procs, "procs", c.Procs, "processes to run the clients in (0: enough for the open-file limit)")
	fs.StringVar(&c.Origin, "origin", c.Origin, "Origin header to send (default: none, like a non-browser client)")
	fs.BoolVar(&c.JSON, "json", c.JSON, "print the final report as JSON on stdout")
	fs.IntVar(&c.MaxErrors, "max-errors", c.MaxErrors, "stop early after this many errors (0: never)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed (0: from the clock)")
	fs.BoolVar(&c.Batch, "batch", c.Batch, "write each burst of frames (offer + candidates, typing + chat) with one syscall; off: one per frame, as browsers do")
	fs.StringVar(&c.CPUProfile, "cpuprofile", c.CPUProfile, "write the load generator's own CPU profile to this file (with --procs 1)")
	fs.BoolVar(&c.Child, "child", false, "internal: run as a child of --procs, JSON lines on stdout")
	fs.Int64Var(&c.StartAt, "start-at", 0, "internal: unix ns at which to start connecting")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: stranger-load [flags]\n\nSimulates Stranger protocol clients against one or more nodes and reports\nmatches/s, latencies, errors and (with --pid) the server's RSS and CPU.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks ranges and URLs.
func (c *Config) Validate() error {
	var errs []error
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("--url: at least one URL"))
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "ws" && p.Scheme != "wss") || p.Host == "" {
			errs = append(errs, fmt.Errorf("--url: %q is not a ws:// or wss:// URL", u))
		}
	}
	if c.Clients < 1 {
		errs = append(errs, errors.New("--clients must be at least 1"))
	}
	if c.Duration <= 0 || c.Duration > maxDuration {
		errs = append(errs, fmt.Errorf("--duration must be in (0, %v]", maxDuration))
	}
	if c.Ramp < 0 {
		errs = append(errs, errors.New("--ramp must be >= 0"))
	}
	if c.Ramp == 0 && c.ConnectRate <= 0 {
		errs = append(errs, errors.New("--connect-rate must be > 0"))
	}
	if c.Churn < 0 {
		errs = append(errs, errors.New("--churn must be >= 0"))
	}
	if c.ChatDuration < 0 {
		errs = append(errs, errors.New("--chat-duration must be >= 0"))
	}
	if c.ChatMsgs < 0 || c.ChatMsgs > 100 {
		errs = append(errs, errors.New("--chat-msgs must be in [0, 100]"))
	}
	for name, r := range map[string]float64{"--text-ratio": c.TextRatio, "--interest-ratio": c.InterestRatio, "--leave-ratio": c.LeaveRatio} {
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("%s must be in [0, 1]", name))
		}
	}
	if c.InterestRatio > 0 && len(c.Interests) == 0 {
		errs = append(errs, errors.New("--interests: empty pool with --interest-ratio > 0"))
	}
	for _, s := range c.Src {
		if net.ParseIP(s) == nil {
			errs = append(errs, fmt.Errorf("--src: %q is not an IP address", s))
		}
	}
	if c.Procs < 0 {
		errs = append(errs, errors.New("--procs must be >= 0"))
	}
	if c.MaxErrors < 0 {
		errs = append(errs, errors.New("--max-errors must be >= 0"))
	}
	return errors.Join(errs...)
}

// rampDuration is how long the initial connects take.
func (c *Config) rampDuration() time.Duration {
	if c.Ramp > 0 {
		return c.Ramp
	}
	return max(time.Duration(float64(c.Clients)/c.ConnectRate*float64(time.Second)), time.Nanosecond)
}

// childArgs is the command line of child i of n: the same run with a share
// of the clients, connect rate and churn.
func (c *Config) childArgs(i, n int, startAt time.Time) []string {
	share := c.Clients / n
	if i < c.Clients%n {
		share++
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	d := func(v time.Duration) string { return v.String() }
	args := []string{
		"--child", "--start-at", strconv.FormatInt(startAt.UnixNano(), 10),
		"--url", strings.Join(c.URLs, ","),
		"--clients", strconv.Itoa(share),
		"--duration", d(c.Duration),
		"--ramp", d(c.rampDuration()),
		"--churn", f(c.Churn / float64(n)),
		"--chat-duration", d(c.ChatDuration),
		"--chat-msgs", strconv.Itoa(c.ChatMsgs),
		"--typing=" + strconv.FormatBool(c.Typing),
		"--text-ratio", f(c.TextRatio),
		"--interest-ratio", f(c.InterestRatio),
		"--interests", strings.Join(c.Interests, ","),
		"--leave-ratio", f(c.LeaveRatio),
		"--idle=" + strconv.FormatBool(c.Idle),
		"--batch=" + strconv.FormatBool(c.Batch),
		"--max-errors", "0", // the parent enforces the total
		"--procs", "1",
	}
	if len(c.Src) > 0 {
		args = append(args, "--src", strings.Join(c.Src, ","))
	}
	if c.Origin != "" {
		args = append(args, "--origin", c.Origin)
	}
	if c.Seed != 0 {
		args = append(args, "--seed", strconv.FormatUint(c.Seed+uint64(i)+1, 10))
	}
	return args
}
