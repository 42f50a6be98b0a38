package domain

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

// Counts at each point come from the counts now with every later change
// undone; a machine created in the window is counted from then on; the
// time to ready runs from a machine's start (made, or leaving created).
func TestHistoryUndoesChangesBackInTime(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := func(minAgo float64) time.Time { return now.Add(-time.Duration(minAgo * float64(time.Minute))) }
	// Newest first, as the store gives them.
	changes := []store.Change{
		{MachineID: "b", From: "validation", To: "ready", At: at(1.5)},
		{MachineID: "b", From: "hostinit", To: "validation", At: at(2.5)},
		{MachineID: "a", From: "hostinit", To: "ready", At: at(3.5)},
		{MachineID: "b", From: "created", To: "hostinit", At: at(4.5)},
		{MachineID: "b", From: "", To: "created", At: at(5.5)},
	}
	counts := map[string]int{"ready": 2, "hostinit": 0, "created": 0, "validation": 0}
	h := historyOf(counts, changes, false, 6*time.Minute, time.Minute, now)
	if len(h.Points) != 7 || !h.Points[6].Equal(now) || !h.Points[0].Equal(at(6)) {
		t.Fatalf("points %v", h.Points)
	}
	want := map[string][]int{
		//           6  5  4  3  2  1  0 minutes ago
		"ready":      {0, 0, 0, 1, 1, 2, 2},
		"hostinit":   {1, 1, 2, 1, 0, 0, 0},
		"created":    {0, 1, 0, 0, 0, 0, 0},
		"validation": {0, 0, 0, 0, 1, 0, 0},
	}
	for state, series := range want {
		if !slices.Equal(h.Counts[state], series) {
			t.Errorf("%s: %v, want %v", state, h.Counts[state], series)
		}
	}
	if !slices.Equal(h.ToReady, []time.Duration{4 * time.Minute}) { // a was on its way before the window
		t.Errorf("times to ready %v", h.ToReady)
	}
	if counts["ready"] != 2 {
		t.Error("the counts given were changed")
	}

	// More changes than were read: the window starts at the oldest read.
	h = historyOf(counts, changes[:2], true, 6*time.Minute, time.Minute, now)
	if !h.Partial || len(h.Points) != 3 {
		t.Errorf("partial: %v points from %v", len(h.Points), h.Points[0])
	}
}

// The store gives the window's changes newest first and stops at the
// first one older than it.
func TestHistoryFromTheStore(t *testing.T) {
	db, _ := testkit.OpenStore(t)
	ctx := context.Background()
	for i := range 3 {
		err := db.Update(ctx, func(tx *store.Tx) error {
			_, err := tx.CreateMachine(store.Machine{ID: fmt.Sprintf("m%d", i), MACs: []string{fmt.Sprintf("02:00:00:00:00:0%d", i)},
				Source: "config", State: "created", StateJSON: `{"state":"created"}`}, "inventory")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	h, err := Fleet{DB: db}.History(ctx, time.Minute, time.Second, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if last := h.Counts["created"]; last[len(last)-1] != 3 || last[0] != 0 {
		t.Errorf("created over the last minute: %v", last)
	}
	if _, err := (Fleet{DB: db}).History(ctx, time.Second, time.Minute, time.Now()); err == nil {
		t.Error("a step longer than the window was taken")
	}
}
