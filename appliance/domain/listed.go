package domain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/slipway/slipway/store"
)

// SyncListed makes the store agree with the machines the configuration
// lists: new ones are created in state "created", known ones get their
// inventory fields and MACs updated and keep their state. Machines the
// configuration no longer lists are kept: their history matters, and an
// operator removes them explicitly.
//
// A MAC the configuration gives to a machine may already belong to another:
// a machine discovered when it first booted and listed in the file since
// (the discovered record gives way to the configured one), or a NIC moved
// from one configured machine to another (the MAC moves with it).
func SyncListed(ctx context.Context, db *store.Store, machines []Listed, log *slog.Logger) (created, updated int, err error) {
	var adopted []string
	err = db.Update(ctx, func(tx *store.Tx) error {
		created, updated, adopted = 0, 0, nil
		for _, m := range machines {
			rec := m.record()
			moved, err := claimMACs(tx, rec)
			if err != nil {
				return err
			}
			adopted = append(adopted, moved...)
			_, err = tx.Machine(m.ID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				if _, err := tx.CreateMachine(rec, "listed in the configuration"); err != nil {
					return err
				}
				created++
			case err != nil:
				return err
			default:
				if err := tx.UpdateInventory(rec); err != nil {
					return err
				}
				updated++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("load the machine inventory into the store: %w", err)
	}
	for _, msg := range adopted {
		log.Info(msg)
	}
	return created, updated, nil
}

// claimMACs frees rec's MACs held by other machines, and says what it did.
func claimMACs(tx *store.Tx, rec store.Machine) ([]string, error) {
	var done []string
	for _, mac := range rec.MACs {
		owner, source, err := tx.MACOwner(mac)
		if errors.Is(err, store.ErrNotFound) || owner == rec.ID {
			continue
		}
		if err != nil {
			return nil, err
		}
		if source == "discovered" {
			if err := tx.DeleteMachine(owner); err != nil {
				return nil, err
			}
			done = append(done, fmt.Sprintf("discovered machine %s is now %s from the configuration (MAC %s)", owner, rec.ID, mac))
			continue
		}
		if err := tx.RemoveMAC(mac); err != nil {
			return nil, err
		}
		done = append(done, fmt.Sprintf("MAC %s moved from machine %s to %s", mac, owner, rec.ID))
	}
	return done, nil
}

// Listed is a machine as an operator lists it (in the configuration):
// what it is, not what it is doing.
type Listed struct {
	ID   string
	MACs []MAC // boot NIC first
	MachineInfo
}

func (m Listed) record() store.Machine {
	rec := store.Machine{ID: m.ID, Hostname: m.Hostname, Profile: m.Profile, Source: "config", State: StateCreated, StateJSON: InitialState,
		RackID: m.RackID, RackName: m.RackName, Tray: m.Tray, TrayType: m.TrayType, BMCEndpoint: m.BMCEndpoint}
	for _, mac := range m.MACs {
		rec.MACs = append(rec.MACs, string(mac))
	}
	return rec
}
