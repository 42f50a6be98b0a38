package domain

import (
	"encoding/json"
	"strings"
	"time"
)

// Firmware updates put a host in hostreprovision. NICo's schema gives the
// host's reprovision_state (HostReprovisionState) its own firmware steps;
// the bmcfirmwareupgrade sub-states live in DPU reprovisioning only, so the
// firmware task carries those (see appliance/firmware) and the machine's
// state carries these.

// Reprovision is a hostreprovision reprovision_state, as the schema encodes it.
type Reprovision json.RawMessage

// FirmwareTarget is what an update installs: the schema's
// FirmwareComponentType and the version it ends at.
type FirmwareTarget struct {
	Type         string `json:"firmware_type"`
	FinalVersion string `json:"final_version"`
}

// CheckingFirmware: the update is comparing versions.
func CheckingFirmware() Reprovision { return Reprovision(`"checkingfirmware"`) }

// WaitingForFirmwareUpgrade: the BMC is flashing, under its task id.
func WaitingForFirmwareUpgrade(t FirmwareTarget, taskID string, since time.Time) Reprovision {
	return reprovision("waitingforfirmwareupgrade", struct {
		FirmwareTarget
		TaskID         string    `json:"task_id"`
		StartedWaiting time.Time `json:"started_waiting"`
	}{t, taskID, since.UTC()})
}

// ResetForNewFirmware: the BMC or the host is reset so the firmware takes effect.
func ResetForNewFirmware(t FirmwareTarget) Reprovision { return reprovision("resetfornewfirmware", t) }

// NewFirmwareReportedWait: waiting for the BMC to report the new version.
func NewFirmwareReportedWait(t FirmwareTarget) Reprovision {
	return reprovision("newfirmwarereportedwait", t)
}

// FailedFirmwareUpgrade: the update failed, and why.
func FailedFirmwareUpgrade(firmwareType, reason string, at time.Time) Reprovision {
	return reprovision("failedfirmwareupgrade", struct {
		Type       string    `json:"firmware_type"`
		Reason     string    `json:"reason"`
		ReportTime time.Time `json:"report_time"`
	}{firmwareType, reason, at.UTC()})
}

func reprovision(key string, v any) Reprovision {
	b, err := json.Marshal(map[string]any{key: v})
	if err != nil {
		panic("encode reprovision state " + key + ": " + err.Error()) // plain structs
	}
	return Reprovision(b)
}

// HostReprovision is hostreprovision in the given reprovision state.
func HostReprovision(r Reprovision) State {
	zero := uint32(0)
	return State{State: StateHostReprovision, ReprovisionState: json.RawMessage(r), RetryCount: &zero}
}

// name is a reprovision state's name: the bare string, or the object's key.
func (r Reprovision) name() string {
	var bare string
	if json.Unmarshal(r, &bare) == nil {
		return bare
	}
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(r, &obj)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	return strings.Join(keys, "+")
}

// FirmwareComponentType maps a Redfish firmware inventory id (BMC, BIOS,
// NIC.Slot.1, …) to the schema's FirmwareComponentType.
func FirmwareComponentType(component string) string {
	c := strings.ToLower(component)
	switch {
	case strings.Contains(c, "bmc") || strings.Contains(c, "idrac") || strings.Contains(c, "ilo"):
		return "bmc"
	case strings.Contains(c, "bios") || strings.Contains(c, "uefi"):
		return "uefi"
	case strings.Contains(c, "nic"):
		return "nic"
	case strings.Contains(c, "cpld"):
		return "cpldmb"
	case strings.Contains(c, "gpu"):
		return "gpu"
	}
	return "unknown"
}
