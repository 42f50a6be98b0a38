// Package domain holds the vocabulary every door of the appliance shares:
// hardware addresses, machine identities and, as the capabilities land, the
// lifecycle states of NICo's ManagedHostState and the services that drive
// them.
//
// The protocol packages (netboot, web, broker) import domain; domain imports
// only store. That keeps one model of the world with several dialects over it.
package domain
