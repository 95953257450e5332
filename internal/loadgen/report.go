package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Derived figures of a result, computed in one place for the text report
// and for tests.

// MatchesPerSec is the match rate over the steady window (after the ramp),
// or over the whole run when there is no steady window.
func (r *Result) MatchesPerSec() float64 {
	if r.SteadyS > 0 {
		return r.Steady.Matches() / r.SteadyS
	}
	if r.Elapsed > 0 {
		return r.Total.Matches() / r.Elapsed
	}
	return 0
}

// CPUPerRelayedMsg is server CPU time per relayed message, over the steady
// window when it saw messages, else over the whole run; 0 when unknown.
func (r *Result) CPUPerRelayedMsg() time.Duration {
	if r.Server == nil {
		return 0
	}
	cpu, n := r.Server.SteadyCPU, r.Steady.Relayed()
	if n == 0 {
		cpu, n = r.Server.CPUSeconds, r.Total.Relayed()
	}
	if n == 0 {
		return 0
	}
	return time.Duration(cpu / float64(n) * float64(time.Second))
}

// RSSPerConnKiB is the server's RSS growth over its idle baseline divided
// by the connections held at the end; 0 when unknown.
func (r *Result) RSSPerConnKiB() float64 {
	if r.Server == nil || r.EndConns == 0 || r.Server.RSSEndKiB < r.Server.RSSBaselineKiB {
		return 0
	}
	return float64(r.Server.RSSEndKiB-r.Server.RSSBaselineKiB) / float64(r.EndConns)
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtHist(h HistSnapshot, qs ...float64) string {
	if h.Count == 0 {
		return "no samples"
	}
	var b strings.Builder
	for _, q := range qs {
		fmt.Fprintf(&b, "p%g %s  ", q*100, fmtDur(h.Quantile(q)))
	}
	fmt.Fprintf(&b, "max %s  (n=%d)", fmtDur(time.Duration(h.Max)), h.Count)
	return b.String()
}

func fmtCounts(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// writeReport prints the human-readable final report.
func writeReport(w io.Writer, r *Result) {
	mode := "realistic exchange"
	if r.Idle {
		mode = "idle (connect and hold)"
	}
	fmt.Fprintf(w, "stranger-load: %d clients, %s, %d process(es), %.1fs (ramp %.1fs, steady %.1fs), stopped by %s\n",
		r.Clients, mode, r.Procs, r.Elapsed, r.RampS, r.SteadyS, r.StoppedBy)
	fmt.Fprintf(w, "connections    peak %d, end %d, sessions opened %d, source addresses %d, fd limit %d\n",
		r.PeakConns, r.EndConns, r.Total.Connects, r.Sources, r.FDLimit)
	fmt.Fprintf(w, "connect        %s\n", fmtHist(r.ConnectLatency, 0.5, 0.99))
	if r.PowSolve.Count > 0 {
		share := 0.0
		if r.LoadCPU > 0 {
			share = 100 * r.PowCPU / r.LoadCPU
		}
		fmt.Fprintf(w, "proof of work  %s; %.2fs CPU, %.0f%% of the load generator's\n", fmtHist(r.PowSolve, 0.5, 0.99), r.PowCPU, share)
	}
	if !r.Idle {
		fmt.Fprintf(w, "matches        %.0f total, %.1f/s (steady window)\n", r.Total.Matches(), r.MatchesPerSec())
		fmt.Fprintf(w, "time to match  %s\n", fmtHist(r.TimeToMatch, 0.5, 0.9, 0.99))
		fmt.Fprintf(w, "signal relay   %s\n", fmtHist(r.SignalLatency, 0.5, 0.99))
		fmt.Fprintf(w, "chat relay     %s\n", fmtHist(r.ChatLatency, 0.5, 0.99))
		relayRate := 0.0
		if r.SteadyS > 0 {
			relayRate = float64(r.Steady.Relayed()) / r.SteadyS
		}
		fmt.Fprintf(w, "relayed        %d signal, %d chat, %d typing (%.0f msgs/s steady); %d frames sent; offer frame %d B\n",
			r.Total.RelayedSignal, r.Total.RelayedChat, r.Total.RelayedTyping, relayRate, r.Total.Sent, r.Payload)
		if len(r.PeerLeft) > 0 {
			fmt.Fprintf(w, "peer_left      %s\n", fmtCounts(r.PeerLeft))
		}
		if len(r.Crossed) > 0 {
			fmt.Fprintf(w, "crossed        %s (frames sent as the partner left; expected, not errors)\n", fmtCounts(r.Crossed))
		}
	}
	if len(r.Events) > 0 {
		fmt.Fprintf(w, "events         %s\n", fmtCounts(r.Events))
	}
	if r.Total.Errors == 0 {
		fmt.Fprintf(w, "errors         none\n")
	} else {
		fmt.Fprintf(w, "errors         %d", r.Total.Errors)
		if len(r.ErrorCodes) > 0 {
			fmt.Fprintf(w, "; error frames by code: %s", fmtCounts(r.ErrorCodes))
		}
		if len(r.ErrorKinds) > 0 {
			fmt.Fprintf(w, "; client side by kind: %s", fmtCounts(r.ErrorKinds))
		}
		fmt.Fprintln(w)
	}
	if r.MachineTotal > 0 {
		other := r.MachineBusy - r.LoadCPU
		if r.Server != nil {
			other -= r.Server.CPUSeconds
		}
		fmt.Fprintf(w, "machine        %.0f%% busy over all CPUs; load generator %.2fs CPU, other processes %.2fs",
			100*r.MachineBusy/r.MachineTotal, r.LoadCPU, max(other, 0))
		if r.Server == nil {
			fmt.Fprintf(w, " (server included: no --pid)")
		}
		fmt.Fprintln(w)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server pid %s  RSS baseline %.1f MiB, peak %.1f MiB, end %.1f MiB",
			pidsFlag{&s.PIDs}.String(), float64(s.RSSBaselineKiB)/1024, float64(s.RSSPeakKiB)/1024, float64(s.RSSEndKiB)/1024)
		if k := r.RSSPerConnKiB(); k > 0 {
			fmt.Fprintf(w, "; %.2f KiB per connection held", k)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "server CPU     %.2fs whole run (%.0f%% of one core), %.2fs steady",
			s.CPUSeconds, 100*s.CPUSeconds/max(r.Elapsed, 1e-9), s.SteadyCPU)
		if d := r.CPUPerRelayedMsg(); d > 0 {
			fmt.Fprintf(w, "; %.2fµs per relayed message", float64(d)/1e3)
		}
		if m := r.Steady.Matches(); m > 0 {
			fmt.Fprintf(w, "; %.1fµs per match (all its traffic)", s.SteadyCPU/m*1e6)
		}
		fmt.Fprintln(w)
	}
}
