package domain

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/slipway/slipway/store"
)

// StateHistory is how many machines were in each top-level state at each
// point of a window that ends now: what the console charts.
type StateHistory struct {
	// Points are the window's instants, oldest first, Step apart; Counts
	// holds, for each state, how many machines were in it at each point.
	Points []time.Time
	Step   time.Duration
	Counts map[string][]int
	// Partial says the window held more changes than were read
	// (maxHistoryChanges): its older points are left out, so Points
	// starts later than asked.
	Partial bool
	// ToReady are how long the machines that started and became ready
	// within the window took, shortest first.
	ToReady []time.Duration
}

// maxHistoryChanges bounds what one history reads: a site of 10,000
// machines booting at once makes 140,000 changes in a few minutes.
const maxHistoryChanges = 1_000_000

// History works out machines per state at points step apart over the
// window before now, from the counts as they stand and the changes that
// led to them, undone one by one back in time. A machine deleted within
// the window takes its changes with it, and so is missing from the points
// before its deletion.
func (f Fleet) History(ctx context.Context, window, step time.Duration, now time.Time) (StateHistory, error) {
	if step <= 0 || window < step {
		return StateHistory{}, fmt.Errorf("history: a window of %s in steps of %s", window, step)
	}
	counts, changes, more, err := f.DB.StatesAndChangesSince(ctx, now.Add(-window), maxHistoryChanges)
	if err != nil {
		return StateHistory{}, err
	}
	return historyOf(counts, changes, more, window, step, now), nil
}

// historyOf is History's arithmetic: counts as they stand at now, and the
// changes (newest first) that led to them.
func historyOf(counts map[string]int, changes []store.Change, partial bool, window, step time.Duration, now time.Time) StateHistory {
	h := StateHistory{Step: step, Counts: map[string][]int{}, Partial: partial}
	oldest := now.Add(-window)
	if partial && len(changes) > 0 {
		oldest = changes[len(changes)-1].At // nothing older is known
	}
	counts = maps.Clone(counts)
	// Points from now back; changes newest first: undo each one that
	// happened after the point being recorded.
	next := 0
	for k := 0; k <= int(window/step); k++ {
		at := now.Add(-time.Duration(k) * step)
		if at.Before(oldest) {
			break
		}
		for ; next < len(changes) && changes[next].At.After(at); next++ {
			c := changes[next]
			counts[c.To]--
			if c.From != "" {
				counts[c.From]++
			}
		}
		h.Points = append(h.Points, at)
		for state, c := range counts {
			if _, seen := h.Counts[state]; !seen {
				h.Counts[state] = make([]int, k) // a state first met now had nobody nearer the present
			}
			h.Counts[state] = append(h.Counts[state], max(c, 0))
		}
	}
	slices.Reverse(h.Points)
	for _, series := range h.Counts {
		slices.Reverse(series)
	}
	h.ToReady = timesToReady(changes)
	return h
}

// timesToReady are, for each machine that started among changes (newest
// first: it was made, or left created, which its first DHCP lease does)
// and became ready after, the time between, shortest first. A machine
// already on its way when the window began is not counted.
func timesToReady(changes []store.Change) []time.Duration {
	first := map[string]time.Time{}
	ready := map[string]time.Time{}
	for _, c := range slices.Backward(changes) {
		_, started := first[c.MachineID]
		if !started && (c.From == "" || c.From == StateCreated) {
			first[c.MachineID], started = c.At, true
		}
		if _, ok := ready[c.MachineID]; !ok && started && c.To == StateReady {
			ready[c.MachineID] = c.At
		}
	}
	out := make([]time.Duration, 0, len(ready))
	for id, at := range ready {
		out = append(out, at.Sub(first[id]))
	}
	slices.Sort(out)
	return out
}
