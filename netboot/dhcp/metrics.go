package dhcp

import (
	"sync/atomic"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	received  *countersByType
	replies   *countersByType
	dropped   *prometheus.CounterVec
	exhausted prometheus.Counter
	cached    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received: newCountersByType(prometheus.CounterOpts{
			Name: "slipway_dhcp_requests_total", Help: "DHCP requests received, by message type.",
		}),
		replies: newCountersByType(prometheus.CounterOpts{
			Name: "slipway_dhcp_replies_total", Help: "DHCP replies sent, by message type.",
		}),
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
		reg.MustRegister(m.received.vec, m.replies.vec, m.dropped, m.exhausted, m.cached)
	}
	return m
}

// countersByType is a counter per DHCP message type, each looked up in its
// vector once: hashing the label for every packet was work a busy server
// did twice per exchange.
type countersByType struct {
	vec  *prometheus.CounterVec
	each [256]atomic.Pointer[prometheus.Counter]
}

func newCountersByType(opts prometheus.CounterOpts) *countersByType {
	return &countersByType{vec: prometheus.NewCounterVec(opts, []string{"type"})}
}

func (c *countersByType) inc(t dhcpv4.MessageType) {
	counter := c.each[t].Load()
	if counter == nil {
		// Two packets may both get here first: the vector gives both the
		// same counter.
		found := c.vec.WithLabelValues(t.String())
		counter = &found
		c.each[t].Store(counter)
	}
	(*counter).Inc()
}
