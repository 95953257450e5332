package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// It is 100 on every Linux architecture Go supports (it is part of the
// kernel ABI, independent of CONFIG_HZ).
const clockTicks = 100

// procSample is one reading of a process from /proc.
type procSample struct {
	RSSKiB uint64
	CPU    float64 // user + system seconds
}

// readProc reads VmRSS from /proc/PID/status and utime+stime from
// /proc/PID/stat.
func readProc(procRoot string, pid int) (procSample, error) {
	dir := procRoot + "/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return procSample{}, fmt.Errorf("read server status: %w", err)
	}
	rss, err := parseVmRSS(status)
	if err != nil {
		return procSample{}, fmt.Errorf("%s/status: %w", dir, err)
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procSample{}, fmt.Errorf("read server stat: %w", err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	return procSample{RSSKiB: rss, CPU: cpu}, nil
}

func parseVmRSS(status []byte) (uint64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", bytes.TrimSpace(line))
		}
		return strconv.ParseUint(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// parseStatCPU returns utime+stime in seconds. The command name (field 2)
// may hold spaces and parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' in stat")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat has %d fields after comm", len(f))
	}
	ut, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	st, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return float64(ut+st) / clockTicks, nil
}

// raiseFDLimit sets the soft open-file limit to the hard one and returns
// the new soft limit. (The Go runtime does this too at start; doing it here
// makes the limit explicit and reportable.)
func raiseFDLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return l.Cur, nil
}
