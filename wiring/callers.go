package wiring

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/keyfile"
	"github.com/slipway/slipway/netboot/neighbor"
)

// nodeCallers is the check the node-facing doors put a request naming a
// MAC to (netboot.caller_check): the lease book once DHCP starts (none in
// proxy mode), the kernel's neighbour table, and node tokens made with
// the node key.
func (a *Appliance) nodeCallers(p *parts, reg prometheus.Registerer) (*domain.CallerCheck, error) {
	key, err := keyfile.Load(a.cfg.NodeKeyFile())
	if err != nil {
		return nil, err
	}
	table := neighbor.Table{}
	check := domain.NewCallerCheck(domain.CallerCheckConfig{Policy: domain.CallerPolicy(a.cfg.Netboot.CallerCheck), Key: key,
		Log: a.log.With("part", "nodes"), Neighbor: table.Lookup, Own: a.cfg.LANIP(),
		Leased: func(mac domain.MAC) (netip.Addr, bool) {
			if book := p.leases.Load(); book != nil {
				return book.BoundTo(mac)
			}
			return netip.Addr{}, false
		}})
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "slipway_node_requests_refused_total",
		Help: "Requests naming a MAC (heartbeats, cloud-init, boot configs) refused because they did not come from that machine (netboot.caller_check).",
	}, func() float64 { return float64(check.Refused()) }))
	return check, nil
}
