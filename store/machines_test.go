package store

import (
	"context"
	"path/filepath"
	"testing"
)

// A lister that gives no tray (a site design) keeps the one stored while
// the rack stays the same, and forgets it with a new rack: a slot of one
// rack says nothing of another's.
func TestUpdateInventoryKeepsATrayTheListerDoesNotGive(t *testing.T) {
	type place struct {
		rack  string
		tray  int
		known bool
	}
	tests := []struct {
		name        string
		stored, put place
		want        place
	}{
		{"a design relists a configured machine", place{"r1", 2, true}, place{"r1", 0, false}, place{"r1", 2, true}},
		{"a design moves it to another rack", place{"r1", 2, true}, place{"r2", 0, false}, place{"r2", 0, false}},
		{"the configuration gives another tray", place{"r1", 2, true}, place{"r1", 5, true}, place{"r1", 5, true}},
		{"the configuration gives tray 0", place{"r1", 2, true}, place{"r1", 0, true}, place{"r1", 0, true}},
		{"the configuration places a designed node", place{"r1", 0, false}, place{"r1", 3, true}, place{"r1", 3, true}},
		{"a design relists its own node", place{"r1", 0, false}, place{"r1", 0, false}, place{"r1", 0, false}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openTest(t)
			m := created("m1", "52:54:00:00:01:0"+string(rune('0'+i)))
			m.RackID, m.Tray, m.TrayKnown = tt.stored.rack, tt.stored.tray, tt.stored.known
			create(t, s, m)
			m.RackID, m.Tray, m.TrayKnown = tt.put.rack, tt.put.tray, tt.put.known
			if err := s.Update(ctx, func(tx *Tx) error { return tx.UpdateInventory(m) }); err != nil {
				t.Fatal(err)
			}
			got, err := s.Machine(ctx, "m1")
			if err != nil {
				t.Fatal(err)
			}
			if (place{got.RackID, got.Tray, got.TrayKnown}) != tt.want {
				t.Errorf("stored %+v, want %+v", place{got.RackID, got.Tray, got.TrayKnown}, tt.want)
			}
		})
	}
}

// A database from before tray_known: a configured, racked machine's tray
// is known; a design's node, a discovered machine and one with no rack
// have none.
func TestTrayKnownMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slipway.db")
	old := openAtVersion(t, path, 15)
	const at = `'2026-01-01T00:00:00.000000000Z'`
	for _, row := range []string{
		`('racked', 'r1', 3, 'config')`, `('rack-tray-0', 'r1', 0, 'config')`, `('loose', '', 0, 'config')`,
		`('designed', 'r1', 0, 'design')`, `('found', '', 0, 'discovered')`, `('by-api', 'r2', 1, 'api')`,
	} {
		if _, err := old.Exec(`INSERT INTO machines (id, rack_id, tray, source, state, state_json, state_since, created_at, updated_at)
			VALUES ` + row[:len(row)-1] + `, 'created', '{}', ` + at + `, ` + at + `, ` + at + `)`); err != nil {
			t.Fatal(err)
		}
	}
	s := upgraded(t, old, path)
	for id, want := range map[string]bool{"racked": true, "rack-tray-0": true, "loose": false, "designed": false, "found": false, "by-api": true} {
		m, err := s.Machine(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.TrayKnown != want {
			t.Errorf("%s: tray known %v, want %v", id, m.TrayKnown, want)
		}
	}
}
