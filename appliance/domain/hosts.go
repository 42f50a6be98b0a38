package domain

import (
	"context"
	"errors"
	"fmt"
	"time"

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
		st := Created()
		all := make([]string, len(macs))
		for i, m := range macs {
			all[i] = string(m)
		}
		seq, err := tx.CreateMachine(store.Machine{ID: id, MACs: all, Source: "discovered",
			State: st.State, StateJSON: st.JSON()}, cause)
		if err != nil {
			return err
		}
		for _, m := range macs {
			c.macs = append(c.macs, macOwner{m, id})
		}
		return inv.recordState(tx, &c, id, st, seq)
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
