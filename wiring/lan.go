package wiring

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// LANError is a LAN setting the host cannot carry, with the field to fix.
type LANError struct {
	Field   string
	Problem string
}

func (e LANError) Error() string { return e.Field + ": " + e.Problem }

// checkLAN verifies that prefix's address is assigned to the named
// interface, so that listeners bound to it are reachable from the LAN and
// from nowhere else.
func checkLAN(iface string, prefix netip.Prefix) error {
	ifi, err := lanInterface(iface)
	if err != nil {
		return err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return LANError{Field: "lan.interface", Problem: fmt.Sprintf("cannot read the addresses of %q: %v", iface, err)}
	}
	var have []string
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		have = append(have, ipnet.String())
		if ip, ok := netip.AddrFromSlice(ipnet.IP); ok && ip.Unmap() == prefix.Addr() {
			return nil
		}
	}
	owner := ""
	if other := interfaceWith(prefix.Addr()); other != "" {
		owner = fmt.Sprintf(" but to %q", other)
	}
	return LANError{Field: "lan.address", Problem: fmt.Sprintf("%s is not assigned to interface %q%s (%q has: %s); add it with \"ip addr add %s dev %s\" or correct lan.address",
		prefix.Addr(), iface, owner, iface, orNone(have), prefix, iface)}
}

// lanInterface is the named interface, or a LANError listing the host's.
func lanInterface(name string) (*net.Interface, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, LANError{Field: "lan.interface", Problem: fmt.Sprintf("no network interface %q on this host (it has: %s); name the provisioning NIC", name, interfaceNames())}
	}
	return ifi, nil
}

func interfaceNames() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "unknown"
	}
	names := make([]string, len(ifs))
	for i, ifi := range ifs {
		names[i] = ifi.Name
	}
	return orNone(names)
}

// interfaceWith names the interface that holds ip, if any does.
func interfaceWith(ip netip.Addr) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifi := range ifs {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok {
				if got, ok := netip.AddrFromSlice(ipnet.IP); ok && got.Unmap() == ip {
					return ifi.Name
				}
			}
		}
	}
	return ""
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}
