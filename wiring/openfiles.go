package wiring

import (
	"fmt"
	"syscall"
)

// openFilesPerMachine is what a machine booting with the rest of its site
// holds at Slipway at once: its TFTP request's socket while it waits for
// a turn, then the connection iPXE keeps open after the initrd. A
// 10,000-machine storm reached 20,000 descriptors.
const openFilesPerMachine = 2

// openFilesBase is what Slipway holds with no machine booting (the store,
// listeners, the console, BMC polls), with room to spare.
const openFilesBase = 4096

// openFilesWarning says what is wrong with an open files limit for a site
// of maxMachines (0: no bound, taken as 10,000), or "" if nothing is.
// Past the limit a connection waits in the kernel's queue until another
// closes (see package listener): the site boots, slowly.
func openFilesWarning(limit uint64, maxMachines int) string {
	if maxMachines <= 0 {
		maxMachines = 10_000
	}
	need := uint64(openFilesBase + openFilesPerMachine*maxMachines)
	if limit >= need {
		return ""
	}
	return fmt.Sprintf("the open files limit is %d: a site of %d machines (discovery.max_machines) booting at once needs about %d; "+
		"raise LimitNOFILE= in the service unit (or ulimit -n)", limit, maxMachines, need)
}

// warnOfOpenFilesLimit logs openFilesWarning for this process. Go has
// already raised the soft limit to the hard one: the hard one is what
// counts.
func (a *Appliance) warnOfOpenFilesLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if msg := openFilesWarning(lim.Cur, a.cfg.Discovery.MaxMachines); msg != "" {
		a.log.Warn(msg)
	}
}
