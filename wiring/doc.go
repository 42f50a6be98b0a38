// Package wiring assembles a running Slipway: it takes a validated
// configuration, checks that the host can carry it (the LAN address is on
// the LAN interface, every port is free), opens the store, builds the
// model (appliance/...), puts the doors (netboot, web, broker) in front of
// it, starts everything in order, reports readiness, and stops it in
// reverse order on shutdown so that in-flight requests finish and the
// database is closed cleanly.
//
// It is the only package that knows every other: the layers below it
// point down (doors → appliance → store) and never back up, and the test
// in layers_test.go (at the module root) holds them to it.
package wiring
