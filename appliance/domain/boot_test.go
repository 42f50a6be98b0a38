package domain

import (
	"context"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed/testkit"
)

func TestPlanBoot(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name       string
		state      State
		discovered bool
		unknown    UnknownPolicy
		want       BootAction
	}{
		{"listed, new", Created(), false, UnknownLocal, BootInstall},
		{"discovered under install", Created(), true, UnknownInstall, BootInstall},
		{"discovered under local", Created(), true, UnknownLocal, BootLocal},
		{"armed by provision", HostInit(HostInitWaitingForDiscovery), true, UnknownLocal, BootInstall},
		{"installing, rebooted", Validation(Validating{Context: "install"}), false, UnknownInstall, BootInstall},
		{"ready", Ready(), false, UnknownInstall, BootLocal},
		{"assigned", Assigned(), false, UnknownInstall, BootLocal},
		{"failed: an operator decides", Failed("m", FailureCause{"discovery", "x"}, FailureSource{Name: "scout"}, now), false, UnknownInstall, BootLocal},
		{"firmware being updated", HostReprovision(CheckingFirmware()), false, UnknownInstall, BootLocal},
		{"being cleaned", WaitingForCleanup(), false, UnknownInstall, BootLocal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planBoot(tt.state, tt.discovered, tt.unknown); got.Action != tt.want || got.Why == "" {
				t.Fatalf("%s: got %v (%s), want %v", tt.state.Label(), got.Action, got.Why, tt.want)
			}
		})
	}
}

// The inventory decides from what it keeps in memory: a machine discovered
// under the local policy keeps its disk until Provision arms it; listed
// machines install; a ready machine keeps its disk; unknown MACs follow the
// policy. The discovered mark survives a restart.
func TestInventoryBootPlan(t *testing.T) {
	ctx := context.Background()
	db, commit := testkit.OpenStore(t)
	if _, _, err := SyncListed(ctx, db, []Listed{{ID: "listed", MACs: []MAC{"52:54:00:00:00:01"}}}, nil); err != nil {
		t.Fatal(err)
	}
	open := func() *Inventory {
		inv, err := NewInventory(ctx, InventoryConfig{DB: db, Commit: commit, UnknownMachines: UnknownLocal})
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	inv := open()
	const stranger MAC = "52:54:00:00:00:02"
	if got := inv.BootPlan(stranger).Action; got != BootLocal {
		t.Fatalf("unknown MAC under local: %v", got)
	}
	if _, err := inv.Seen(ctx, stranger, DoorDHCP); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		mac  MAC
		want BootAction
	}{{"52:54:00:00:00:01", BootInstall}, {stranger, BootLocal}}
	for _, c := range checks {
		if got := open().BootPlan(c.mac); got.Action != c.want {
			t.Fatalf("%s after a restart: %v (%s), want %v", c.mac, got.Action, got.Why, c.want)
		}
		if got := inv.BootPlan(c.mac); got.Action != c.want {
			t.Fatalf("%s: %v (%s), want %v", c.mac, got.Action, got.Why, c.want)
		}
	}
	if _, err := inv.Apply(ctx, DiscoveredID(stranger), Event{Kind: EventProvision, Cause: "test"}); err != nil {
		t.Fatal(err)
	}
	if got := inv.BootPlan(stranger).Action; got != BootInstall {
		t.Fatalf("provisioned: %v", got)
	}
	for _, hb := range []Event{HeartbeatEvent(StageInstall, PhaseStarted, ""), HeartbeatEvent(StageComplete, PhaseDone, "")} {
		if _, err := inv.Apply(ctx, DiscoveredID(stranger), hb); err != nil {
			t.Fatal(err)
		}
	}
	if got := inv.BootPlan(stranger); got.Action != BootLocal {
		t.Fatalf("ready: %v (%s)", got.Action, got.Why)
	}
}
