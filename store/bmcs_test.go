package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBMCRegistrationKeepsWhatPollsLearned(t *testing.T) {
	s, ctx := openTest(t), context.Background()
	create(t, s, created("m1", "52:54:00:00:00:01"))
	put := func(b BMC) {
		t.Helper()
		if err := s.Update(ctx, func(tx *Tx) error { return tx.PutBMC(b) }); err != nil {
			t.Fatal(err)
		}
	}
	put(BMC{ID: "bmc-a", Endpoint: "https://10.0.0.2", Username: "root", Secret: []byte{1, 2}, Source: "discovered"})
	status := BMCStatus{Reachable: true, Inventory: `{"model":"3500"}`}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.SetBMCStatus("bmc-a", status, "m1", "mac") }); err != nil {
		t.Fatal(err)
	}
	// Registered again (new password, no link given): the poll's findings
	// and the MAC link stay.
	put(BMC{ID: "bmc-a", Endpoint: "https://10.0.0.2", Username: "root", Secret: []byte{3}, Source: "api"})
	b, err := s.BMC(ctx, "bmc-a")
	if err != nil {
		t.Fatal(err)
	}
	if !b.Reachable || b.Inventory != status.Inventory || b.MachineID != "m1" || b.LinkedBy != "mac" ||
		b.Source != "api" || string(b.Secret) != "\x03" || b.ChangedAt.IsZero() {
		t.Errorf("after re-registration: %+v", b)
	}
	// An explicit link replaces the MAC one.
	create(t, s, created("m2"))
	put(BMC{ID: "bmc-a", Endpoint: "https://10.0.0.2", Username: "root", Secret: []byte{3}, Source: "config", MachineID: "m2", LinkedBy: "config"})
	if b, _ = s.BMC(ctx, "bmc-a"); b.MachineID != "m2" || b.LinkedBy != "config" {
		t.Errorf("explicit link: %s by %s", b.MachineID, b.LinkedBy)
	}
	// Two BMCs cannot share an endpoint.
	err = s.Update(ctx, func(tx *Tx) error {
		return tx.PutBMC(BMC{ID: "bmc-b", Endpoint: "https://10.0.0.2", Username: "x", Secret: []byte{1}, Source: "api"})
	})
	if err == nil {
		t.Error("a second BMC took the same endpoint")
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.DeleteBMC("bmc-a") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BMC(ctx, "bmc-a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted BMC: %v", err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.SetBMCStatus("bmc-a", status, "", "") }); !errors.Is(err, ErrNotFound) {
		t.Errorf("status of a deleted BMC: %v", err)
	}
}

// A listing says where each machine was last seen: lease, heartbeat, power.
func TestMachinesListSeen(t *testing.T) {
	s, ctx := openTest(t), context.Background()
	create(t, s, created("m1", "52:54:00:00:00:01"))
	create(t, s, created("m2", "52:54:00:00:00:02"))
	err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.PutLease(Lease{IP: "10.0.0.5", MAC: "52:54:00:00:00:01", State: "bound", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			return err
		}
		if _, err := tx.AddStageEvent(StageEvent{MAC: "52:54:00:00:00:01", MachineID: "m1", Stage: "disk", Phase: "done"}); err != nil {
			return err
		}
		if err := tx.PutBMC(BMC{ID: "bmc-a", Endpoint: "https://10.0.1.1", Username: "u", Secret: []byte{1}, Source: "api"}); err != nil {
			return err
		}
		return tx.SetBMCStatus("bmc-a", BMCStatus{Reachable: true, Inventory: `{"power_state":"On"}`}, "m1", "mac")
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.Machines(ctx, MachineFilter{})
	if err != nil || len(list) != 2 {
		t.Fatalf("%v %v", list, err)
	}
	if got := list[0].Seen; got.IP != "10.0.0.5" || got.LastHeartbeat.IsZero() || got.Power != "On" {
		t.Errorf("m1 seen %+v", got)
	}
	if got := list[1].Seen; got != (Seen{}) {
		t.Errorf("m2 seen %+v, want nothing", got)
	}
}
