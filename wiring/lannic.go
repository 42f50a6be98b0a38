package wiring

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/jsimonetti/rtnetlink/v2/rtnl"
	"golang.org/x/sys/unix"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/domain"
)

// nic is one network interface as the host shows it.
type nic struct {
	Name  string
	MAC   string
	Wired bool // a physical Ethernet port: not loopback, a bridge, a veth or Wi-Fi
	Link  bool // a cable is in and the other end is up
}

func (n nic) String() string {
	link := "no link"
	if n.Link {
		link = "link up"
	}
	return fmt.Sprintf("%s (%s, %s)", n.Name, n.MAC, link)
}

// hostNICs lists the interfaces of this host, from sysfs.
func hostNICs() ([]nic, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var out []nic
	for _, ifi := range ifs {
		sys := filepath.Join("/sys/class/net", ifi.Name)
		n := nic{Name: ifi.Name, MAC: ifi.HardwareAddr.String()}
		kind, _ := os.ReadFile(filepath.Join(sys, "type"))
		_, device := os.Stat(filepath.Join(sys, "device"))
		_, wireless := os.Stat(filepath.Join(sys, "wireless"))
		n.Wired = strings.TrimSpace(string(kind)) == "1" && device == nil && errors.Is(wireless, os.ErrNotExist)
		carrier, _ := os.ReadFile(filepath.Join(sys, "carrier"))
		n.Link = strings.TrimSpace(string(carrier)) == "1"
		out = append(out, n)
	}
	return out, nil
}

// resolveInterface turns lan.interface (a name, a MAC address or "auto")
// into an interface name among nics. A name is taken as it is: checkLAN
// says if the host lacks it.
func resolveInterface(spec string, nics []nic) (string, error) {
	if spec == config.InterfaceAuto {
		return onlyWired(nics)
	}
	want, byMAC, err := config.InterfaceMAC(spec)
	switch {
	case err != nil:
		return "", LANError{Field: "lan.interface", Problem: err.Error()}
	case !byMAC:
		return spec, nil
	}
	for _, n := range nics {
		if got, err := domain.ParseMAC(n.MAC); err == nil && got == want {
			return n.Name, nil
		}
	}
	return "", LANError{Field: "lan.interface", Problem: fmt.Sprintf("no interface has the MAC address %s (this host has: %s)", want, listNICs(nics))}
}

// onlyWired is "auto": the one wired NIC, or why there is none to take.
func onlyWired(nics []nic) (string, error) {
	var wired []nic
	for _, n := range nics {
		if n.Wired {
			wired = append(wired, n)
		}
	}
	switch len(wired) {
	case 1:
		return wired[0].Name, nil
	case 0:
		return "", LANError{Field: "lan.interface", Problem: fmt.Sprintf(`"auto" found no wired NIC on this host (it has: %s); name the provisioning NIC`, listNICs(nics))}
	}
	return "", LANError{Field: "lan.interface", Problem: fmt.Sprintf(`"auto" found %d wired NICs: %s; name the one on the provisioning LAN by name or MAC address`, len(wired), listNICs(wired))}
}

func listNICs(nics []nic) string {
	s := make([]string, 0, len(nics))
	for _, n := range nics {
		if n.MAC != "" {
			s = append(s, n.String())
		}
	}
	return orNone(s)
}

// configureLAN brings the interface up and assigns prefix to it unless it
// has it already: lan.configure, for a host nothing else configures.
func configureLAN(iface string, prefix netip.Prefix) error {
	ifi, err := lanInterface(iface)
	if err != nil {
		return err
	}
	conn, err := rtnl.Dial(nil)
	if err != nil {
		return fmt.Errorf("lan.configure: open netlink: %w", err)
	}
	defer conn.Close()
	if err := conn.LinkUp(ifi); err != nil {
		return fmt.Errorf("lan.configure: bring %s up: %w", iface, err)
	}
	ipnet := &net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(prefix.Bits(), 32)}
	if err := conn.AddrAdd(ifi, ipnet); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("lan.configure: assign %s to %s: %w", prefix, iface, err)
	}
	return nil
}
