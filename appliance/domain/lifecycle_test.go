package domain

import (
	"errors"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	hb := HeartbeatEvent
	validatingInstall := Validation(Validating{Completed: 1, Total: 5, Context: "install", ID: "run-1"})
	tests := []struct {
		name    string
		from    State
		ev      Event
		want    string // the label of the state reached
		wantErr error  // ErrNoChange, or errIllegal for an *IllegalTransitionError
	}{
		{"lease starts hostinit", Created(), Event{Kind: EventDHCPLease}, "hostinit/init", nil},
		{"lease again changes nothing", HostInit(HostInitInit), Event{Kind: EventDHCPLease}, "", errIllegal},
		{"boot script from init", HostInit(HostInitInit), Event{Kind: EventBootConfig}, "hostinit/waitingfordiscovery", nil},
		{"boot script from created (proxy DHCP)", Created(), Event{Kind: EventBootConfig}, "hostinit/waitingfordiscovery", nil},
		{"boot script on a ready machine is not a reinstall", Ready(), Event{Kind: EventBootConfig}, "", errIllegal},
		{"cloud-init discovers", HostInit(HostInitWaitingForDiscovery), Event{Kind: EventCloudInit}, "hostinit/discovered", nil},
		{"cloud-init twice", HostInit(HostInitDiscovered), Event{Kind: EventCloudInit}, "", errIllegal},
		{"boot heartbeat discovers", HostInit(HostInitWaitingForDiscovery), hb(StageBoot, PhaseStarted, ""), "hostinit/discovered", nil},
		{"boot heartbeat when discovered", HostInit(HostInitDiscovered), hb(StageBoot, PhaseDone, ""), "", ErrNoChange},
		{"install starts validation", HostInit(HostInitDiscovered), hb(StageInstall, PhaseStarted, ""), "validation/install", nil},
		{"install done is progress", validatingInstall, hb(StageInstall, PhaseDone, ""), "validation/install", nil},
		{"same heartbeat again", Validation(Validating{Completed: 2, Total: 5, Context: "install", ID: "run-1"}), hb(StageInstall, PhaseDone, ""), "", ErrNoChange},
		{"complete makes ready", validatingInstall, hb(StageComplete, PhaseDone, ""), "ready", nil},
		{"complete straight from hostinit", HostInit(HostInitDiscovered), hb(StageComplete, PhaseDone, ""), "ready", nil},
		{"complete on created is illegal", Created(), hb(StageComplete, PhaseDone, ""), "", errIllegal},
		{"install failure fails validation", validatingInstall, hb(StageInstall, PhaseFailed, "disk full"), "failed/machinevalidation", nil},
		{"boot failure fails discovery", HostInit(HostInitDiscovered), hb(StageBoot, PhaseFailed, ""), "failed/discovery", nil},
		{"a failed machine that boots again", Failed("m", FailureCause{"discovery", "x"}, FailureSource{Name: "scout"}, now), hb(StageBoot, PhaseStarted, ""), "hostinit/discovered", nil},
		{"a ready machine's stray install heartbeat moves nothing", Ready(), hb(StageDisk, PhaseStarted, ""), "", errIllegal},
		{"a ready machine's early heartbeat does not send it back to onboarding", Ready(), hb(StageBoot, PhaseStarted, ""), "", errIllegal},
		{"a ready machine's failed heartbeat does not fail it", Ready(), hb(StageInstall, PhaseFailed, "old log"), "", errIllegal},
		{"assigned ignores heartbeats", Assigned(), hb(StageInstall, PhaseStarted, ""), "", errIllegal},
		{"timeout in hostinit", HostInit(HostInitWaitingForDiscovery), Event{Kind: EventTimeout, Cause: "slow"}, "failed/discovery", nil},
		{"no timeout when ready", Ready(), Event{Kind: EventTimeout}, "", errIllegal},
		{"provision a ready machine", Ready(), Event{Kind: EventProvision}, "hostinit/waitingfordiscovery", nil},
		{"assign", Ready(), Event{Kind: EventAssign}, "assigned/ready", nil},
		{"assign twice", Assigned(), Event{Kind: EventAssign}, "", errIllegal},
		{"release", Assigned(), Event{Kind: EventRelease}, "waitingforcleanup/hostcleanup", nil},
		{"cleaned", WaitingForCleanup(), Event{Kind: EventCleaned}, "ready", nil},
		{"force delete", Assigned(), Event{Kind: EventForceDelete}, "forcedeletion", nil},
		{"nothing leaves forcedeletion", ForceDeletion(), Event{Kind: EventProvision}, "", errIllegal},
		{"firmware update of a ready machine", Ready(), Event{Kind: EventFirmwareStart, Reprovision: CheckingFirmware()}, "hostreprovision/checkingfirmware", nil},
		{"no firmware update while installing", validatingInstall, Event{Kind: EventFirmwareStart, Reprovision: CheckingFirmware()}, "", errIllegal},
		{"no firmware update of an assigned machine", Assigned(), Event{Kind: EventFirmwareStart, Reprovision: CheckingFirmware()}, "", errIllegal},
		{"firmware flashing", HostReprovision(CheckingFirmware()), Event{Kind: EventFirmwareStep,
			Reprovision: WaitingForFirmwareUpgrade(FirmwareTarget{"bmc", "2.0"}, "t1", now)}, "hostreprovision/waitingforfirmwareupgrade", nil},
		{"firmware updated", HostReprovision(NewFirmwareReportedWait(FirmwareTarget{"bmc", "2.0"})), Event{Kind: EventFirmwareDone, WasReady: true}, "ready", nil},
		{"firmware updated on a machine not installed", HostReprovision(NewFirmwareReportedWait(FirmwareTarget{"bmc", "2.0"})), Event{Kind: EventFirmwareDone}, "created", nil},
		{"DPU reprovisioning of a ready host", Ready(), Event{Kind: EventDPUStart, DPUStates: map[string]Reprovision{"d1": InstallingBFB()}}, "dpureprovision/installdpuos", nil},
		{"no DPU reprovisioning while installing", validatingInstall, Event{Kind: EventDPUStart, DPUStates: map[string]Reprovision{"d1": InstallingBFB()}}, "", errIllegal},
		{"no DPU reprovisioning during a firmware update", HostReprovision(CheckingFirmware()), Event{Kind: EventDPUStart}, "", errIllegal},
		{"DPUs at different steps", DPUReprovision(map[string]Reprovision{"d1": InstallingBFB()}), Event{Kind: EventDPUStep,
			DPUStates: map[string]Reprovision{"d1": InstalledDPUOS(), "d2": DPUStep(DPUPoweringOffHost)}}, "dpureprovision/installdpuos+poweringoffhost", nil},
		{"a failed DPU reprovisioning may start again", DPUReprovision(map[string]Reprovision{"d1": DPUInstallationError("x")}), Event{Kind: EventDPUStart,
			DPUStates: map[string]Reprovision{"d1": InstallingBFB()}}, "dpureprovision/installdpuos", nil},
		{"DPUs reprovisioned", DPUReprovision(map[string]Reprovision{"d1": DPUStep(DPUVerifyFirmware)}), Event{Kind: EventDPUDone, WasReady: true}, "ready", nil},
		{"provision a host stuck in DPU reprovisioning", DPUReprovision(map[string]Reprovision{"d1": DPUInstallationError("x")}), Event{Kind: EventProvision}, "hostinit/waitingfordiscovery", nil},
		{"timeout while reprovisioning", HostReprovision(CheckingFirmware()), Event{Kind: EventTimeout}, "failed/reprovisioning", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Next(Machine{ID: "m", State: tt.from}, tt.ev, now)
			var illegal *IllegalTransitionError
			switch {
			case tt.wantErr == errIllegal:
				if !errors.As(err, &illegal) {
					t.Fatalf("want an illegal transition, got %s, %v", got.Label(), err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("want %v, got %s, %v", tt.wantErr, got.Label(), err)
				}
			case err != nil:
				t.Fatalf("want %s, got %v", tt.want, err)
			case got.Label() != tt.want:
				t.Fatalf("got %s, want %s", got.Label(), tt.want)
			}
		})
	}
}

var errIllegal = errors.New("illegal")

// A validation run keeps its id while it progresses and gets a new one
// when the machine enters validation afresh.
func TestValidationRunIDs(t *testing.T) {
	now := time.Now()
	first, err := Next(Machine{ID: "m", State: HostInit(HostInitDiscovered)}, HeartbeatEvent(StageDisk, PhaseStarted, ""), now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Next(Machine{ID: "m", State: first}, HeartbeatEvent(StageInstall, PhaseStarted, ""), now)
	if err != nil {
		t.Fatal(err)
	}
	id := func(s State) string { return s.ValidationState.MachineValidation.Validating.ID }
	if id(first) == "" || id(first) != id(second) {
		t.Fatalf("run ids %q then %q: want one run", id(first), id(second))
	}
	if v := second.ValidationState.MachineValidation.Validating; v.Completed != 1 || v.Total != 5 {
		t.Fatalf("progress %d/%d, want 1/5", v.Completed, v.Total)
	}
	again, _ := Next(Machine{ID: "m", State: HostInit(HostInitDiscovered)}, HeartbeatEvent(StageDisk, PhaseStarted, ""), now)
	if id(again) == id(first) {
		t.Fatal("a new run reused the old run id")
	}
}

func TestIllegalTransitionListsWhatIsAllowed(t *testing.T) {
	_, err := Next(Machine{ID: "m1", State: Assigned()}, Event{Kind: EventAssign}, time.Now())
	want := "machine m1 is assigned/ready: assign is not allowed there (allowed: release, force-delete)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestStatesRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, s := range []State{Created(), HostInit(HostInitInit), Ready(), Assigned(), WaitingForCleanup(), ForceDeletion(),
		Validation(Validating{Completed: 2, Total: 5, Context: "configure", ID: "x"}),
		Failed("m", FailureCause{"machinevalidation", "boom"}, FailureSource{Area: "mainflow"}, now),
		Failed("m", FailureCause{"discovery", "boom"}, FailureSource{Name: "scout"}, now),
		DPUReprovision(map[string]Reprovision{"d1": WaitForInstallComplete("40%", "/redfish/v1/TaskService/Tasks/3"), "d2": DPUStep(DPUBufferTime)}),
	} {
		back, err := ParseState(s.JSON())
		if err != nil || back.JSON() != s.JSON() {
			t.Errorf("%s: round trip gave %s, %v", s.JSON(), back.JSON(), err)
		}
	}
}

func TestParseEnums(t *testing.T) {
	if _, err := ParseStage("install"); err != nil {
		t.Fatal(err)
	}
	_, err := ParsePhase("finished")
	var enum *EnumError
	if !errors.As(err, &enum) || len(enum.Allowed) != len(Phases) {
		t.Fatalf("want an EnumError listing %d phases, got %v", len(Phases), err)
	}
	if err.Error() != `phase: "finished" is not one of started, running, done, failed` {
		t.Fatalf("message: %v", err)
	}
}

// FuzzParseState feeds stored-state text to the decoder: it must never
// panic, and what it accepts must encode and decode to the same state.
func FuzzParseState(f *testing.F) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, s := range []State{Created(), HostInit(HostInitDiscovered), Ready(), Assigned(),
		Validation(Validating{Completed: 1, Total: 5, Context: "install", ID: "x"}),
		Failed("m", FailureCause{"discovery", "x"}, FailureSource{Area: "hostinit"}, now)} {
		f.Add(s.JSON())
	}
	f.Add(`{"state":"failed","details":{"cause":"noerror","source":"scout","failed_at":"2026-11-22T10:00:00Z"}}`)
	f.Add(`{"state":"failed","details":{"cause":{"a":{"err":"x"},"b":{}}}}`)
	f.Fuzz(func(t *testing.T, in string) {
		st, err := ParseState(in)
		if err != nil {
			return
		}
		back, err := ParseState(st.JSON())
		if err != nil || back.JSON() != st.JSON() {
			t.Fatalf("%q decoded to %s, which decodes to %s, %v", in, st.JSON(), back.JSON(), err)
		}
		_ = st.Label()
		_, _ = Next(Machine{ID: "m", State: st}, HeartbeatEvent(StageInstall, PhaseDone, ""), now)
	})
}
