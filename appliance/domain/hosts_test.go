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
			_, _ = inv.Seen(ctx, mac)
			inv.Notify(ctx, mac, Event{Kind: EventDHCPLease})
		}, true},
		{"fetched a boot script", "52:54:00:00:02:02", func(mac MAC) {
			_, _ = inv.Seen(ctx, mac)
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
