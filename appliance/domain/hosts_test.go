package domain

import (
	"context"
	"errors"
	"testing"

	"github.com/slipway/slipway/store"
)

// A host its BMC reported is adopted as one machine owning all its NICs;
// a NIC that turned out to be a BMC's is forgotten only while nothing but
// its lease made it a machine.
func TestAdoptAndForgetNIC(t *testing.T) {
	ctx := context.Background()
	inv, db := testInventory(t, nil, nil)
	id, err := inv.Adopt(ctx, []MAC{"52:54:00:00:01:01", "52:54:00:00:01:02"}, "host NICs reported by BMC b1")
	if err != nil || id != "mac-525400000101" {
		t.Fatalf("adopt: %q %v", id, err)
	}
	if again, _ := inv.Adopt(ctx, []MAC{"52:54:00:00:01:02"}, "again"); again != id {
		t.Errorf("adopting a known NIC made %q", again)
	}
	if owner, _ := inv.Owner("52:54:00:00:01:02"); owner != id {
		t.Errorf("second NIC owned by %q", owner)
	}
	if err := inv.Check(id, Event{Kind: EventAssign}); err == nil {
		t.Error("assigning a created machine would be allowed")
	}

	tests := []struct {
		name   string
		mac    MAC
		setup  func(mac MAC)
		forget bool
	}{
		{"leased only", "52:54:00:00:02:01", func(mac MAC) {
			_, _ = inv.Seen(ctx, mac, DoorDHCP)
			inv.Notify(ctx, mac, Event{Kind: EventDHCPLease})
		}, true},
		{"fetched a boot script", "52:54:00:00:02:02", func(mac MAC) {
			_, _ = inv.Seen(ctx, mac, DoorDHCP)
			inv.Notify(ctx, mac, Event{Kind: EventBootConfig})
		}, false},
		{"one of a host's NICs", "52:54:00:00:01:01", func(MAC) {}, false},
		{"unknown", "52:54:00:00:02:03", func(MAC) {}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup(tt.mac)
			owner, _ := inv.Owner(tt.mac)
			forgot, err := inv.ForgetNIC(ctx, tt.mac, "its NIC is a BMC")
			if err != nil || forgot != tt.forget {
				t.Fatalf("forgot %v, %v; want %v", forgot, err, tt.forget)
			}
			_, err = db.Machine(ctx, owner)
			if gone := errors.Is(err, store.ErrNotFound); gone != tt.forget && owner != "" {
				t.Errorf("machine %s gone: %v", owner, gone)
			}
			if _, known := inv.Owner(tt.mac); known == tt.forget && owner != "" {
				t.Errorf("MAC still known: %v", known)
			}
		})
	}
}

// A design's node known by its BMC alone learns its NICs from the BMC:
// a discovered machine that held one gives way, a listed machine's NIC
// stays with it, and a machine with MACs keeps its own.
func TestGiveMACs(t *testing.T) {
	ctx := context.Background()
	inv, db := testInventory(t, nil, nil)
	if _, _, err := inv.SyncListed(ctx, []Listed{{ID: "node1", Source: "design"}, {ID: "other", MACs: []MAC{"52:54:00:00:05:03"}}}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Seen(ctx, "52:54:00:00:05:01", DoorDHCP); err != nil { // it netbooted before the BMC was polled
		t.Fatal(err)
	}
	n, err := inv.GiveMACs(ctx, "node1", []MAC{"52:54:00:00:05:01", "52:54:00:00:05:02", "52:54:00:00:05:03"}, "host NICs reported by BMC b1")
	if err != nil || n != 2 {
		t.Fatalf("GiveMACs = %d, %v; want 2", n, err)
	}
	for mac, want := range map[MAC]string{"52:54:00:00:05:01": "node1", "52:54:00:00:05:02": "node1", "52:54:00:00:05:03": "other"} {
		if owner, _ := inv.Owner(mac); owner != want {
			t.Errorf("%s owned by %q, want %q", mac, owner, want)
		}
	}
	if _, err := db.Machine(ctx, DiscoveredID("52:54:00:00:05:01")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the discovered machine is still there: %v", err)
	}
	if n, err := inv.GiveMACs(ctx, "other", []MAC{"52:54:00:00:05:09"}, "x"); err != nil || n != 0 {
		t.Errorf("a machine with MACs was given more: %d %v", n, err)
	}
}

// A site design names a node's rack, never its tray: relisting a machine
// the configuration placed keeps its slot in the same rack, and a node
// only the design lists has no slot (tray 0 would be one).
func TestDesignRelistingKeepsTheConfiguredTray(t *testing.T) {
	ctx := context.Background()
	inv, db := testInventory(t, nil, nil)
	configured := Listed{ID: "m1", MACs: []MAC{"52:54:00:00:06:01"}, MachineInfo: MachineInfo{RackID: "r1", Tray: 2, TrayKnown: true}}
	if _, _, err := inv.SyncListed(ctx, []Listed{configured}, "test"); err != nil {
		t.Fatal(err)
	}
	relisted := Listed{ID: "m1", Source: "design", MACs: []MAC{"52:54:00:00:06:01"}, MachineInfo: MachineInfo{RackID: "r1"}}
	designed := Listed{ID: "n1", Source: "design", MACs: []MAC{"52:54:00:00:06:02"}, MachineInfo: MachineInfo{RackID: "r1"}}
	if _, _, err := inv.SyncListed(ctx, []Listed{relisted, designed}, "test"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]struct {
		tray  int
		known bool
	}{"m1": {2, true}, "n1": {0, false}} {
		m, err := (Fleet{DB: db}).Machine(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if tray, known := m.TrayPlace(); tray != want.tray || known != want.known {
			t.Errorf("%s: tray %d known %v, want %d %v", id, tray, known, want.tray, want.known)
		}
	}
}
