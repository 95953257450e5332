package moderation

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	reportsFiled    prometheus.Counter
	reportsRefused  *prometheus.CounterVec // reason: rate
	bans            *prometheus.CounterVec // source: auto, moderator
	evidenceStored  prometheus.Counter
	evidenceRefused *prometheus.CounterVec // reason: token, size, type, cap
	evidencePruned  prometheus.Counter
	authFailures    *prometheus.CounterVec // result: wrong, limited
	swept           *prometheus.CounterVec // what: reports, evidence, bans
}

func newMetrics(reg prometheus.Registerer, bansActive func() float64) *metrics {
	m := &metrics{
		reportsFiled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stranger_moderation_reports_filed_total", Help: "Reports stored."}),
		reportsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stranger_moderation_reports_refused_total", Help: "Reports refused, by reason (rate: the reporter's per-identity limit)."},
			[]string{"reason"}),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stranger_moderation_bans_total", Help: "Bans started on this node, by source (auto, moderator)."},
			[]string{"source"}),
		evidenceStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stranger_moderation_evidence_stored_total", Help: "Evidence images stored."}),
		evidenceRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stranger_moderation_evidence_refused_total", Help: "Evidence uploads refused, by reason (token, size, type, cap)."},
			[]string{"reason"}),
		evidencePruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stranger_moderation_evidence_pruned_total", Help: "Images of dismissed reports deleted to stay under the evidence cap."}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stranger_moderation_admin_auth_failures_total", Help: "Operator API requests refused on the public listener, by result (wrong: no or a wrong token; limited: too many failures from the identity)."},
			[]string{"result"}),
		swept: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stranger_moderation_swept_total", Help: "Records deleted by the retention sweep, by kind (reports, evidence, bans)."},
			[]string{"what"}),
	}
	// Labels known in advance start at zero, so a dashboard sees them.
	m.reportsRefused.WithLabelValues("rate")
	for _, s := range []string{"auto", "moderator"} {
		m.bans.WithLabelValues(s)
	}
	for _, r := range []string{"token", "size", "type", "cap"} {
		m.evidenceRefused.WithLabelValues(r)
	}
	for _, r := range []string{"wrong", "limited"} {
		m.authFailures.WithLabelValues(r)
	}
	for _, w := range []string{"reports", "evidence", "bans"} {
		m.swept.WithLabelValues(w)
	}
	reg.MustRegister(m.reportsFiled, m.reportsRefused, m.bans, m.evidenceStored, m.evidenceRefused,
		m.evidencePruned, m.authFailures, m.swept,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stranger_moderation_bans_active", Help: "Bans in force in this node's memory (what the connect-time check consults)."},
			bansActive))
	return m
}
