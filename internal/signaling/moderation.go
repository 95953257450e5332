package signaling

import (
	"log/slog"
	"sync"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
)

// Moderation records reports and bans client IPs that several distinct
// people reported within the ban window. It is the deployment's ban policy
// of protocol.md ("how bans arise is the deployment's policy").
type Moderation struct {
	clock     clock.Clock
	log       *slog.Logger
	threshold int
	window    time.Duration

	mu      sync.Mutex
	reports map[string]map[string]time.Time // reported IP -> reporter IP -> last report
	bans    map[string]time.Time            // IP -> ban end
}

// Report is one report as recorded.
type Report struct {
	Reporter, Reported     ids.SessionID
	ReporterIP, ReportedIP string
	Room                   match.RoomID
	Reason                 string
}

// NewModeration returns the policy; threshold 0 never bans.
func NewModeration(c clock.Clock, log *slog.Logger, threshold int, window time.Duration) *Moderation {
	return &Moderation{clock: c, log: log, threshold: threshold, window: window,
		reports: map[string]map[string]time.Time{}, bans: map[string]time.Time{}}
}

// Record logs the report and bans the reported IP when enough distinct
// reporters (by IP) reported it within the window. A reporter cannot ban
// itself by reporting from the same address.
func (m *Moderation) Record(r Report) {
	m.log.Info("report", "reporter", string(r.Reporter), "reported", string(r.Reported), "reporter_ip", r.ReporterIP,
		"reported_ip", r.ReportedIP, "reason", r.Reason)
	if m.threshold == 0 || r.ReportedIP == "" || r.ReporterIP == r.ReportedIP {
		return
	}
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	by := m.reports[r.ReportedIP]
	if by == nil {
		by = map[string]time.Time{}
		m.reports[r.ReportedIP] = by
	}
	by[r.ReporterIP] = now
	n := 0
	for ip, at := range by {
		if now.Sub(at) > m.window {
			delete(by, ip)
			continue
		}
		n++
	}
	if n >= m.threshold {
		m.bans[r.ReportedIP] = now.Add(m.window)
		delete(m.reports, r.ReportedIP)
		m.log.Warn("banned", "ip", r.ReportedIP, "reporters", n, "until", now.Add(m.window))
	}
	m.gcLocked(now)
}

// Banned reports whether ip is banned now.
func (m *Moderation) Banned(ip string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	end, ok := m.bans[ip]
	if !ok {
		return false
	}
	if !m.clock.Now().Before(end) {
		delete(m.bans, ip)
		return false
	}
	return true
}

// gcLocked drops stale entries now and then so the maps stay bounded by the
// reports of one window.
func (m *Moderation) gcLocked(now time.Time) {
	if len(m.reports) < 4096 {
		return
	}
	for ip, by := range m.reports {
		for r, at := range by {
			if now.Sub(at) > m.window {
				delete(by, r)
			}
		}
		if len(by) == 0 {
			delete(m.reports, ip)
		}
	}
}
