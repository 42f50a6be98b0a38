// Package domain holds the vocabulary every door of the appliance shares and
// the services that act on it:
//
//   - mac.go: hardware addresses;
//   - state.go: NICo's ManagedHostState as Go values, encoded as the schema has it;
//   - lifecycle.go: the state machine, one table of rules and a pure Next;
//   - onboarding.go: the heartbeat stages and phases;
//   - machines.go, transitions.go, heartbeat.go: the Inventory, which
//     discovers machines, applies events to them (storing each transition
//     and its bus message in one transaction), records heartbeats and fails
//     machines that time out;
//   - leases.go: the DHCP lease book.
//
// The protocol packages (netboot, web, broker) import domain; domain imports
// only store. That keeps one model of the world with several dialects over it.
package domain
