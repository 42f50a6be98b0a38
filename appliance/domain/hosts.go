package domain

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/store"
)

// Owner is the machine that owns mac, if any.
func (inv *Inventory) Owner(mac MAC) (string, bool) { return inv.machineID(mac) }

// Adopt makes sure a machine owns the host NICs a BMC reported, so that
// the host can be provisioned before it ever netbooted: the machine that
// owns one of the MACs already, or a new discovered machine owning all of
// them (named after the first).
func (inv *Inventory) Adopt(ctx context.Context, macs []MAC, cause string) (string, error) {
	if len(macs) == 0 {
		return "", errors.New("adopt a host: no MACs")
	}
	for _, mac := range macs {
		if id, ok := inv.machineID(mac); ok {
			return id, nil
		}
	}
	id := DiscoveredID(macs[0])
	var c commitNotes
	err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		c = commitNotes{}
		all := make([]string, len(macs))
		for i, m := range macs {
			all[i] = string(m)
		}
		seq, err := tx.CreateMachine(store.Machine{ID: id, MACs: all, Source: SourceDiscovered,
			State: StateCreated, StateJSON: InitialState}, cause)
		if err != nil {
			return err
		}
		for _, m := range macs {
			c.macs = append(c.macs, macOwner{m, id})
		}
		c.discovered = append(c.discovered, id)
		return inv.recordState(tx, &c, id, Created(), InitialState, seq)
	})
	if errors.Is(err, store.ErrConflict) {
		// A DHCP request discovered it meanwhile: ask again.
		for _, mac := range macs {
			if owner, ok := inv.machineID(mac); ok {
				return owner, nil
			}
		}
	}
	if err != nil {
		return "", fmt.Errorf("adopt host %s: %w", macs[0], err)
	}
	inv.committed(c)
	inv.log.Info("machine discovered", "machine_id", id, "macs", macs, "cause", cause)
	return id, nil
}

// Check says, from memory, whether ev would move machine id now: nil, or
// the *IllegalTransitionError or ErrNoChange that Apply would return. It
// lets an operator action be refused before it touches hardware.
func (inv *Inventory) Check(id string, ev Event) error {
	cur, ok := inv.cached(id)
	if !ok {
		return fmt.Errorf("machine %s: %w", id, store.ErrNotFound)
	}
	_, err := Next(Machine{ID: id, State: cur.State, Since: cur.since}, ev, time.Now())
	return err
}

// ForgetNIC deletes the machine a DHCP lease made of a NIC that turned out
// to be something else (a BMC's own port): only a discovered machine that
// owns that one MAC and never fetched a boot file, so nothing an operator
// or a booting host made is ever lost. It reports whether it deleted one.
func (inv *Inventory) ForgetNIC(ctx context.Context, mac MAC, cause string) (bool, error) {
	id, ok := inv.machineID(mac)
	if !ok {
		return false, nil
	}
	cur, ok := inv.cached(id)
	if !ok || (cur.Label() != StateCreated && cur.Label() != "hostinit/init") {
		return false, nil
	}
	var c commitNotes
	forgotten := false
	err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		c, forgotten = commitNotes{}, false
		m, err := tx.Machine(id)
		if err != nil {
			return err
		}
		if m.Source != SourceDiscovered || len(m.MACs) != 1 || (m.State != StateCreated && m.StateJSON != HostInit(HostInitInit).JSON()) {
			return nil
		}
		forgotten = true
		return inv.deleteInTx(tx, id, &c)
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("forget machine %s: %w", id, err)
	}
	inv.committed(c)
	if forgotten {
		inv.log.Info("machine forgotten", "machine_id", id, "mac", mac, "cause", cause)
	}
	return forgotten, nil
}

// GiveMACs gives a machine listed without MACs (a site design's node,
// known by its BMC alone) the host NICs its BMC reports, so that it is
// recognised when it netboots. A MAC a discovered machine holds moves to
// it (the discovered machine gives way, as when a listing claims it); one
// another listed machine holds stays there. A machine that has MACs keeps
// them. It says how many MACs the machine got.
func (inv *Inventory) GiveMACs(ctx context.Context, id string, macs []MAC, cause string) (int, error) {
	for _, mac := range macs {
		if owner, ok := inv.machineID(mac); ok && owner == id {
			return 0, nil // it has them already
		}
	}
	var c commitNotes
	var given []MAC
	err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		c, given = commitNotes{}, nil
		m, err := tx.Machine(id)
		if err != nil || len(m.MACs) > 0 {
			return err
		}
		for _, mac := range macs {
			owner, source, err := tx.MACOwner(string(mac))
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			case source == SourceDiscovered:
				if err := inv.deleteInTx(tx, owner, &c); err != nil {
					return err
				}
			default:
				continue // another listed machine's NIC
			}
			given = append(given, mac)
		}
		all := make([]string, len(given))
		for i, mac := range given {
			all[i] = string(mac)
			c.macs = append(c.macs, macOwner{mac, id})
		}
		inv.ownersChange()
		c.recordsStale = true // a MAC's heartbeats may now be another machine's
		return tx.SetMACs(id, all)
	})
	if err != nil {
		return 0, fmt.Errorf("give machine %s its MACs: %w", id, err)
	}
	inv.committed(c)
	if len(given) > 0 {
		inv.log.Info("machine given its host NICs", "machine_id", id, "macs", given, "cause", cause)
	}
	return len(given), nil
}

// deleteInTx deletes a machine and clears what the bus retains of it.
func (inv *Inventory) deleteInTx(tx *store.Tx, id string, c *commitNotes) error {
	inv.ownersChange()
	if err := tx.DeleteMachine(id); err != nil {
		return err
	}
	c.gone = append(c.gone, id)
	if inv.cfg.Announce == nil {
		return nil
	}
	for _, e := range inv.cfg.Announce.GoneMessages(id) {
		outbox.Enqueue(tx, e)
	}
	return nil
}

// State is a machine's current state, as of the last commit.
func (inv *Inventory) State(id string) (State, bool) {
	cur, ok := inv.cached(id)
	return cur.State, ok
}

// SetRelease puts a machine on an OS release ("" takes it off): it boots
// that release's profile from its next netboot. The inventory's own
// profile stays beneath it.
func (inv *Inventory) SetRelease(ctx context.Context, id, releaseID string) error {
	return inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.SetMachineRelease(id, releaseID) })
}
