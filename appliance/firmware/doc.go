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
package firmware
