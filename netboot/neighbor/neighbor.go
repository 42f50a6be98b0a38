package neighbor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/slipway/slipway/appliance/domain"
)

// ErrNotFound means the table holds no usable entry for the address.
var ErrNotFound = errors.New("no neighbor entry")

// Table looks addresses up in the kernel's neighbor table.
type Table struct {
	// ARPFile is the fallback's file; empty means /proc/net/arp.
	ARPFile string
}

// Lookup returns the MAC of ip: from netlink, else from the ARP file.
func (t Table) Lookup(ip netip.Addr) (domain.MAC, error) {
	ip = ip.Unmap()
	mac, err := lookupNetlink(ip)
	if err == nil {
		return mac, nil
	}
	arpMAC, arpErr := t.lookupARPFile(ip)
	if arpErr == nil {
		return arpMAC, nil
	}
	return "", fmt.Errorf("MAC of %s: netlink: %w; ARP file: %w", ip, err, arpErr)
}

// usable are the states whose link-layer address can be trusted.
const usable = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP

func lookupNetlink(ip netip.Addr) (domain.MAC, error) {
	conn, err := rtnetlink.Dial(nil)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	entries, err := conn.Neigh.List()
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.Attributes == nil || e.State&usable == 0 || len(e.Attributes.LLAddress) != 6 {
			continue
		}
		if a, ok := netip.AddrFromSlice(e.Attributes.Address); ok && a.Unmap() == ip {
			return domain.ParseMAC(e.Attributes.LLAddress.String())
		}
	}
	return "", ErrNotFound
}

func (t Table) lookupARPFile(ip netip.Addr) (domain.MAC, error) {
	name := t.ARPFile
	if name == "" {
		name = "/proc/net/arp"
	}
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return parseARP(f, ip)
}

// arpComplete is ATF_COM: the entry's hardware address is known.
const arpComplete = 0x2

// parseARP reads /proc/net/arp's format:
//
//	IP address       HW type     Flags       HW address            Mask     Device
//	10.88.0.23       0x1         0x2         52:54:00:12:34:56     *        lan0
func parseARP(r io.Reader, ip netip.Addr) (domain.MAC, error) {
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[0] != ip.String() {
			continue
		}
		var flags int
		if _, err := fmt.Sscanf(f[2], "0x%x", &flags); err != nil || flags&arpComplete == 0 {
			continue
		}
		return domain.ParseMAC(f[3])
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", ErrNotFound
}
