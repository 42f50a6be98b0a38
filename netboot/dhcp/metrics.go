package dhcp

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	received  *prometheus.CounterVec
	replies   *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	exhausted prometheus.Counter
	cached    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_dhcp_requests_total", Help: "DHCP requests received, by message type.",
		}, []string{"type"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_dhcp_replies_total", Help: "DHCP replies sent, by message type.",
		}, []string{"type"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_dhcp_dropped_total", Help: "DHCP requests dropped without a reply, by reason.",
		}, []string{"reason"}),
		exhausted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slipway_dhcp_pool_exhausted_total", Help: "DISCOVERs left unanswered because the pool was full.",
		}),
		cached: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slipway_dhcp_leases_cached_total", Help: "REQUESTs acknowledged from the lease cache (dhcp.cache_threshold), with no write.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.replies, m.dropped, m.exhausted, m.cached)
	}
	return m
}
