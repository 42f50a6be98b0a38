package storm

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/rtnl"
	"golang.org/x/sys/unix"
)

// addresses puts each machine's leased address on the LAN interface (a
// /32: the interface's own prefix already routes the LAN), so that the
// machine's TFTP and HTTP can be spoken from it.
type addresses struct {
	mu    sync.Mutex // one netlink request at a time
	conn  *rtnl.Conn
	iface *net.Interface
	added []net.IP
}

func openAddresses(iface string) (*addresses, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	conn, err := rtnl.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return &addresses{conn: conn, iface: ifi}, nil
}

func (a *addresses) add(ip net.IP) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.conn.AddrAdd(a.iface, &net.IPNet{IP: ip.To4(), Mask: net.CIDRMask(32, 32)})
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s is already on %s: two machines were given one address", ip, a.iface.Name)
	}
	if err != nil {
		return fmt.Errorf("add %s to %s: %w", ip, a.iface.Name, err)
	}
	a.added = append(a.added, ip)
	return nil
}

// close takes every address it added off the interface.
func (a *addresses) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
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
	a.added = nil
	return errors.Join(append(errs, a.conn.Close())...)
}
