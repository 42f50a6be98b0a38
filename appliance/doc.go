// Package appliance is the brain of Slipway: it takes a validated
// configuration, checks that the host can carry it (the LAN address is on the
// LAN interface, every port is free), opens the store, wires the doors
// (netboot, web, broker) to the domain, starts them in order, reports
// readiness, and stops them in reverse order on shutdown so that in-flight
// requests finish and the database is closed cleanly.
//
// Sub-packages: config (the YAML file and its validation) and domain (the
// shared vocabulary and, as it grows, the services every door calls).
package appliance
