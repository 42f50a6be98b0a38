package native

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/slipway/slipway/store"
)

func TestNaturalCompare(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"r2", "r10", -1},
		{"r10", "r2", 1},
		{"r02", "r2", 1}, // same value: the shorter first
		{"rack-a", "rack-b", -1},
		{"fra1-r12", "fra1-r9", 1},
		{"fra10-r1", "fra9-r1", 1},
		{"r1", "r1", 0},
		{"r1", "r1a", -1},
		{"99999999999999999999999", "100000000000000000000000", -1}, // past uint64, by value still
		{"", "a", -1},
	} {
		if got := naturalCompare(tt.a, tt.b); got != tt.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// The racks view gets every machine, racked in its rack by slot and the
// racks in the order people count them, the others apart, across more
// than one page of the store.
func TestRacksGroupsEveryMachineBySlot(t *testing.T) {
	s := startMachinesServer(t)
	type placed struct {
		id, rack string
		tray     int
	}
	var machines []placed
	for i := range racksPage + 3 { // more than a page
		machines = append(machines, placed{fmt.Sprintf("m%05d", i), fmt.Sprintf("r%d", 10-i%3), (racksPage + 3 - i) % 40})
	}
	machines = append(machines, placed{"loose-2", "", 0}, placed{"loose-10", "", 0})
	err := s.db.Update(context.Background(), func(tx *store.Tx) error {
		for i, m := range machines {
			_, err := tx.CreateMachine(store.Machine{ID: m.id, MACs: []string{fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>16&255, i>>8&255, i&255)},
				Source: "config", State: "created", StateJSON: `{"state":"created"}`, RackID: m.rack, Tray: m.tray, TrayType: "compute"}, "inventory")
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, s.base+"/api/v1/racks")
	var got struct {
		Racks    []rackViewJSON `json:"racks"`
		Unracked []trayJSON     `json:"unracked"`
		Total    int            `json:"machines_total"`
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("GET /api/v1/racks: %d %v", code, err)
	}
	var ids []string
	n := 0
	for _, r := range got.Racks {
		ids = append(ids, r.ID)
		if !slices.IsSortedFunc(r.Trays, func(a, b trayJSON) int { return a.Tray - b.Tray }) {
			t.Errorf("rack %s's trays are not in slot order", r.ID)
		}
		for _, tr := range r.Trays {
			if tr.State != "created" || tr.BMC != "none" {
				t.Errorf("tray %+v", tr)
			}
		}
		n += len(r.Trays)
	}
	if !slices.Equal(ids, []string{"r8", "r9", "r10"}) {
		t.Errorf("racks in the order %v, want r8 r9 r10", ids)
	}
	if n != racksPage+3 || got.Total != racksPage+5 || len(got.Unracked) != 2 || got.Unracked[0].MachineID != "loose-2" {
		t.Errorf("%d racked, %d in all, unracked %+v", n, got.Total, got.Unracked)
	}
}

func TestBMCWord(t *testing.T) {
	for _, tt := range []struct {
		reachable bool
		lastError string
		polled    bool
		want      string
	}{
		{false, "", false, "new"},
		{true, "", true, "reachable"},
		{false, "401 Unauthorized", true, "unusable"},
		{true, "firmware inventory: 500", true, "unusable"},
		{false, "", true, "unusable"},
	} {
		if got := bmcWord(tt.reachable, tt.lastError, tt.polled); got != tt.want {
			t.Errorf("bmcWord(%v, %q, %v) = %q, want %q", tt.reachable, tt.lastError, tt.polled, got, tt.want)
		}
	}
}
