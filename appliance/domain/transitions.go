package domain

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slipway/slipway/store"
)

// Apply moves machine id as ev says, storing the transition with its cause
// and its bus message in one transaction. It returns the new state;
// ErrNoChange or an *IllegalTransitionError when ev does not move it, and
// store.ErrNotFound for an unknown machine.
func (inv *Inventory) Apply(ctx context.Context, id string, ev Event) (State, error) {
	var c commitNotes
	var next State
	err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		c = commitNotes{}
		var err error
		next, err = inv.applyInTx(tx, id, ev, &c)
		return err
	})
	if err != nil {
		return next, err
	}
	inv.committed(c)
	return next, nil
}

// Notify tells the lifecycle what a door saw a machine do (boot script,
// cloud-init). A door's answer never fails because of the lifecycle: what
// does not apply is skipped without touching the database, what does is
// committed before the answer goes, and failures are logged.
func (inv *Inventory) Notify(ctx context.Context, mac MAC, ev Event) {
	id, ok := inv.applies(mac, ev)
	if !ok {
		return
	}
	_, err := inv.Apply(ctx, id, ev)
	inv.logNotifyError(id, mac, ev, err)
}

// applies says, from memory alone, whether ev may move mac's machine, and
// which machine that is. A machine not in memory yet may.
func (inv *Inventory) applies(mac MAC, ev Event) (string, bool) {
	id, ok := inv.machineID(mac)
	if !ok {
		return "", false
	}
	if cur, ok := inv.cached(id); ok {
		if _, err := Next(Machine{ID: id, State: cur.State, Since: cur.since}, ev, time.Now()); err != nil {
			return "", false
		}
	}
	return id, true
}

// notifyInTx is Notify inside a transaction another write opened (a lease),
// so that both share one commit. The caller passes c to committed after.
func (inv *Inventory) notifyInTx(tx *store.Tx, id string, ev Event, c *commitNotes) error {
	_, err := inv.applyInTx(tx, id, ev, c)
	var illegal *IllegalTransitionError
	if err == nil || errors.Is(err, ErrNoChange) || errors.As(err, &illegal) {
		return nil
	}
	return err
}

func (inv *Inventory) logNotifyError(id string, mac MAC, ev Event, err error) {
	var illegal *IllegalTransitionError
	switch {
	case err == nil, errors.Is(err, ErrNoChange), errors.As(err, &illegal):
	default:
		inv.log.Warn("lifecycle: cannot record what a machine did", "machine_id", id, "mac", mac, "event", ev.Kind, "error", err)
	}
}

// applyInTx decides from the state as stored, not as cached.
func (inv *Inventory) applyInTx(tx *store.Tx, id string, ev Event, c *commitNotes) (State, error) {
	m, err := tx.MachineState(id)
	if err != nil {
		return State{}, err
	}
	return inv.applyFromInTx(tx, m, ev, c)
}

// applyFromInTx is applyInTx from m, the machine's state as read in tx.
func (inv *Inventory) applyFromInTx(tx *store.Tx, m store.MachineState, ev Event, c *commitNotes) (State, error) {
	id := m.ID
	cur, curJSON, err := inv.storedState(m)
	if err != nil {
		return State{}, err
	}
	if ev.Kind == EventTimeout && !inv.overdue(cur, m.Since, inv.cfg.Now()) {
		return cur, ErrNoChange // it moved on since the sweep looked
	}
	next, nextJSON, err := decide(Machine{ID: id, State: cur, Since: m.Since}, curJSON, ev, tx.Now())
	if err != nil {
		return cur, err
	}
	t, err := tx.Transition(store.Transition{MachineID: id, From: cur.State, To: next.State, StateJSON: nextJSON, Cause: ev.Cause}, m.StateJSON)
	if err != nil {
		return cur, err
	}
	c.moves = append(c.moves, move{id: id, from: cur, to: next, cause: ev.Cause})
	return next, inv.recordState(tx, c, id, next, nextJSON, t.Seq)
}

// storedState decodes m's stored state, and says what its encoding is if
// this process wrote it ("" if not known). A state this process stored is
// not decoded again: every heartbeat of a booting site moves its machine,
// so the one writer would otherwise decode, for each, the state it had
// encoded a moment before.
func (inv *Inventory) storedState(m store.MachineState) (State, string, error) {
	if s, ok := inv.cached(m.ID); ok && s.stored != "" && s.stored == m.StateJSON {
		return s.State, s.stored, nil
	}
	st, err := ParseState(m.StateJSON)
	return st, "", err
}

// overdue says whether a machine in s since then has outstayed its timeout.
func (inv *Inventory) overdue(s State, since, now time.Time) bool {
	limit := inv.cfg.Timeouts[s.State]
	return limit > 0 && now.Sub(since) >= limit
}

// SweepTimeouts fails every machine that has stayed in its state past the
// configured timeout, and returns how many it failed. It reads only memory
// until it finds one.
func (inv *Inventory) SweepTimeouts(ctx context.Context, now time.Time) int {
	type overdue struct {
		id, label, state string
		limit            time.Duration
	}
	var due []overdue
	inv.mu.Lock()
	for id, s := range inv.states {
		if inv.overdue(s.State, s.since, now) {
			due = append(due, overdue{id, s.Label(), s.State.State, inv.cfg.Timeouts[s.State.State]})
		}
	}
	inv.mu.Unlock()
	failed := 0
	for _, d := range due {
		cause := fmt.Sprintf("no progress in %s for %s (lifecycle.timeouts.%s)", d.label, d.limit, d.state)
		if _, err := inv.Apply(ctx, d.id, Event{Kind: EventTimeout, Cause: cause}); err == nil {
			failed++
		} else if !errors.Is(err, ErrNoChange) {
			inv.log.Warn("lifecycle: cannot time a machine out", "machine_id", d.id, "error", err)
		}
	}
	return failed
}

// RunTimeouts sweeps every interval until ctx ends.
func (inv *Inventory) RunTimeouts(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() { inv.SweepTimeouts(ctx, inv.cfg.Now()) })
}

// every runs fn each interval until ctx ends: the inventory's chores.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
