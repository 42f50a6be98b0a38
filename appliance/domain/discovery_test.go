package domain

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Only the listed doors discover, no more than the cap, and a discovered
// machine that never progressed is forgotten after discovery.expire_after
// unless it holds a lease or posted a heartbeat.
func TestDiscoveryPolicy(t *testing.T) {
	ctx := context.Background()
	var ahead time.Duration
	inv, db := testInventory(t, nil, func() time.Time { return time.Now().Add(ahead) })
	useDiscovery(inv, DiscoveryPolicy{Doors: []Door{DoorDHCP, DoorBoot}, MaxMachines: 3, ExpireAfter: 24 * time.Hour})

	// A heartbeat or a cloud-init fetch from a MAC nobody owns is refused,
	// naming the setting; DHCP and boot configs discover.
	if _, err := inv.RecordHeartbeat(ctx, Heartbeat{MAC: "52:54:00:00:0e:01", Stage: StageBoot, Phase: PhaseStarted}); !errors.Is(err, ErrDiscoveryRefused) || !strings.Contains(err.Error(), "discovery.doors is [dhcp, boot]") {
		t.Fatalf("a heartbeat discovered a machine: %v", err)
	}
	if _, err := inv.MachineByMAC(ctx, "52:54:00:00:0e:01", DoorCloudInit); !errors.Is(err, ErrDiscoveryRefused) {
		t.Fatalf("a cloud-init fetch discovered a machine: %v", err)
	}
	if events, _ := db.StageEvents(ctx, "52:54:00:00:0e:01"); len(events) != 0 {
		t.Fatalf("a refused heartbeat was kept: %v", events)
	}
	for _, mac := range []MAC{"52:54:00:00:0e:01", "52:54:00:00:0e:02"} {
		if _, err := inv.Seen(ctx, mac, DoorDHCP); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := inv.MachineByMAC(ctx, "52:54:00:00:0e:03", DoorBoot); err != nil {
		t.Fatal(err)
	}
	// The cap: the fourth is refused, a known MAC still answers.
	if _, err := inv.Seen(ctx, "52:54:00:00:0e:04", DoorDHCP); !errors.Is(err, ErrDiscoveryRefused) || !strings.Contains(err.Error(), "discovery.max_machines") {
		t.Fatalf("past the cap: %v", err)
	}
	if known, err := inv.Seen(ctx, "52:54:00:00:0e:01", DoorDHCP); !known || err != nil {
		t.Fatalf("a known MAC past the cap: %v, %v", known, err)
	}

	// One posts a heartbeat (which moves it on), one holds a lease, the
	// third never did anything.
	useDiscovery(inv, DiscoveryPolicy{Doors: Doors, MaxMachines: 3, ExpireAfter: 24 * time.Hour})
	if _, err := inv.RecordHeartbeat(ctx, Heartbeat{MAC: "52:54:00:00:0e:02", Stage: StageInstall, Phase: PhaseRunning}); err != nil {
		t.Fatal(err)
	}
	holds := func(mac MAC) bool { return mac == "52:54:00:00:0e:01" }
	if n, err := inv.ExpireDiscovered(ctx, holds); n != 0 || err != nil {
		t.Fatalf("expired %d before their time: %v", n, err)
	}
	ahead = 25 * time.Hour
	if n, err := inv.ExpireDiscovered(ctx, holds); n != 1 || err != nil {
		t.Fatalf("expired %d, want 1: %v", n, err)
	}
	for mac, want := range map[MAC]bool{"52:54:00:00:0e:01": true, "52:54:00:00:0e:02": true, "52:54:00:00:0e:03": false} {
		if got := inv.Known(mac); got != want {
			t.Errorf("%s known %v after expiry, want %v", mac, got, want)
		}
		if _, err := db.MachineByMAC(ctx, string(mac)); (err == nil) != want {
			t.Errorf("%s stored: %v, want %v", mac, err, want)
		}
	}
	// Room again under the cap.
	if _, err := inv.Seen(ctx, "52:54:00:00:0e:04", DoorDHCP); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// SeenSoon (a DISCOVER) answers before the new machine is stored, stores
// it all the same, and the discovery cap counts the ones under way.
func TestSeenSoonRecordsInTheBackground(t *testing.T) {
	ctx := context.Background()
	inv, _ := testInventory(t, nil, time.Now)
	useDiscovery(inv, DiscoveryPolicy{Doors: []Door{DoorDHCP}, MaxMachines: 3})
	macs := []MAC{"52:54:00:00:0f:01", "52:54:00:00:0f:02", "52:54:00:00:0f:03"}
	for _, mac := range macs {
		if known, err := inv.SeenSoon(ctx, mac, DoorDHCP); known || err != nil {
			t.Fatalf("%s: known %v, %v", mac, known, err)
		}
	}
	if _, err := inv.SeenSoon(ctx, "52:54:00:00:0f:04", DoorDHCP); !errors.Is(err, ErrDiscoveryRefused) {
		t.Fatalf("past the cap, with the first three still being stored or stored: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, mac := range macs {
		for !inv.Known(mac) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never stored", mac)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if known, err := inv.SeenSoon(ctx, mac, DoorDHCP); !known || err != nil {
			t.Fatalf("%s once stored: known %v, %v", mac, known, err)
		}
	}
}

// useDiscovery puts p in force, as a changed run-time policy would.
func useDiscovery(inv *Inventory, p DiscoveryPolicy) {
	policy := inv.Policy()
	policy.Discovery = p
	inv.policy.Store(&policy)
}
