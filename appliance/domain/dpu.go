package domain

import (
	"encoding/json"
	"slices"
	"strings"
)

// DPU reprovisioning puts a host in dpureprovision: NICo's schema keeps one
// ReprovisionState per DPU of the host, by the DPU's machine id, while the
// DPUs' operating system is reinstalled and the host power-cycled onto it.

// DPUStates are the schema's DpuReprovisionStates.
type DPUStates struct {
	States map[string]json.RawMessage `json:"states"`
}

// names summarises the DPUs' states for a label: each distinct state once,
// sorted ("installdpuos", or "installdpuos+verifyfirmareversions" while
// they differ).
func (d *DPUStates) names() string {
	var names []string
	for _, raw := range d.States {
		if n := Reprovision(raw).name(); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, "+")
}

// The bare ReprovisionStates a DPU goes through, in the order Slipway
// takes them (the schema names them, spelling included).
const (
	DPUPoweringOffHost     = "poweringoffhost"
	DPUPowerDown           = "powerdown"
	DPUBufferTime          = "buffertime"
	DPUVerifyFirmware      = "verifyfirmareversions"
	DPUNotUnderReprovision = "notunderreprovision"
)

// DPUStep is one of the bare ReprovisionStates above.
func DPUStep(name string) Reprovision {
	b, _ := json.Marshal(name)
	return Reprovision(b)
}

// InstallingBFB: the DPU's BMC is being given its new OS image (BFB).
func InstallingBFB() Reprovision {
	return installDPUOS(map[string]any{"installdpuosstate": "installingbfb"})
}

// WaitForInstallComplete: the DPU's BMC installs the image, under its task.
func WaitForInstallComplete(progress, taskID string) Reprovision {
	return installDPUOS(map[string]any{"installdpuosstate": "waitforinstallcomplete", "progress": progress, "task_id": taskID})
}

// InstalledDPUOS: the DPU's BMC says its install ended well.
func InstalledDPUOS() Reprovision {
	return installDPUOS(map[string]any{"installdpuosstate": "completed"})
}

// DPUInstallationError: the install failed, and why.
func DPUInstallationError(msg string) Reprovision {
	return installDPUOS(map[string]any{"installdpuosstate": "installationerror", "msg": msg})
}

func installDPUOS(sub map[string]any) Reprovision {
	return reprovision("installdpuos", map[string]any{"substate": sub})
}

// DPUReprovision is dpureprovision with each DPU's state.
func DPUReprovision(states map[string]Reprovision) State {
	d := &DPUStates{States: make(map[string]json.RawMessage, len(states))}
	for id, r := range states {
		d.States[id] = json.RawMessage(r)
	}
	return State{State: StateDPUReprovision, DPUStates: d}
}
