package turnserver

import "github.com/prometheus/client_golang/prometheus"

var (
	descActive   = prometheus.NewDesc("stranger_turn_allocations_active", "Live TURN allocations.", nil, nil)
	descAllocs   = prometheus.NewDesc("stranger_turn_allocations_total", "TURN allocations created.", nil, nil)
	descDenied   = prometheus.NewDesc("stranger_turn_permissions_denied_total", "TURN permissions refused by the relay peer policy.", nil, nil)
	descQuota    = prometheus.NewDesc("stranger_turn_quota_refused_total", "TURN allocations refused by a quota.", nil, nil)
	descAuth     = prometheus.NewDesc("stranger_turn_auth_refused_total", "TURN requests with expired, forged, malformed or other-realm credentials.", nil, nil)
	descRelayed  = prometheus.NewDesc("stranger_turn_relayed_bytes_total", "Payload bytes relayed, both directions.", nil, nil)
	descDropped  = prometheus.NewDesc("stranger_turn_bandwidth_dropped_packets_total", "Datagrams dropped by the per-allocation bandwidth cap.", nil, nil)
	descQuotaIP  = prometheus.NewDesc("stranger_turn_quota_refused_ip_total", "TURN allocations refused by the per-IP cap (--turn-max-allocs-per-ip); also counted in stranger_turn_quota_refused_total.", nil, nil)
	descEnded    = prometheus.NewDesc("stranger_turn_ended_session_refused_total", "TURN requests refused because the credential's session has ended or is no longer in a chat.", nil, nil)
	descAliveErr = prometheus.NewDesc("stranger_turn_session_check_errors_total", "Session checks that failed (the request was let through).", nil, nil)
	descTCPRef   = prometheus.NewDesc("stranger_turn_tcp_refused_total", "TCP and TLS TURN connections refused at accept, by cap.", []string{"cap"}, nil)
	descTCPTO    = prometheus.NewDesc("stranger_turn_tcp_auth_timeouts_total", "TCP and TLS TURN connections closed for not authenticating within --turn-auth-timeout.", nil, nil)
	allTURNDescs = []*prometheus.Desc{descActive, descAllocs, descDenied, descQuota, descAuth, descRelayed, descDropped,
		descQuotaIP, descEnded, descAliveErr, descTCPRef, descTCPTO}
)

// Server is a prometheus.Collector: register it with reg.MustRegister(srv).
var _ prometheus.Collector = (*Server)(nil)

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allTURNDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector from one Stats snapshot.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(st.AllocationsActive))
	ch <- prometheus.MustNewConstMetric(descAllocs, prometheus.CounterValue, float64(st.AllocationsTotal))
	ch <- prometheus.MustNewConstMetric(descDenied, prometheus.CounterValue, float64(st.PermissionsDenied))
	ch <- prometheus.MustNewConstMetric(descQuota, prometheus.CounterValue, float64(st.QuotaRefused))
	ch <- prometheus.MustNewConstMetric(descAuth, prometheus.CounterValue, float64(st.AuthRefused))
	ch <- prometheus.MustNewConstMetric(descRelayed, prometheus.CounterValue, float64(st.RelayedBytes))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.DroppedPackets))
	ch <- prometheus.MustNewConstMetric(descQuotaIP, prometheus.CounterValue, float64(st.QuotaRefusedIP))
	ch <- prometheus.MustNewConstMetric(descEnded, prometheus.CounterValue, float64(st.EndedRefused))
	ch <- prometheus.MustNewConstMetric(descAliveErr, prometheus.CounterValue, float64(st.SessionCheckErrs))
	ch <- prometheus.MustNewConstMetric(descTCPRef, prometheus.CounterValue, float64(st.TCPRefusedIP), "ip")
	ch <- prometheus.MustNewConstMetric(descTCPRef, prometheus.CounterValue, float64(st.TCPRefusedTotal), "total")
	ch <- prometheus.MustNewConstMetric(descTCPTO, prometheus.CounterValue, float64(st.TCPAuthTimeouts))
}
