// Package e2e holds Slipway's end-to-end tests: the real slipway binary,
// built fresh, serving a LAN of network namespaces (testbed.LAN) to real
// Debian clients. They need root and the build tag e2e:
//
//	sudo make e2e
//
// They never touch an address outside the namespaces they create.
package e2e
