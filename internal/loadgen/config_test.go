package loadgen

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseDefaultsAndFlags(t *testing.T) {
	c, err := Parse(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Clients != 100 || c.Duration != 30*time.Second || len(c.URLs) != 1 || c.MaxErrors != 1000 {
		t.Fatalf("defaults %+v", c)
	}
	c, err = Parse(strings.Fields("--url ws://127.0.0.1:1/ws,ws://127.0.0.1:2/ws --clients 5 --idle --src 127.0.0.5,127.0.0.6 --duration 2s --ramp 1s"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.URLs) != 2 || c.Clients != 5 || !c.Idle || len(c.Src) != 2 || c.rampDuration() != time.Second {
		t.Fatalf("parsed %+v", c)
	}
	c, err = Parse([]string{"--pid", "12, 34"}, &bytes.Buffer{})
	if err != nil || len(c.PIDs) != 2 || c.PIDs[1] != 34 {
		t.Fatalf("--pid list: %v %v", c.PIDs, err)
	}
	if _, err := Parse([]string{"--help"}, &bytes.Buffer{}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	for _, args := range []string{
		"--duration 0", "--duration 25h", "--clients 0", "--url http://x/ws", "--url ws://", "--text-ratio 1.5",
		"--interest-ratio -1", "--src nonsense", "--churn -1", "--chat-duration -1s", "--connect-rate 0",
		"--interests= --interest-ratio 0.5", "extra", "--pid x", "--pid -3",
	} {
		if _, err := Parse(strings.Fields(args), &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// A child's command line parses back into the same run with its share.
func TestChildArgsRoundTrip(t *testing.T) {
	c, err := Parse(strings.Fields("--clients 10 --churn 3 --connect-rate 4 --chat-duration 0s --typing=false --origin http://x --seed 9 --leave-ratio 0.5"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(100, 5)
	total := 0
	for i := range 3 {
		k, err := Parse(c.childArgs(i, 3, start), &bytes.Buffer{})
		if err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		total += k.Clients
		if !k.Child || k.StartAt != start.UnixNano() || k.Churn != 1 || k.Typing || k.Origin != "http://x" ||
			k.ChatDuration != 0 || k.LeaveRatio != 0.5 || k.MaxErrors != 0 || k.Seed == c.Seed {
			t.Fatalf("child %d config %+v", i, k)
		}
		// The children ramp over the parent's ramp: 10 clients at 4/s.
		if k.rampDuration() != 2500*time.Millisecond {
			t.Fatalf("child ramp %v", k.rampDuration())
		}
	}
	if total != 10 {
		t.Fatalf("children hold %d clients, want 10", total)
	}
}

func TestParseProc(t *testing.T) {
	rss, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t  10 kB\nVmRSS:\t   12345 kB\nThreads: 3\n"))
	if err != nil || rss != 12345 {
		t.Fatalf("VmRSS %d %v", rss, err)
	}
	if _, err := parseVmRSS([]byte("Name: x\n")); err == nil {
		t.Fatal("missing VmRSS accepted")
	}
	// A command name with spaces and parentheses must not shift the fields.
	stat := "42 (my (odd) proc) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 1000 200 18446744073709551615"
	cpu, err := parseStatCPU([]byte(stat))
	if err != nil || cpu != 3.0 {
		t.Fatalf("cpu %v %v, want 3s (250+50 ticks)", cpu, err)
	}
	if _, err := parseStatCPU([]byte("42 (x) S 1 2")); err == nil {
		t.Fatal("short stat accepted")
	}
}

// Reading our own process from the real /proc gives a sane sample, and
// burning CPU shows up in it.
func TestReadProcSelf(t *testing.T) {
	s0, err := readProc("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s0.RSSKiB < 1000 {
		t.Fatalf("own RSS %d KiB", s0.RSSKiB)
	}
	// Burn 0.2 s of CPU as getrusage counts it (wall time would be flaky
	// on a busy machine); /proc must see about the same.
	ru0, deadline := selfCPU(), time.Now().Add(20*time.Second)
	x := 0
	for selfCPU()-ru0 < 0.2 && time.Now().Before(deadline) {
		for range 100000 {
			x++
		}
	}
	s1, err := readProc("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := s1.CPU - s0.CPU; d < 0.15 {
		t.Fatalf("0.2s of CPU by getrusage shows as %.2fs in /proc (x=%d)", d, x)
	}
	sum, err := readProcs("/proc", []int{os.Getpid(), os.Getpid()})
	if err != nil || sum.RSSKiB < 2*s0.RSSKiB*9/10 {
		t.Fatalf("sum of two samples of ourselves: %+v %v", sum, err)
	}
	if _, err := readProc("/proc", 1<<30); err == nil {
		t.Fatal("no such process, no error")
	}
}

func TestRaiseFDLimit(t *testing.T) {
	n, err := raiseFDLimit()
	if err != nil || n < 1024 {
		t.Fatalf("limit %d %v", n, err)
	}
}

func TestAutoSources(t *testing.T) {
	d := newSrcDialer(nil, []string{"ws://127.0.0.1:8080/ws"})
	if len(d.addrs) != 254 || d.addrs[0].String() != "127.0.0.1" || d.addrs[1].String() != "127.0.0.2" {
		t.Fatalf("auto sources %v...", d.addrs[:2])
	}
	if d := newSrcDialer(nil, []string{"ws://localhost:8080/ws"}); len(d.addrs) != 0 {
		t.Fatal("a host name target gets automatic loopback sources")
	}
	if d := newSrcDialer([]string{"127.0.0.9"}, []string{"ws://[::1]:8080/ws"}); len(d.addrs) != 1 {
		t.Fatal("explicit sources ignored")
	}
}

func TestParseMachineCPU(t *testing.T) {
	busy, total, err := parseMachineCPU([]byte("cpu  100 5 50 800 40 0 5 0 0 0\ncpu0 1 2 3 4\n"))
	if err != nil || busy != 1.6 || total != 10 {
		t.Fatalf("busy %v total %v %v, want 1.6 of 10 s", busy, total, err)
	}
	if _, _, err := parseMachineCPU([]byte("intr 1 2\n")); err == nil {
		t.Fatal("a non-cpu line accepted")
	}
	if _, total, err := machineCPU("/proc"); err != nil || total <= 0 {
		t.Fatalf("real /proc/stat: %v %v", total, err)
	}
}

// When a source address cannot be used (EADDRNOTAVAIL, as when its
// ephemeral ports are exhausted), dials move on to the next one for good.
func TestSrcDialerMovesOn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// 192.0.2.1 (TEST-NET-1) is not an address of this machine: binding it
	// fails with EADDRNOTAVAIL like an exhausted source address.
	d := newSrcDialer([]string{"192.0.2.1", "127.0.0.3"}, nil)
	for range 3 {
		c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.3" {
			t.Fatalf("dialed from %s, want 127.0.0.3", got)
		}
		c.Close()
	}
	if d.cur.Load() != 1 || d.sourcesUsed() != 2 {
		t.Fatalf("cur %d used %d", d.cur.Load(), d.sourcesUsed())
	}
	d = newSrcDialer([]string{"192.0.2.1"}, nil)
	if _, err := d.DialContext(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, errSourcesExhausted) || dialErrorKind(err, nil) != "dial_no_source_ports" {
		t.Fatalf("all sources unusable: %v", err)
	}
}
