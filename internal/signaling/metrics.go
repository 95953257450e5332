package signaling

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strangerchat/stranger/internal/protocol"
)

// Metrics are the signaling layer's Prometheus collectors. Counters used on
// the relay path are resolved once here so the hot path does no label lookup.
type Metrics struct {
	Connected   prometheus.Gauge
	Connections prometheus.Counter
	Matches     prometheus.Counter
	MatchWait   prometheus.Histogram
	Resumes     *prometheus.CounterVec
	Ended       *prometheus.CounterVec
	Reports     prometheus.Counter
	ReportsLost prometheus.Counter
	// QuotaRefusals counts what the quotas refused, by reason (quota.go).
	QuotaRefusals *prometheus.CounterVec
	// MessageTimeouts counts connections closed with 1008 because a
	// message was not complete in time (websocket.Upgrader).
	MessageTimeouts prometheus.Counter

	relayed [8]prometheus.Counter // by protocol.Type
	errors  map[protocol.Code]prometheus.Counter
	pow     *powMetrics
}

// NewMetrics registers the collectors with reg (a fresh registry in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stranger_sessions_connected", Help: "Sessions with a live WebSocket on this node."}),
		Connections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stranger_connections_total", Help: "WebSocket connections accepted."}),
		Matches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stranger_matches_total", Help: "Chats started (counted on the node of the initiator)."}),
		MatchWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "stranger_match_wait_seconds", Help: "Time a session waited in the queue before it was matched.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		Resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stranger_resumes_total", Help: "Resume attempts by result (resumed, unknown, lost)."}, []string{"result"}),
		Ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stranger_sessions_ended_total", Help: "Sessions ended, by cause."}, []string{"cause"}),
		Reports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stranger_reports_total", Help: "Reports made (accepted by the engine)."}),
		ReportsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stranger_reports_lost_total", Help: "Reports whose record the moderation store refused or could not take (logged)."}),
		QuotaRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stranger_quota_refusals_total", Help: "Connections and join/next frames refused by a quota, by reason (docs/security.md, Quotas)."}, []string{"reason"}),
		errors: map[protocol.Code]prometheus.Counter{},
		MessageTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stranger_ws_message_timeouts_total", Help: "Connections closed (1008) because a message was not complete within 10 s of its first frame."}),
		pow: newPowMetrics(reg),
	}
	relayed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stranger_messages_relayed_total", Help: "Client messages relayed to a partner, by type."}, []string{"type"})
	for _, t := range []protocol.Type{protocol.TypeSignal, protocol.TypeChat, protocol.TypeTyping} {
		m.relayed[t] = relayed.WithLabelValues(t.String())
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stranger_errors_total", Help: "Error frames sent to clients, by code."}, []string{"code"})
	for _, c := range protocol.Codes {
		m.errors[c] = errs.WithLabelValues(string(c))
	}
	// Known label values start at 0, so dashboards see the series at once.
	for _, r := range []string{"resumed", "unknown", "lost"} {
		m.Resumes.WithLabelValues(r)
	}
	for _, r := range refusalReasons {
		m.QuotaRefusals.WithLabelValues(r)
	}
	reg.MustRegister(m.QuotaRefusals)
	reg.MustRegister(m.Connected, m.Connections, m.Matches, m.MatchWait, m.Resumes, m.Ended, m.Reports, m.ReportsLost, relayed, errs)
	reg.MustRegister(m.MessageTimeouts)
	return m
}
