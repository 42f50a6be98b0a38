// Package neighbor finds the MAC address behind a client IP in the kernel's
// neighbor (ARP) table, for requests that do not say which machine they come
// from (a cloud-init fetch without ?mac=). It asks netlink first and reads
// /proc/net/arp when netlink is not available.
package neighbor
