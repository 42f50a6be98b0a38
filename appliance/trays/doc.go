// Package trays is the box's machines as NICo sees them: racks of trays
// (compute, switch and power shelf), each managed by its BMC, and firmware
// updates asked for by rack, tray or component.
//
// A tray is a machine the inventory places in a rack (machines[].rack:
// id, name, tray position, tray type); its component id is its BMC's id,
// through which its firmware inventory is read and updated. A Request is
// checked by NICo's rules (Check) before anything is selected; a valid one
// selects trays (Select) and becomes one firmware update per tray and
// target, each a task of the firmware updater. A DPU is a machine that
// names its host (dpu_of): part of its host's tray, it is reinstalled by the
// target dpu, one DPU reprovisioning per host.
package trays
