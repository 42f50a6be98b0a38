package broker

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/broker/nicoschema"
)

// walk drives one machine through every state Slipway can enter, as the
// lifecycle would, and returns each state reached.
func walk(t *testing.T) []domain.State {
	t.Helper()
	now := time.Now()
	m := domain.Machine{ID: "r1-t1", State: domain.Created()}
	out := []domain.State{m.State}
	step := func(ev domain.Event) {
		next, err := domain.Next(m, ev, now)
		if err != nil {
			t.Fatalf("%s from %s: %v", ev.Kind, m.State.Label(), err)
		}
		m.State = next
		out = append(out, next)
	}
	step(domain.Event{Kind: domain.EventDHCPLease})
	step(domain.Event{Kind: domain.EventBootConfig})
	step(domain.Event{Kind: domain.EventCloudInit})
	for _, s := range []domain.Stage{domain.StageDisk, domain.StageInstall, domain.StageConfigure, domain.StageValidate} {
		step(domain.HeartbeatEvent(s, domain.PhaseStarted, ""))
		step(domain.HeartbeatEvent(s, domain.PhaseDone, ""))
	}
	step(domain.HeartbeatEvent(domain.StageComplete, domain.PhaseDone, ""))
	step(domain.Event{Kind: domain.EventAssign})
	step(domain.Event{Kind: domain.EventRelease})
	step(domain.Event{Kind: domain.EventCleaned})
	step(domain.Event{Kind: domain.EventProvision})
	step(domain.HeartbeatEvent(domain.StageInstall, domain.PhaseStarted, ""))
	step(domain.HeartbeatEvent(domain.StageInstall, domain.PhaseFailed, `disk "sda" missing`))
	step(domain.HeartbeatEvent(domain.StageBoot, domain.PhaseStarted, ""))
	step(domain.Event{Kind: domain.EventTimeout, Cause: "no progress in hostinit/discovered for 30m0s"})
	// A firmware update, each reprovision state it goes through, then ready.
	fw := domain.FirmwareTarget{Type: domain.FirmwareComponentType("BMC"), FinalVersion: "2.0.0"}
	for i, r := range []domain.Reprovision{
		domain.CheckingFirmware(), domain.WaitingForFirmwareUpgrade(fw, "/redfish/v1/TaskService/Tasks/7", now),
		domain.ResetForNewFirmware(fw), domain.NewFirmwareReportedWait(fw),
		domain.FailedFirmwareUpgrade("uefi", "flash write error", now),
	} {
		kind := domain.EventFirmwareStep
		if i == 0 {
			kind = domain.EventFirmwareStart
		}
		step(domain.Event{Kind: kind, Reprovision: r})
	}
	step(domain.Event{Kind: domain.EventFirmwareStart, Reprovision: domain.CheckingFirmware()})
	step(domain.Event{Kind: domain.EventFirmwareDone, WasReady: true})
	// A DPU reprovisioning of two DPUs, each state it goes through.
	dpus := func(a, b domain.Reprovision) map[string]domain.Reprovision {
		return map[string]domain.Reprovision{"r1-t1-dpu0": a, "r1-t1-dpu1": b}
	}
	step(domain.Event{Kind: domain.EventDPUStart, DPUStates: dpus(domain.InstallingBFB(), domain.InstallingBFB())})
	step(domain.Event{Kind: domain.EventDPUStep, DPUStates: dpus(domain.WaitForInstallComplete("35%", "/redfish/v1/TaskService/Tasks/2"), domain.InstalledDPUOS())})
	step(domain.Event{Kind: domain.EventDPUStep, DPUStates: dpus(domain.DPUInstallationError("BFB rejected"), domain.InstalledDPUOS())})
	step(domain.Event{Kind: domain.EventDPUStart, DPUStates: dpus(domain.InstallingBFB(), domain.InstallingBFB())})
	for _, s := range []string{domain.DPUPoweringOffHost, domain.DPUPowerDown, domain.DPUBufferTime, domain.DPUVerifyFirmware, domain.DPUNotUnderReprovision} {
		step(domain.Event{Kind: domain.EventDPUStep, DPUStates: dpus(domain.DPUStep(s), domain.DPUStep(s))})
	}
	step(domain.Event{Kind: domain.EventDPUDone, WasReady: true})
	step(domain.Event{Kind: domain.EventProvision})
	step(domain.Event{Kind: domain.EventForceDelete})
	return out
}

func TestEveryStateMessageValidatesAgainstTheNICoSchema(t *testing.T) {
	var events Events
	for _, st := range walk(t) {
		e := events.StateMessage("r1-t1", st, "", time.Now())
		if e.Topic != "NICO/v1/machine/r1-t1/state" || e.QoS != 1 || !e.Retain {
			t.Fatalf("topic %s qos %d retain %v", e.Topic, e.QoS, e.Retain)
		}
		if err := nicoschema.Validate(e.Payload); err != nil {
			t.Errorf("%s: %s\n%v", st.Label(), e.Payload, err)
		}
	}
}

// A state message is the same bytes whether the caller had the state
// encoded or not: StateChangeMessage, which consumers decode.
func TestStateMessageWithTheStateEncodedIsTheSameMessage(t *testing.T) {
	var events Events
	at := time.Date(2026, 12, 5, 1, 2, 3, 456, time.FixedZone("CET", 3600))
	for _, st := range walk(t) {
		want, err := json.Marshal(StateChangeMessage{MachineID: "r1-t1", Timestamp: at.UTC(), ManagedHostState: st})
		if err != nil {
			t.Fatal(err)
		}
		for _, encoded := range []string{"", st.JSON()} {
			if got := events.StateMessage("r1-t1", st, encoded, at).Payload; !bytes.Equal(got, want) {
				t.Errorf("%s (encoded %q):\n got %s\nwant %s", st.Label(), encoded, got, want)
			}
		}
	}
}

// The schema check can fail: a state the schema does not know is refused.
func TestTheSchemaRefusesAnInventedState(t *testing.T) {
	for _, payload := range []string{
		`{"machine_id":"m","timestamp":"2026-11-22T10:00:00Z","managed_host_state":{"state":"booting"}}`,
		`{"machine_id":"m","timestamp":"2026-11-22T10:00:00Z","managed_host_state":{"state":"hostinit"}}`,
		`{"machine_id":"m","timestamp":"yesterday","managed_host_state":{"state":"ready"}}`,
		`{"machine_id":"m","timestamp":"2026-11-22T10:00:00Z","managed_host_state":{"state":"dpureprovision","dpu_states":{"states":{"d":"installingos"}}}}`,
		`{"machine_id":"m","timestamp":"2026-11-22T10:00:00Z","managed_host_state":{"state":"dpureprovision","dpu_states":{"states":{"d":{"installdpuos":{"substate":{"installdpuosstate":"waitforinstallcomplete"}}}}}}}`,
		`{"machine_id":"m","timestamp":"2026-11-22T10:00:00Z","managed_host_state":{"state":"failed","machine_id":"m","retry_count":-1,
		  "details":{"cause":"noerror","failed_at":"2026-11-22T10:00:00Z","source":"scout"}}}`,
	} {
		if nicoschema.Validate([]byte(payload)) == nil {
			t.Errorf("accepted %s", payload)
		}
	}
}
