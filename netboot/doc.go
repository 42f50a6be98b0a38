// Package netboot holds the doors booting machines knock on: DHCPv4 (full
// and proxy), TFTP for first-stage loaders, and the boot decisions that map
// a client's architecture and vendor class to what it should load next.
// Boot decisions are plain functions kept apart from packet handling.
package netboot
