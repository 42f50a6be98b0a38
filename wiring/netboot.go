package wiring

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/netboot/boot"
	"github.com/slipway/slipway/netboot/bootcfg"
	"github.com/slipway/slipway/netboot/dhcp"
	"github.com/slipway/slipway/netboot/ra"
	"github.com/slipway/slipway/netboot/tftp"
)

// startNetboot binds TFTP and, unless dhcp.mode is off, DHCP. They are
// started last, so that every address they hand out already answers.
func (a *Appliance) startNetboot(ctx context.Context, p *parts, reg *prometheus.Registry) error {
	var err error
	p.tftp, err = tftp.New(tftp.Config{Addr: a.cfg.LANIP(), Port: a.cfg.TFTP.Port, Root: a.cfg.TFTPRoot(), Assets: a.cfg.AssetsDir(), Rendered: p.bootcfg,
		Logger: a.log, Metrics: reg, ClientRate: float64(a.cfg.TFTP.RequestsPerAddress), TransfersPerClient: a.cfg.TFTP.TransfersPerAddress,
		MaxTransfers: a.cfg.TFTP.MaxTransfers})
	if err != nil {
		return err
	}
	p.serve("tftp", p.tftp.Serve)
	a.startRouterAdvertisements(p)
	if a.cfg.DHCP.Mode == "off" {
		return nil
	}
	var leases dhcp.LeaseBook // proxy mode gives no addresses
	if a.cfg.DHCP.Mode == dhcp.ModeFull {
		book, err := domain.NewLeaseBook(ctx, p.db, p.commit, leasePools(a.cfg), p.inventory, a.log.With("part", "leases"))
		if err != nil {
			return err
		}
		registerPoolMetrics(reg, book)
		book.OnBound(p.bmcs.LeaseBound)
		p.leases.Store(book)
		leases = book
	}
	p.dhcp, err = dhcp.New(dhcpConfig(a.cfg, a.log, reg), leases, p.inventory)
	if err != nil {
		return err
	}
	p.serve("dhcp", func() error { return p.dhcp.Serve(p.serveCtx) })
	return nil
}

// pxeBootServerPort is where PXE clients send their boot server REQUEST in
// proxyDHCP mode (PXE 2.1).
const pxeBootServerPort = 4011

// leasePools are the address plans of the LAN and each relayed subnet.
func leasePools(cfg *config.Config) []domain.Pool {
	var pools []domain.Pool
	for _, n := range cfg.Networks() {
		pool := domain.Pool{Subnet: n.Prefix, Router: n.Router, Start: n.Start, End: n.End,
			LeaseTime: n.LeaseTime, CacheThreshold: cfg.DHCP.CacheThreshold, Reservations: reservations(cfg, n.Reservations)}
		if n.Prefix.Contains(cfg.LANIP()) {
			pool.ServerIP = cfg.LANIP()
		}
		pools = append(pools, pool)
	}
	return pools
}

// reservations are a network's, with a reserved machine's hostname from
// the inventory when the reservation gives none.
func reservations(cfg *config.Config, rs []config.Reservation) map[domain.MAC]domain.Reservation {
	out := make(map[domain.MAC]domain.Reservation, len(rs))
	for _, r := range rs {
		mac, _ := domain.ParseMAC(r.MAC) // validated
		out[mac] = domain.Reservation{IP: netip.MustParseAddr(r.IP), Hostname: r.Hostname}
	}
	for _, m := range cfg.Machines {
		for _, mac := range m.MachineMACs() {
			if r, ok := out[mac]; ok && r.Hostname == "" {
				r.Hostname = m.Hostname
				out[mac] = r
			}
		}
	}
	return out
}

func dhcpConfig(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) dhcp.Config {
	out := dhcp.Config{Logger: log, Mode: cfg.DHCP.Mode, ProxyPort: pxeBootServerPort, ClientRate: float64(cfg.DHCP.RequestsPerClient),
		Interface: cfg.LAN.Interface, Port: cfg.DHCP.Port, ServerIP: cfg.LANIP(), Metrics: reg,
		Boot: boot.Server{IP: cfg.LANIP(), HTTPPort: cfg.HTTP.Port, BootFiles: cfg.Netboot.BootFiles},
	}
	if cfg.DHCP.Mode != dhcp.ModeFull {
		// proxyDHCP gives no addresses: it answers on the LAN alone.
		out.Subnets = []dhcp.Subnet{{Prefix: cfg.LANPrefix().Masked()}}
		return out
	}
	for _, n := range cfg.Networks() {
		out.Subnets = append(out.Subnets, dhcp.Subnet{Prefix: n.Prefix, Router: n.Router, DNS: n.DNS, NTP: n.NTP, Domain: n.Domain})
	}
	return out
}

// registerPoolMetrics reports each network's pool, labelled by subnet.
func registerPoolMetrics(reg prometheus.Registerer, book *domain.LeaseBook) {
	reg.MustRegister(poolCollector{book: book,
		size:  prometheus.NewDesc("slipway_dhcp_pool_size", "Addresses in the DHCP range, per subnet.", []string{"subnet"}, nil),
		inUse: prometheus.NewDesc("slipway_dhcp_pool_in_use", "Addresses offered or bound and not expired, per subnet.", []string{"subnet"}, nil)})
}

// poolCollector reads the pools' use once per scrape, for both metrics of
// every subnet: each read walks every lease.
type poolCollector struct {
	book        *domain.LeaseBook
	size, inUse *prometheus.Desc
}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.size; ch <- c.inUse }

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.book.Use() {
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(u.Size), u.Subnet.String())
		ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(u.Active), u.Subnet.String())
	}
}

func bootProfiles(cfg *config.Config) map[string]bootcfg.Profile {
	out := make(map[string]bootcfg.Profile, len(cfg.Profiles))
	for name, p := range cfg.Profiles {
		out[name] = bootcfg.Profile{Name: name, Kernel: p.Kernel, Initrd: p.Initrd, Cmdline: p.Cmdline}
	}
	return out
}

// startRouterAdvertisements is an optimisation, so it never stops start-up:
// without it iPXE still boots, only slower.
func (a *Appliance) startRouterAdvertisements(p *parts) {
	if !a.cfg.Netboot.RouterAdvertisements {
		return
	}
	r, err := ra.New(a.cfg.LAN.Interface, a.log)
	if errors.Is(err, ra.ErrNoLinkLocal) {
		a.log.Info("IPv6 is off on the LAN interface: iPXE will wait ~13 s per boot for a router advertisement", "interface", a.cfg.LAN.Interface)
		return
	}
	if err != nil {
		a.log.Warn("cannot answer IPv6 router solicitations; iPXE will boot ~13 s slower", "error", err)
		return
	}
	p.ra = r
	p.serve("ra", func() error { return r.Serve(p.serveCtx) })
}
