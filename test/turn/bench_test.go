//go:build turnbench

package turn_test

// The TURN relay benchmark (docs/benchmarks.md): the same
// turnutils_uclient load against coturn and against the embedded server
// running as its own process (test/turn/turnbench), alternating runs so both
// see the same background load, server CPU time read from /proc/PID/stat.
//
//	go test -tags turnbench -run TestTURNBench -v ./test/turn/
//
// The embedded server runs as `stranger turn` (cmd/stranger), the relay
// mode operators deploy. TURNBENCH_RUNS (default 5) and TURNBENCH_ARGS (uclient load flags,
// default below) tune it; TURNBENCH_OUT names a file for the markdown table;
// TURNBENCH_SOCKETS and TURNBENCH_GOMAXPROCS vary the embedded process;
// TURNBENCH_PROFILE writes a CPU profile of the embedded server.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/turnserver"
)

// -y: clients relay to each other (every datagram crosses the server twice:
// client→relay A→relay B→client); -c: no RTCP pair; -m clients; -n
// messages per client; -l bytes per message; -z ms between messages.
const defaultLoad = "-y -c -m 10 -n 1000 -l 1000 -z 1"

type benchServer struct {
	name string
	pid  int
	port int
}

type benchRun struct {
	server   string
	wall     time.Duration
	cpu      time.Duration // server utime+stime
	recv     int64         // payload bytes received by the clients
	lostPerc float64
}

func (r benchRun) mbps() float64      { return float64(r.recv) / 1e6 / r.wall.Seconds() }
func (r benchRun) mbPerCPUs() float64 { return float64(r.recv) / 1e6 / r.cpu.Seconds() }

func cpuTime(t *testing.T, pid int, tick float64) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("read stat: %v", err)
	}
	// Fields after the ")" that closes comm: state is field 3, utime 14,
	// stime 15 (proc(5)).
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return time.Duration((ut + st) / tick * float64(time.Second))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

var (
	recvBytesRe = regexp.MustCompile(`tot_recv_bytes ~ (\d+)`)
	lostPercRe  = regexp.MustCompile(`Total lost packets \d+ \(([\d.]+)%\)`)
)

func startEmbeddedProcess(t *testing.T) benchServer {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "turnbench")
	build := exec.Command("go", "build", "-o", bin, "./turnbench")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build turnbench: %v\n%s", err, out)
	}
	port := freePort(t)
	args := []string{
		"-listen", "127.0.0.1:" + strconv.Itoa(port), "-public-ip", "127.0.0.1",
		"-realm", realm, "-secret", secret, "-min-port", "50000", "-max-port", "50999",
		"-allow-loopback",
	}
	if s := os.Getenv("TURNBENCH_SOCKETS"); s != "" {
		args = append(args, "-sockets", s)
	}
	if p := os.Getenv("TURNBENCH_PROFILE"); p != "" {
		args = append(args, "-cpuprofile", p)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	if g := os.Getenv("TURNBENCH_GOMAXPROCS"); g != "" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+g)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errOut := &syncBuffer{}
	cmd.Stderr = errOut
	if err := cmd.Start(); err != nil {
		t.Fatalf("start turnbench: %v", err)
	}
	t.Cleanup(func() {
		// SIGINT lets it write its profile and stats.
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		t.Logf("embedded server: %s", strings.TrimSpace(errOut.String()))
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("turnbench did not start: %q %v\n%s", line, err, errOut.String())
	}
	return benchServer{name: "embedded (pion/turn)", pid: cmd.Process.Pid, port: port}
}

// startStrangerTurn runs `stranger turn`, the relay mode operators deploy,
// with its default GOMAXPROCS unless TURNBENCH_GOMAXPROCS says otherwise.
func startStrangerTurn(t *testing.T) benchServer {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stranger")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/stranger")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build stranger: %v\n%s", err, out)
	}
	port := freePort(t)
	args := []string{"turn",
		"--turn-listen", "127.0.0.1:" + strconv.Itoa(port), "--turn-public-ip", "127.0.0.1",
		"--turn-realm", realm, "--turn-secret", secret, "--turn-relay-ports", "50000-50999",
		"--turn-allow-loopback", "--turn-bandwidth", "0", "--turn-max-allocs-per-user", "1000",
		"--admin-addr", "", "--log-level", "info",
	}
	if g := os.Getenv("TURNBENCH_GOMAXPROCS"); g != "" {
		args = append(args, "--gomaxprocs", g)
	}
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stranger turn: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "relay running") {
			t.Logf("stranger turn: %s", sc.Text())
			go func() {
				for sc.Scan() { // keep the pipe drained
				}
			}()
			return benchServer{name: "stranger turn", pid: cmd.Process.Pid, port: port}
		}
	}
	t.Fatal("stranger turn did not start")
	return benchServer{}
}

func TestTURNBench(t *testing.T) {
	requireBinary(t, "turnutils_uclient")
	runs := 5
	if s := os.Getenv("TURNBENCH_RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	load := defaultLoad
	if s := os.Getenv("TURNBENCH_ARGS"); s != "" {
		load = s
	}
	tickOut, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		t.Fatalf("getconf CLK_TCK: %v", err)
	}
	tick, _ := strconv.ParseFloat(strings.TrimSpace(string(tickOut)), 64)

	c := startCoturn(t, "")
	// The shipped relay mode by default; the bare harness (turnbench) when
	// its knobs (sockets, CPU profile) are asked for.
	relay := startStrangerTurn
	if os.Getenv("TURNBENCH_SOCKETS") != "" || os.Getenv("TURNBENCH_PROFILE") != "" {
		relay = startEmbeddedProcess
	}
	servers := []benchServer{
		relay(t),
		{name: "coturn " + coturnVersion(t), pid: c.Cmd.Process.Pid, port: c.Port},
	}

	one := func(s benchServer, i int) benchRun {
		user, pass := turnserver.Mint(secret, fmt.Sprintf("s_bench%d", i), time.Now().Add(time.Hour))
		args := append(strings.Fields(load), "-u", user, "-w", pass)
		cpu0, t0 := cpuTime(t, s.pid, tick), time.Now()
		out, err := uclient(t, s.port, args...)
		wall, cpu := time.Since(t0), cpuTime(t, s.pid, tick)-cpu0
		if err != nil {
			t.Fatalf("%s run %d: %v\n%s", s.name, i, err, out)
		}
		r := benchRun{server: s.name, wall: wall, cpu: cpu}
		if m := recvBytesRe.FindAllStringSubmatch(out, -1); len(m) > 0 {
			r.recv, _ = strconv.ParseInt(m[len(m)-1][1], 10, 64)
		}
		if m := lostPercRe.FindAllStringSubmatch(out, -1); len(m) > 0 {
			r.lostPerc, _ = strconv.ParseFloat(m[len(m)-1][1], 64)
		}
		if r.recv == 0 || cpu == 0 {
			t.Fatalf("%s run %d: nothing measured (recv %d, cpu %v)\n%s", s.name, i, r.recv, cpu, out)
		}
		t.Logf("%-22s run %d: wall %6.2fs  server CPU %5.2fs  recv %5.1f MB  %6.2f MB/s  %6.1f MB per CPU-s  lost %.2f%%",
			s.name, i, wall.Seconds(), cpu.Seconds(), float64(r.recv)/1e6, r.mbps(), r.mbPerCPUs(), r.lostPerc)
		return r
	}

	results := map[string][]benchRun{}
	for i := range runs {
		// Alternate the order so neither server always runs second.
		order := servers
		if i%2 == 1 {
			order = []benchServer{servers[1], servers[0]}
		}
		for _, s := range order {
			results[s.name] = append(results[s.name], one(s, i))
		}
	}

	var table strings.Builder
	fmt.Fprintf(&table, "| server | runs | median throughput (MB/s) | median server CPU (s) | median MB relayed per CPU-second | median CPU ms per MB | median loss |\n")
	fmt.Fprintf(&table, "| --- | --- | --- | --- | --- | --- | --- |\n")
	perCore := map[string]float64{}
	for _, s := range servers {
		rs := results[s.name]
		var tp, cpu, eff, msPerMB, loss []float64
		for _, r := range rs {
			tp = append(tp, r.mbps())
			cpu = append(cpu, r.cpu.Seconds())
			eff = append(eff, r.mbPerCPUs())
			msPerMB = append(msPerMB, 1000/r.mbPerCPUs())
			loss = append(loss, r.lostPerc)
		}
		perCore[s.name] = median(eff)
		fmt.Fprintf(&table, "| %s | %d | %.2f | %.2f | %.1f | %.1f | %.2f%% |\n",
			s.name, len(rs), median(tp), median(cpu), median(eff), median(msPerMB), median(loss))
	}
	ratio := perCore[servers[0].name] / perCore[servers[1].name]
	fmt.Fprintf(&table, "\nRatio embedded / coturn, MB relayed per CPU-second (throughput per core): **%.2f×** (goal ≥ 0.8×)\n", ratio)
	fmt.Fprintf(&table, "\nLoad: `turnutils_uclient %s -u <minted> -w <minted> -p PORT 127.0.0.1`\n", load)
	t.Logf("\n%s", table.String())
	if out := os.Getenv("TURNBENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func coturnVersion(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "turnserver", "--version").CombinedOutput()
	lines := strings.Fields(strings.TrimSpace(string(out)))
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}
