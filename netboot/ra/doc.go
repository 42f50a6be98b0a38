// Package ra answers IPv6 router solicitations on the LAN with a router
// advertisement that says "no router, no prefixes, no DHCPv6" (router
// lifetime 0, no flags, no prefix options).
//
// Why: iPXE configures IPv6 alongside IPv4 and waits for a router
// advertisement before it goes on; on an IPv4-only provisioning LAN that
// costs every machine about 13 seconds per boot. An advertisement with
// neither the managed nor the other-config flag ends iPXE's IPv6
// configuration at once. A zero router lifetime means hosts take nothing
// from it: no default route, no addresses.
//
// The socket is raw ICMPv6 bound to the LAN interface (SO_BINDTODEVICE),
// and only router solicitations pass its filter.
package ra
