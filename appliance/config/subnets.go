package config

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/slipway/slipway/appliance/domain"
)

// poolFields is one network's address plan as the file gives it: the
// LAN's (under dhcp) or a relayed subnet's (under dhcp.subnets[i]), which
// are checked alike.
type poolFields struct {
	at           string       // "dhcp" or "dhcp.subnets[0]"
	network      netip.Prefix // invalid when the file's own is
	where, fix   string       // "the LAN", "lan.address's subnet"
	rng          Range
	router       string
	reservations []Reservation
	own          netip.Addr // the appliance's address, when on this network
	dns, ntp     []string
	domain       string
}

func (c *Config) validatePool(v *fieldErrors, f poolFields) {
	start := f.addr(v, f.at+".range.start", f.rng.Start, true)
	end := f.addr(v, f.at+".range.end", f.rng.End, true)
	if start.IsValid() && end.IsValid() {
		if end.Less(start) {
			v.add(f.at+".range.end", fmt.Sprintf("%s comes before %s.range.start %s", end, f.at, start), "swap them")
		} else if f.own.IsValid() && !f.own.Less(start) && !end.Less(f.own) {
			v.add(f.at+".range", fmt.Sprintf("%s-%s contains the appliance's own address %s", start, end, f.own), "start the range after it, e.g. at "+f.own.Next().String())
		}
	}
	if f.router != "" {
		f.addr(v, f.at+".router", f.router, false)
	}
	f.validateReservations(v)
	for i, s := range f.dns {
		ipv4(v, fmt.Sprintf("%s.dns[%d]", f.at, i), s)
	}
	for i, s := range f.ntp {
		ipv4(v, fmt.Sprintf("%s.ntp[%d]", f.at, i), s)
	}
	if f.domain != "" && !domain.ValidHostname(f.domain) {
		v.add(f.at+".domain", fmt.Sprintf("%q is not a domain name", f.domain), "use letters, digits, '-' and dots, e.g. lab.example")
	}
}

// addr checks that s is an IPv4 address on the pool's network.
func (f poolFields) addr(v *fieldErrors, at, s string, required bool) netip.Addr {
	if s == "" {
		if required {
			v.add(at, "is required", "give an IPv4 address in "+f.fix)
		}
		return netip.Addr{}
	}
	a := ipv4(v, at, s)
	if a.IsValid() && f.network.IsValid() && !f.network.Contains(a) {
		v.add(at, fmt.Sprintf("%s is outside %s %s", a, f.where, f.network.Masked()), "use an address inside "+f.fix)
	}
	return a
}

func (f poolFields) validateReservations(v *fieldErrors) {
	macs, ips := map[domain.MAC]string{}, map[netip.Addr]string{}
	for i, r := range f.reservations {
		at := fmt.Sprintf("%s.reservations[%d]", f.at, i)
		if mac, ok := parseMAC(v, at+".mac", r.MAC); ok {
			if other, dup := macs[mac]; dup {
				v.add(at+".mac", fmt.Sprintf("%s is already reserved by %s", mac, other), "keep one reservation per MAC")
			}
			macs[mac] = at
		}
		ip := f.addr(v, at+".ip", r.IP, true)
		if ip.IsValid() {
			if other, dup := ips[ip]; dup {
				v.add(at+".ip", fmt.Sprintf("%s is already reserved by %s", ip, other), "give each reservation its own address")
			}
			ips[ip] = at
		}
		if r.Hostname != "" && !domain.ValidHostname(r.Hostname) {
			v.add(at+".hostname", fmt.Sprintf("%q is not a valid hostname", r.Hostname), "use letters, digits and '-'")
		}
	}
}

// validateSubnets checks each relayed subnet, and that no two networks
// (the LAN's included) overlap: a relay's address picks one pool.
func (c *Config) validateSubnets(v *fieldErrors) {
	taken := map[netip.Prefix]string{}
	if c.lanPrefix.IsValid() {
		taken[c.lanPrefix.Masked()] = "lan.address"
	}
	for i, sn := range c.DHCP.Subnets {
		at := fmt.Sprintf("dhcp.subnets[%d]", i)
		network := subnetPrefix(v, at+".subnet", sn.Subnet)
		if network.IsValid() {
			for other, by := range taken {
				if other.Overlaps(network) {
					v.add(at+".subnet", fmt.Sprintf("%s overlaps %s (%s)", network, other, by), "give each relayed subnet its own network, apart from the LAN's")
				}
			}
			taken[network] = at
		}
		c.validatePool(v, poolFields{at: at, network: network, where: "the subnet", fix: at + ".subnet",
			rng: sn.Range, router: sn.Router, reservations: sn.Reservations, dns: sn.DNS, ntp: sn.NTP, domain: sn.Domain})
		if sn.Router == "" {
			v.add(at+".router", "is required", "give the relay's address on "+sn.Subnet+": its machines reach this box through it")
		}
		if sn.LeaseTime != 0 && sn.LeaseTime < time.Minute {
			v.add(at+".lease_time", fmt.Sprintf("%s is too short", sn.LeaseTime), "use at least 1m, or leave it out to use dhcp.lease_time")
		}
	}
}

// subnetPrefix parses a relayed subnet's network, e.g. 10.89.0.0/24.
func subnetPrefix(v *fieldErrors, at, s string) netip.Prefix {
	if s == "" {
		v.add(at, "is required", "give the relayed network with its prefix length, e.g. 10.89.0.0/24")
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		v.add(at, fmt.Sprintf("%q is not a network", s), "write it with its prefix length, e.g. 10.89.0.0/24")
	case !p.Addr().Is4():
		v.add(at, fmt.Sprintf("%s is not IPv4", p), "DHCPv4 relays forward IPv4 networks, e.g. 10.89.0.0/24")
	case p != p.Masked():
		v.add(at, fmt.Sprintf("%s has host bits set", p), "write the network's own address: "+p.Masked().String())
	default:
		return p
	}
	return netip.Prefix{}
}

// Network is one network DHCP serves, parsed, with what a relayed subnet
// inherits from dhcp filled in.
type Network struct {
	Prefix       netip.Prefix
	Start, End   netip.Addr
	Router       netip.Addr // invalid when none is given (the LAN may have none)
	LeaseTime    time.Duration
	DNS, NTP     []netip.Addr
	Domain       string
	Reservations []Reservation
}

// Networks are the LAN's and then each relayed subnet's, for a validated
// config in dhcp.mode full.
func (c *Config) Networks() []Network {
	d := c.DHCP
	lan := Network{Prefix: c.lanPrefix.Masked(), Start: mustAddr(d.Range.Start), End: mustAddr(d.Range.End),
		Router: mustAddr(d.Router), LeaseTime: d.LeaseTime, DNS: mustAddrs(d.DNS), NTP: mustAddrs(d.NTP),
		Domain: d.Domain, Reservations: d.Reservations}
	out := []Network{lan}
	for _, sn := range d.Subnets {
		n := Network{Prefix: netip.MustParsePrefix(sn.Subnet), Start: mustAddr(sn.Range.Start), End: mustAddr(sn.Range.End),
			Router: mustAddr(sn.Router), LeaseTime: sn.LeaseTime, DNS: mustAddrs(sn.DNS), NTP: mustAddrs(sn.NTP),
			Domain: sn.Domain, Reservations: sn.Reservations}
		if n.LeaseTime == 0 {
			n.LeaseTime = lan.LeaseTime
		}
		if sn.DNS == nil {
			n.DNS = lan.DNS
		}
		if sn.NTP == nil {
			n.NTP = lan.NTP
		}
		if n.Domain == "" {
			n.Domain = lan.Domain
		}
		out = append(out, n)
	}
	return out
}

// mustAddr parses a validated address; "" is the zero Addr.
func mustAddr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

func mustAddrs(ss []string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}
