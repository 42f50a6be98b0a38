package dhcp

import (
	"net/netip"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// subnetFor is the network a request's client is on, and the address that
// said so. A relay names the client's link with option 118 (RFC 3011),
// option 82's link selection (RFC 3527, when the relay's own address is
// on another network) or else its giaddr (RFC 2131 §4.3.1); a client
// renewing by unicast names it with its ciaddr; anything else is on the
// LAN. ok is false when a relay names a network with no pool.
func (s *Server) subnetFor(req *dhcpv4.DHCPv4) (sn Subnet, link netip.Addr, ok bool) {
	if link = relayedLink(req); link.IsValid() {
		sn, ok = s.subnetContaining(link)
		return sn, link, ok
	}
	if ciaddr := addr(req.ClientIPAddr); ciaddr.IsValid() {
		if sn, ok := s.subnetContaining(ciaddr); ok {
			return sn, ciaddr, true
		}
	}
	return s.cfg.Subnets[0], netip.Addr{}, true
}

// relayedLink is the client's link as a relay gave it, or the zero Addr.
func relayedLink(req *dhcpv4.DHCPv4) netip.Addr {
	if v := req.Options.Get(dhcpv4.OptionSubnetSelection); len(v) == 4 {
		return netip.AddrFrom4([4]byte(v))
	}
	if rai := req.RelayAgentInfo(); rai != nil {
		if v := rai.Get(dhcpv4.LinkSelectionSubOption); len(v) == 4 {
			return netip.AddrFrom4([4]byte(v))
		}
	}
	return addr(req.GatewayIPAddr)
}

func (s *Server) subnetContaining(a netip.Addr) (Subnet, bool) {
	for _, sn := range s.cfg.Subnets {
		if sn.Prefix.Contains(a) {
			return sn, true
		}
	}
	return Subnet{}, false
}

// onceSet says yes the first time it sees a key and no after; it forgets
// nothing, so it stops remembering at a bound: a LAN full of forged relay
// addresses must not grow it without end.
type onceSet struct {
	mu    sync.Mutex
	seen  map[netip.Addr]bool
	limit int
}

func newOnceSet(limit int) *onceSet {
	return &onceSet{seen: map[netip.Addr]bool{}, limit: limit}
}

// first reports whether a is new (and, below the bound, remembers it).
func (o *onceSet) first(a netip.Addr) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[a] || len(o.seen) >= o.limit {
		return false
	}
	o.seen[a] = true
	return true
}
