package domain

import (
	"cmp"
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
	var r syncResult
	err = db.Update(ctx, func(tx *store.Tx) error {
		r = syncResult{}
		return syncInTx(tx, machines, "listed in the configuration", &r)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("load the machine inventory into the store: %w", err)
	}
	for _, msg := range r.adopted {
		log.Info(msg)
	}
	return len(r.created), r.updated, nil
}

// SyncListed is the package's SyncListed for a running inventory (a site
// design applied while Slipway serves): its caches learn the new machines
// and MACs, and each new machine's state is announced.
func (inv *Inventory) SyncListed(ctx context.Context, machines []Listed, cause string) (created, updated int, err error) {
	var r syncResult
	var c commitNotes
	err = inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		r, c = syncResult{}, commitNotes{}
		inv.ownersChange() // hostnames, MACs and machines may change
		if err := syncInTx(tx, machines, cause, &r); err != nil {
			return err
		}
		for _, m := range machines {
			for _, mac := range m.MACs {
				c.macs = append(c.macs, macOwner{mac, m.ID})
			}
		}
		c.gone = r.gone
		c.recordsStale = r.updated > 0 // a hostname may have changed
		for _, id := range r.created {
			if err := inv.recordState(tx, &c, id, Created(), InitialState, r.seqs[id]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("update the machine inventory: %w", err)
	}
	// A MAC that moved away from a machine is forgotten before the listed
	// owners are stored.
	for _, mac := range r.moved {
		inv.known.Delete(mac)
	}
	inv.committed(c)
	for _, msg := range r.adopted {
		inv.log.Info(msg)
	}
	return len(r.created), r.updated, nil
}

// syncResult is what syncInTx did.
type syncResult struct {
	created []string
	seqs    map[string]int64 // created machine → its first transition
	updated int
	adopted []string // what happened to MACs, for the log
	gone    []string // discovered machines that gave way
	moved   []MAC
}

func syncInTx(tx *store.Tx, machines []Listed, cause string, r *syncResult) error {
	r.seqs = map[string]int64{}
	for _, m := range machines {
		rec := m.record()
		if err := claimMACs(tx, rec, r); err != nil {
			return err
		}
		_, err := tx.Machine(m.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			seq, err := tx.CreateMachine(rec, cause)
			if err != nil {
				return err
			}
			r.created = append(r.created, m.ID)
			r.seqs[m.ID] = seq
		case err != nil:
			return err
		default:
			if err := tx.UpdateInventory(rec); err != nil {
				return err
			}
			r.updated++
		}
	}
	return nil
}

// claimMACs frees rec's MACs held by other machines, and says what it did.
func claimMACs(tx *store.Tx, rec store.Machine, r *syncResult) error {
	for _, mac := range rec.MACs {
		owner, source, err := tx.MACOwner(mac)
		if errors.Is(err, store.ErrNotFound) || owner == rec.ID {
			continue
		}
		if err != nil {
			return err
		}
		if source == SourceDiscovered {
			if err := tx.DeleteMachine(owner); err != nil {
				return err
			}
			r.gone = append(r.gone, owner)
			r.adopted = append(r.adopted, fmt.Sprintf("discovered machine %s is now %s from the %s (MAC %s)", owner, rec.ID, rec.Source, mac))
			continue
		}
		if err := tx.RemoveMAC(mac); err != nil {
			return err
		}
		r.moved = append(r.moved, MAC(mac))
		r.adopted = append(r.adopted, fmt.Sprintf("MAC %s moved from machine %s to %s", mac, owner, rec.ID))
	}
	return nil
}

// Who listed a machine or registered a BMC: a record's Source.
const (
	SourceConfig     = "config"     // the configuration file
	SourceDesign     = "design"     // a site design (Drydock's)
	SourceDiscovered = "discovered" // its own netboot, or a BMC found on the LAN
	SourceAPI        = "api"        // an operator, through the API
)

// Listed is a machine as an operator lists it (in the configuration):
// what it is, not what it is doing.
type Listed struct {
	ID   string
	MACs []MAC // boot NIC first
	MachineInfo
	// Source says who lists it: SourceConfig (the default) or SourceDesign.
	Source string
}

func (m Listed) record() store.Machine {
	rec := store.Machine{ID: m.ID, Hostname: m.Hostname, Profile: m.Profile, Source: cmp.Or(m.Source, SourceConfig), State: StateCreated, StateJSON: InitialState,
		RackID: m.RackID, RackName: m.RackName, Tray: m.Tray, TrayKnown: m.TrayKnown, TrayType: m.TrayType, BMCEndpoint: m.BMCEndpoint, DPUOf: m.DPUOf}
	for _, mac := range m.MACs {
		rec.MACs = append(rec.MACs, string(mac))
	}
	return rec
}
