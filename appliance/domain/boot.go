package domain

import "fmt"

// BootAction is what a netbooting machine is told to do. Only a machine
// that is expected to install gets the installer: a disk is never wiped
// because a ready machine happened to boot from the network.
type BootAction int

const (
	// BootInstall: the installer (its profile's kernel and initrd).
	BootInstall BootAction = iota
	// BootLocal: its own disk (no boot file, an iPXE script that exits, a
	// GRUB config that leaves to the firmware's next boot entry).
	BootLocal
	// BootIgnore: no answer at all (an unknown MAC under
	// netboot.unknown_machines: ignore).
	BootIgnore
)

func (a BootAction) String() string {
	switch a {
	case BootInstall:
		return "install"
	case BootLocal:
		return "local"
	case BootIgnore:
		return "ignore"
	}
	return fmt.Sprintf("BootAction(%d)", int(a))
}

// UnknownPolicy is what a MAC no machine owns gets when it netboots
// (netboot.unknown_machines).
type UnknownPolicy string

const (
	// UnknownInstall: it becomes a discovered machine and installs.
	UnknownInstall UnknownPolicy = "install"
	// UnknownLocal: it becomes a discovered machine told to boot its local
	// disk until an operator provisions it.
	UnknownLocal UnknownPolicy = "local"
	// UnknownIgnore: no answer, nothing recorded.
	UnknownIgnore UnknownPolicy = "ignore"
)

// BootPlan is a decision and its reason, for the log and the script a
// machine is shown.
type BootPlan struct {
	Action BootAction
	Why    string
}

// planBoot decides from a machine's state and origin. A machine installs
// while it is expected to: new (listed in the configuration, or discovered
// under the install policy), or armed by Provision (hostinit) and on its
// way (validation). Any other state keeps its disk.
func planBoot(s State, discovered bool, unknown UnknownPolicy) BootPlan {
	switch s.State {
	case StateHostInit, StateValidation:
		return BootPlan{BootInstall, "machine is " + s.Label() + ": installing"}
	case StateCreated:
		if discovered && unknown != UnknownInstall {
			return BootPlan{BootLocal, "discovered machine under netboot.unknown_machines: " + string(unknown) + ": provision it to install"}
		}
		return BootPlan{BootInstall, "new machine: installing"}
	}
	return BootPlan{BootLocal, "machine is " + s.Label() + ": it boots its local disk; provision it to reinstall"}
}

// unknownPlan is what a MAC no machine owns gets.
func unknownPlan(unknown UnknownPolicy) BootPlan {
	switch unknown {
	case UnknownIgnore:
		return BootPlan{BootIgnore, "unknown MAC under netboot.unknown_machines: ignore"}
	case UnknownLocal:
		return BootPlan{BootLocal, "unknown MAC under netboot.unknown_machines: local"}
	}
	return BootPlan{BootInstall, "unknown MAC: it will be discovered and install"}
}

// BootPlan says, from memory, what mac should netboot into.
func (inv *Inventory) BootPlan(mac MAC) BootPlan {
	id, ok := inv.machineID(mac)
	if !ok {
		return unknownPlan(inv.Policy().UnknownMachines)
	}
	cur, ok := inv.cached(id)
	if !ok {
		return unknownPlan(inv.Policy().UnknownMachines)
	}
	return planBoot(cur.State, cur.discovered, inv.Policy().UnknownMachines)
}
