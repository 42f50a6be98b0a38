package storm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/rtnl"
	"golang.org/x/sys/unix"
)

// addresses lets each machine speak from its leased address on the LAN
// interface. Within the pool (Config.Pool) the storm's namespace answers
// for every address at once, by local routes that cover the pool (Linux's
// "AnyIP"): adding each leased address to the interface instead cost one
// netlink request per machine, serialized by the kernel's RTNL lock and
// slower the more addresses the interface holds, and each flushed the
// namespace's route cache under every open connection. In one 10,000-
// machine storm those adds took 58 s in all, one of them 1.2 s: the storm
// measured itself, as no site's machines (each its own network stack) do.
// An address outside the pool is added to the interface as before (a /32:
// the interface's own prefix already routes the LAN).
type addresses struct {
	mu     sync.Mutex // one netlink request at a time
	conn   *rtnl.Conn
	iface  *net.Interface
	pool   []netip.Prefix // local routes the storm added
	leased map[netip.Addr]bool
	added  []net.IP // addresses added to the interface, outside the pool
}

// openAddresses prepares iface for the machines' addresses; pool is the
// DHCP server's range, "first-last" ("" if unknown).
func openAddresses(iface, pool string) (*addresses, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	prefixes, err := poolPrefixes(pool)
	if err != nil {
		return nil, err
	}
	conn, err := rtnl.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	a := &addresses{conn: conn, iface: ifi, leased: map[netip.Addr]bool{}}
	for _, p := range prefixes {
		if err := conn.Conn.Route.Add(a.localRoute(p)); err != nil {
			err = fmt.Errorf("answer for the pool's %s on %s: %w", p, iface, err)
			return nil, errors.Join(err, a.close())
		}
		a.pool = append(a.pool, p)
	}
	return a, nil
}

// localRoute is `ip route add local p dev iface table local`.
func (a *addresses) localRoute(p netip.Prefix) *rtnetlink.RouteMessage {
	return &rtnetlink.RouteMessage{Family: unix.AF_INET, Table: unix.RT_TABLE_LOCAL, Protocol: unix.RTPROT_BOOT,
		Type: unix.RTN_LOCAL, Scope: unix.RT_SCOPE_HOST, DstLength: uint8(p.Bits()),
		Attributes: rtnetlink.RouteAttributes{Dst: p.Addr().AsSlice(), OutIface: uint32(a.iface.Index)}}
}

func (a *addresses) inPool(ip netip.Addr) bool {
	for _, p := range a.pool {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// add makes ip a machine's own; an address already given to another
// machine is an error.
func (a *addresses) add(ip net.IP) error {
	addr, ok := netip.AddrFromSlice(ip.To4())
	if !ok {
		return fmt.Errorf("%s is not an IPv4 address", ip)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leased[addr] {
		return fmt.Errorf("%s was given to two machines", ip)
	}
	if !a.inPool(addr) {
		err := a.conn.AddrAdd(a.iface, &net.IPNet{IP: ip.To4(), Mask: net.CIDRMask(32, 32)})
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s is already on %s: two machines were given one address", ip, a.iface.Name)
		}
		if err != nil {
			return fmt.Errorf("add %s to %s: %w", ip, a.iface.Name, err)
		}
		a.added = append(a.added, ip)
	}
	a.leased[addr] = true
	return nil
}

// close takes every route and address it added off the interface.
func (a *addresses) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, p := range a.pool {
		if err := a.conn.Conn.Route.Delete(a.localRoute(p)); err != nil {
			errs = append(errs, fmt.Errorf("remove the local route %s: %w", p, err))
		}
	}
	for _, ip := range a.added {
		// Not rtnl's AddrDel: it lists every address of the interface to
		// find the one to delete, and with ten thousand on it the clean-up
		// took minutes.
		err := a.conn.Conn.Address.Delete(&rtnetlink.AddressMessage{Family: unix.AF_INET, PrefixLength: 32, Index: uint32(a.iface.Index),
			Attributes: &rtnetlink.AddressAttributes{Address: ip.To4()}})
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", ip, a.iface.Name, err))
		}
	}
	a.pool, a.added = nil, nil
	return errors.Join(append(errs, a.conn.Close())...)
}

// poolPrefixes parses an IPv4 range "first-last" into the fewest prefixes
// that cover exactly it; "" is no range.
func poolPrefixes(pool string) ([]netip.Prefix, error) {
	if pool == "" {
		return nil, nil
	}
	first, last, ok := strings.Cut(pool, "-")
	lo, err1 := netip.ParseAddr(strings.TrimSpace(first))
	hi, err2 := netip.ParseAddr(strings.TrimSpace(last))
	if !ok || err1 != nil || err2 != nil || !lo.Is4() || !hi.Is4() || hi.Less(lo) {
		return nil, fmt.Errorf("pool %q: want an IPv4 range first-last, e.g. 10.88.1.1-10.88.250.254", pool)
	}
	return rangePrefixes(lo, hi), nil
}

// rangePrefixes covers lo..hi (IPv4, lo ≤ hi) with the fewest prefixes:
// from lo, each time the largest aligned block that does not pass hi.
func rangePrefixes(lo, hi netip.Addr) []netip.Prefix {
	from, to := uint64(v4(lo)), uint64(v4(hi))
	var out []netip.Prefix
	for from <= to {
		size := uint64(1)
		for from%(size*2) == 0 && from+size*2-1 <= to {
			size *= 2
		}
		bits := 32
		for s := size; s > 1; s /= 2 {
			bits--
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(from))
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(b), bits))
		from += size
	}
	return out
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}
