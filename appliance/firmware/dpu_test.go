package firmware

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/testbed/bmcemu"
)

// A DPU reprovisioning stopped while the DPU's BMC installs resumes: the
// install is followed, not sent again; the host is powered off and on
// once; the DPU reports the new version, and the host went through
// dpureprovision back to ready.
func TestDPUReprovisioningResumesAfterARestart(t *testing.T) {
	var boots atomic.Int64
	w := newWorld(t, bmcemu.Config{OnBoot: func(bmcemu.BootEvent) { boots.Add(1) }})
	w.ready(t)
	var dpuUpdates atomic.Int64
	dpuBMC, dpu := w.addBMC(t, bmcemu.Config{ExtraFirmware: map[string]string{DPUComponent: "4.8.0"}}, "52:54:00:fa:00:81", &dpuUpdates)
	bfb := w.image(t, DPUComponent, "4.9.1")
	first := w.updater(20 * time.Millisecond)
	stop := run(t, first)
	task, err := first.StartDPU(context.Background(), DPUReprovision{HostID: w.machine, DPUIDs: []string{dpu}, ImageID: bfb.ID})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the DPU's BMC installing", func() bool {
		tk, _ := w.db.Task(context.Background(), task.ID)
		return strings.Contains(tk.Result, `"redfish_task"`)
	})
	stop()
	run(t, w.updater(20*time.Millisecond))
	if tk := w.finished(t, task.ID); tk.Status != "succeeded" || tk.Step != "notunderreprovision" {
		t.Fatalf("after resuming: %s at %s, %q", tk.Status, tk.Step, tk.Message)
	}
	if n := dpuUpdates.Load(); n != 1 {
		t.Errorf("%d SimpleUpdate requests to the DPU's BMC, want 1", n)
	}
	if v := dpuBMC.FirmwareVersion(DPUComponent); v != "4.9.1" {
		t.Errorf("the DPU runs %s", v)
	}
	waitFor(t, "the host powered on", func() bool { return boots.Load() > 0 })
	if n := boots.Load(); n != 1 {
		t.Errorf("the host was powered on %d times, want once", n)
	}
	waitFor(t, "the host ready", func() bool { st, _ := w.inv.State(w.machine); return st.State == domain.StateReady })
	labels := strings.Join(w.labels(t), " ")
	for _, want := range []string{"dpureprovision/installdpuos", "dpureprovision/poweringoffhost", "dpureprovision/powerdown",
		"dpureprovision/buffertime", "dpureprovision/verifyfirmareversions ready"} {
		if !strings.Contains(labels, want) {
			t.Errorf("the host's history %q lacks %q", labels, want)
		}
	}
}

// What StartDPU refuses before anything is stored.
func TestStartDPURefusals(t *testing.T) {
	w := newWorld(t, bmcemu.Config{})
	u := w.updater(20 * time.Millisecond)
	bfb, bios := w.image(t, DPUComponent, "4.9.1"), w.image(t, "BIOS", "2.0")
	for _, tc := range []struct {
		name string
		d    DPUReprovision
		says string
	}{
		{"not a DPU image", DPUReprovision{HostID: w.machine, DPUIDs: []string{"d"}, ImageID: bios.ID}, "BIOS firmware, not a DPU operating system"},
		{"no DPU", DPUReprovision{HostID: w.machine, ImageID: bfb.ID}, "has no DPU"},
		{"a DPU without a BMC", DPUReprovision{HostID: w.machine, DPUIDs: []string{"nobody"}, ImageID: bfb.ID}, "DPU nobody of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := u.StartDPU(context.Background(), tc.d)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %q", err, tc.says)
			}
		})
	}
	// A host being installed is not reprovisioned.
	if _, err := w.inv.Apply(context.Background(), w.machine, domain.HeartbeatEvent(domain.StageInstall, domain.PhaseStarted, "")); err != nil {
		t.Fatal(err)
	}
	_, err := u.StartDPU(context.Background(), DPUReprovision{HostID: w.machine, DPUIDs: []string{w.machine}, ImageID: bfb.ID})
	if err == nil || !strings.Contains(err.Error(), "validation/install") {
		t.Fatalf("an installing host: %v", err)
	}
}
