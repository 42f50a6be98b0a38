// Package bmc manages the baseboard management controllers of the machines
// Slipway provisions, over Redfish (github.com/stmcginnis/gofish).
//
// A Manager keeps the registry of BMCs (from the config inventory, the API
// and auto-discovery from DHCP leases), polls each one on its own schedule
// with a bounded number of polls in flight, and drives power and one-time
// PXE boot for provisioning. Passwords are sealed at rest with a key kept
// in the data directory (Sealer) and never logged or returned.
//
// What a poll learns (power, health, model, serial, BIOS and BMC versions,
// host MACs, firmware inventory, reachability and the last error) is stored
// and announced on the event bus only when it changed: a fleet of quiet
// BMCs writes nothing. A BMC is linked to its machine explicitly (config,
// API) or by the host MACs its system reports.
package bmc
