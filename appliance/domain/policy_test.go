package domain

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// A changed policy is in force at once, kept over the file's across a
// restart, and reset to the file's; a wrong one is refused, naming the
// setting, and changes nothing.
func TestRunPolicyChangesAtOnceAndStays(t *testing.T) {
	ctx := context.Background()
	inv, db := testInventory(t, nil, nil)
	if p := inv.Policy(); p.Source != PolicyFromFile || p.UnknownMachines != UnknownInstall || !slices.Equal(p.Discovery.Doors, DefaultDiscoveryDoors) {
		t.Fatalf("at start: %+v", p)
	}
	for _, tt := range []struct {
		p    RunPolicy
		says string
	}{
		{RunPolicy{UnknownMachines: "reboot"}, "netboot.unknown_machines"},
		{RunPolicy{UnknownMachines: UnknownLocal, Discovery: DiscoveryPolicy{Doors: Doors, MaxMachines: -1}}, "discovery.max_machines"},
		{RunPolicy{UnknownMachines: UnknownLocal, Discovery: DiscoveryPolicy{Doors: Doors, ExpireAfter: -time.Hour}}, "discovery.expire_after"},
		{RunPolicy{UnknownMachines: UnknownLocal, Discovery: DiscoveryPolicy{Doors: []Door{"smtp"}}}, "discovery.doors"},
		{RunPolicy{UnknownMachines: UnknownLocal}, "discovery.doors names none"},
		{RunPolicy{UnknownMachines: UnknownLocal, Discovery: DiscoveryPolicy{Doors: Doors, ExpireAfter: time.Minute}}, "discovery.expire_after"},
	} {
		if _, err := inv.SetPolicy(ctx, tt.p, "ada"); !errors.Is(err, ErrBadPolicy) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%+v: %v", tt.p, err)
		}
	}
	if inv.Policy().Source != PolicyFromFile {
		t.Fatal("a refused policy changed the one in force")
	}

	ignore := RunPolicy{UnknownMachines: UnknownIgnore, Discovery: DiscoveryPolicy{Doors: []Door{DoorDHCP}, MaxMachines: 5, ExpireAfter: time.Hour}}
	if p, err := inv.SetPolicy(ctx, ignore, "ada"); err != nil || p.Source != PolicyChanged || p.ChangedBy != "ada" {
		t.Fatalf("set: %+v %v", p, err)
	}
	// In force at once: an unknown MAC that netboots is not answered.
	if plan := inv.BootPlan("52:54:00:aa:00:01"); plan.Action != BootIgnore {
		t.Errorf("an unknown machine under ignore: %+v", plan)
	}
	// Kept across a restart.
	again, err := NewInventory(ctx, InventoryConfig{DB: db, Commit: inv.cfg.Commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if p := again.Policy(); p.Source != PolicyChanged || p.UnknownMachines != UnknownIgnore || p.Discovery.MaxMachines != 5 ||
		p.Discovery.ExpireAfter != time.Hour || !slices.Equal(p.Discovery.Doors, []Door{DoorDHCP}) || p.ChangedBy != "ada" {
		t.Errorf("after a restart: %+v", p)
	}
	if p, err := again.ResetPolicy(ctx, "ada"); err != nil || p.Source != PolicyFromFile || p.UnknownMachines != UnknownInstall {
		t.Errorf("reset: %+v %v", p, err)
	}
	third, err := NewInventory(ctx, InventoryConfig{DB: db, Commit: inv.cfg.Commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil || third.Policy().Source != PolicyFromFile {
		t.Errorf("after a reset and a restart: %+v %v", third.Policy(), err)
	}
}
