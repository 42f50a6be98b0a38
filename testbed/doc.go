// Package testbed is the fake world Slipway is tested, demonstrated and
// benchmarked against: a simulated fleet of machines, network-namespace LANs
// with veth pairs for end-to-end tests with real DHCP and TFTP clients and,
// as the capabilities land, simulated PXE nodes and Redfish BMC emulators.
//
// Nothing here is imported by the appliance itself; only main's demo
// command, tests and benchmarks use it.
package testbed
