package domain

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/store"
)

func testInventory(t *testing.T, timeouts map[string]time.Duration, now func() time.Time) (*Inventory, *store.Store) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "slipway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	commit := db.NewCommitter(16)
	t.Cleanup(func() { commit.Close(); db.Close() })
	inv, err := NewInventory(ctx, InventoryConfig{DB: db, Commit: commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Timeouts: timeouts, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return inv, db
}

// A machine stuck in hostinit past its timeout fails, with a cause that
// names the state and the setting; before the timeout nothing happens, and
// states without a timeout never time out.
func TestSweepTimeoutsFailsStuckMachines(t *testing.T) {
	ctx := context.Background()
	var late time.Duration // how far the test clock runs ahead
	clock := func() time.Time { return time.Now().Add(late) }
	inv, db := testInventory(t, map[string]time.Duration{StateHostInit: 30 * time.Minute}, clock)
	for _, mac := range []MAC{"52:54:00:00:00:01", "52:54:00:00:00:02"} {
		if _, err := inv.Seen(ctx, mac, DoorDHCP); err != nil {
			t.Fatal(err)
		}
	}
	inv.Notify(ctx, "52:54:00:00:00:01", Event{Kind: EventDHCPLease, Cause: "DHCP lease 10.88.0.100"})
	late = 29 * time.Minute
	if n := inv.SweepTimeouts(ctx, clock()); n != 0 {
		t.Fatalf("%d machines failed before their timeout", n)
	}
	late = 31 * time.Minute
	if n := inv.SweepTimeouts(ctx, clock()); n != 1 {
		t.Fatalf("%d machines failed, want the one in hostinit", n)
	}
	m, _ := db.MachineByMAC(ctx, "52:54:00:00:00:01")
	st, _ := ParseState(m.StateJSON)
	if st.Label() != "failed/discovery" || st.Details.Source.Area != "hostinit" ||
		!strings.Contains(st.Details.Cause.Err, "no progress in hostinit/init for 30m0s (lifecycle.timeouts.hostinit)") {
		t.Fatalf("state %s", m.StateJSON)
	}
	if other, _ := db.MachineByMAC(ctx, "52:54:00:00:00:02"); other.State != StateCreated {
		t.Fatalf("a created machine timed out: %s", other.StateJSON)
	}
	// Illegal events are refused with what is allowed; the store is untouched.
	_, err := inv.Apply(ctx, m.ID, Event{Kind: EventAssign})
	var illegal *IllegalTransitionError
	if !errors.As(err, &illegal) {
		t.Fatalf("assigning a failed machine: %v", err)
	}
}

// A state change is logged by its caller once it is committed, not by the
// one writer inside the transaction: one line for a move, none for a move
// whose transaction was rolled back.
func TestStateChangeIsLoggedOnceCommitted(t *testing.T) {
	ctx := context.Background()
	var logged bytes.Buffer
	inv, _ := testInventory(t, nil, nil)
	inv.log = slog.New(slog.NewTextHandler(&logged, nil))
	if _, err := inv.Seen(ctx, "52:54:00:00:00:01", DoorDHCP); err != nil {
		t.Fatal(err)
	}
	id, ok := inv.machineID("52:54:00:00:00:01")
	if !ok {
		t.Fatal("the machine seen is not known")
	}
	rolledBack := errors.New("rolled back")
	err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		var c commitNotes
		if _, err := inv.applyInTx(tx, id, Event{Kind: EventDHCPLease, Cause: "lease"}, &c); err != nil {
			return err
		}
		return rolledBack
	})
	if !errors.Is(err, rolledBack) {
		t.Fatal(err)
	}
	if strings.Contains(logged.String(), "machine state changed") {
		t.Fatalf("a move rolled back was logged:\n%s", &logged)
	}
	if _, err := inv.Apply(ctx, id, Event{Kind: EventDHCPLease, Cause: "lease"}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logged.String(), "machine state changed"); n != 1 || !strings.Contains(logged.String(), "cause=lease") {
		t.Fatalf("%d lines for one committed move:\n%s", n, &logged)
	}
}

// The one writer decodes a machine's stored state only when this process
// did not store it: a state it wrote is taken from memory, and a state
// changed behind its back (another writer, an older version) is read from
// the store, not from what memory holds.
func TestStoredStateIsDecodedOnlyWhenNotOursAsStored(t *testing.T) {
	ctx := context.Background()
	inv, db := testInventory(t, nil, time.Now)
	mac := MAC("52:54:00:00:00:01")
	if _, err := inv.Seen(ctx, mac, DoorDHCP); err != nil {
		t.Fatal(err)
	}
	id, _ := inv.machineID(mac)
	if _, err := inv.Apply(ctx, id, Event{Kind: EventDHCPLease}); err != nil {
		t.Fatal(err)
	}
	read := func() store.MachineState {
		t.Helper()
		var ms store.MachineState
		if err := db.Update(ctx, func(tx *store.Tx) (err error) { ms, err = tx.MachineState(id); return err }); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	ours, _ := inv.cached(id)
	st, encoded, err := inv.storedState(read())
	if err != nil || encoded != ours.stored || st.MachineState != ours.MachineState {
		t.Fatalf("our own stored state: %+v %q %v; want memory's %q", st, encoded, err, ours.stored)
	}

	// Another writer moves it: its state is decoded from the store, and
	// the next move starts from it.
	theirs := HostInit(HostInitDiscovered)
	if err := db.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.Transition(store.Transition{MachineID: id, From: StateHostInit, To: StateHostInit, StateJSON: theirs.JSON()}, ours.stored)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	st, encoded, err = inv.storedState(read())
	if err != nil || encoded != "" || st.Label() != "hostinit/discovered" {
		t.Fatalf("a state another writer stored: %s %q %v", st.Label(), encoded, err)
	}
	if _, err := inv.Apply(ctx, id, Event{Kind: EventBootConfig}); !errors.As(err, new(*IllegalTransitionError)) {
		t.Fatalf("a boot script for a discovered machine: %v; want it refused from the stored state", err)
	}
	next, err := inv.Apply(ctx, id, HeartbeatEvent(StageComplete, PhaseDone, ""))
	if err != nil || next.State != StateReady {
		t.Fatalf("completed from the stored state: %s %v", next.Label(), err)
	}
	if ms := read(); ms.StateJSON != Ready().JSON() {
		t.Fatalf("stored %s", ms.StateJSON)
	}
}
