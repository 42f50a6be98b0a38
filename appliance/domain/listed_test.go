package domain

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/slipway/slipway/store"
)

// A machine discovered by its first DHCP request and listed in the file
// since becomes the configured machine; a MAC moved between configured
// machines moves with the file.
func TestInventorySyncAdoptsDiscoveredMachinesAndMovedMACs(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir()+"/slipway.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	commit := db.NewCommitter(8)
	defer commit.Close()
	inv, err := NewInventory(ctx, InventoryConfig{DB: db, Commit: commit, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Seen(ctx, "52:54:00:00:00:01", DoorDHCP); err != nil {
		t.Fatal(err)
	}
	first := []Listed{
		{ID: "r1-t1", MACs: []MAC{"52:54:00:00:00:01"}},
		{ID: "r1-t2", MACs: []MAC{"52:54:00:00:00:02"}},
	}
	if _, _, err := SyncListed(ctx, db, first, quiet); err != nil {
		t.Fatalf("a discovered MAC listed in the configuration must not stop start-up: %v", err)
	}
	if _, err := db.Machine(ctx, DiscoveredID("52:54:00:00:00:01")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the discovered record is still there: %v", err)
	}
	// The NIC of r1-t2 moves to r1-t1.
	second := []Listed{
		{ID: "r1-t1", MACs: []MAC{"52:54:00:00:00:01", "52:54:00:00:00:02"}},
		{ID: "r1-t2", MACs: []MAC{"52:54:00:00:00:03"}},
	}
	if _, _, err := SyncListed(ctx, db, second, quiet); err != nil {
		t.Fatal(err)
	}
	m, err := db.MachineByMAC(ctx, "52:54:00:00:00:02")
	if err != nil || m.ID != "r1-t1" || len(m.MACs) != 2 {
		t.Fatalf("moved MAC belongs to %+v, %v", m, err)
	}
}
