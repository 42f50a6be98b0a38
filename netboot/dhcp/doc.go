// Package dhcp is Slipway's DHCPv4 server (insomniacslk/dhcp for packets).
//
// It listens on port 67 of the LAN interface only (SO_BINDTODEVICE), since a
// socket bound to the LAN IP would never see clients' broadcasts. A reply is
// built by a chain of small handlers, as coredhcp does: check the request,
// note the machine, lease an address, add the network options, add the boot
// options. Leases are the domain's (a LeaseBook); boot choices are
// netboot/boot's. Malformed packets are counted and dropped with a debug log.
package dhcp
