package appliance

import (
	"context"
	"errors"
	"fmt"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
)

// syncInventory makes the store agree with the machines the configuration
// lists: new ones are created in state "created", known ones get their
// inventory fields and MACs updated and keep their state. Machines the
// configuration no longer lists are kept: their history matters, and an
// operator removes them explicitly.
func syncInventory(ctx context.Context, db *store.Store, machines []config.Machine) (created, updated int, err error) {
	err = db.Update(ctx, func(tx *store.Tx) error {
		created, updated = 0, 0
		for _, m := range machines {
			rec := inventoryRecord(m)
			_, err := tx.Machine(m.ID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				if err := tx.CreateMachine(rec, "listed in the configuration"); err != nil {
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
	return created, updated, nil
}

func inventoryRecord(m config.Machine) store.Machine {
	rec := store.Machine{ID: m.ID, Hostname: m.Hostname, Profile: m.Profile, Source: "config",
		State: "created", StateJSON: domain.InitialState}
	for _, mac := range m.MachineMACs() {
		rec.MACs = append(rec.MACs, mac.String())
	}
	if m.Rack != nil {
		rec.RackID, rec.RackName, rec.Tray, rec.TrayType = m.Rack.ID, m.Rack.Name, m.Rack.Tray, m.Rack.TrayType
	}
	if m.BMC != nil {
		rec.BMCEndpoint = m.BMC.Endpoint
	}
	return rec
}
