// Package firmware keeps firmware images on the box and updates machines'
// firmware through their BMCs.
//
// A Library stores uploaded images under <data_dir>/firmware, named by
// their SHA-256 (the checksum given at upload is verified before the image
// is kept); Slipway serves them over HTTP for BMCs to fetch.
//
// An Updater runs each update as a stored task, one step at a time:
//
//	checkfwversion          read the version; skip if already there; SimpleUpdate
//	waitforupdatecompletion follow the BMC's Redfish task, with its progress
//	hostpowercycle | reboot power-cycle the host (BIOS) or restart the BMC,
//	                        when the new version needs it to take effect
//	fwupdatecompleted       the firmware inventory reports the new version
//	failed                  with the BMC's own words
//
// Each step is stored before it acts, so a restart of Slipway resumes an
// update where it was (following the BMC's task again, not starting a
// second one). The task's substate is NICo's BmcFirmwareUpgradeSubstate;
// the machine's lifecycle meanwhile shows hostreprovision in the schema's
// HostReprovisionState (see domain.Reprovision), and returns to ready.
//
// StartDPU reinstalls a host's DPUs (their DPU_OS image, a BFB) through
// the DPUs' own BMCs as one task of kind DPUTaskKind, then power-cycles the
// host once for all of them and verifies each DPU's version; the host shows
// dpureprovision with one ReprovisionState per DPU (see dpu.go).
//
// The updates and DPU reprovisionings of one NICo request share a batch:
// they take turns by group and limit (batch.go), decided from the stored
// tasks so that the pacing holds across a restart.
package firmware
