package domain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/store"
)

// Heartbeat is one onboarding progress report a node posts.
type Heartbeat struct {
	MAC      MAC
	Stage    Stage
	Phase    Phase
	Detail   string
	ClientIP string
}

// StageReport is a recorded heartbeat, as the bus announces it.
type StageReport struct {
	Heartbeat
	MachineID string
	At        time.Time
	State     State // the machine's lifecycle state after the heartbeat
}

// Client is one node's onboarding record: the gb10 API's per-MAC entry.
type Client struct {
	MAC           MAC
	MachineID     string
	IP            string
	Hostname      string
	CurrentStage  Stage
	LastHeartbeat time.Time
	Stages        []StageEntry
}

// StageEntry is one heartbeat in a Client's record.
type StageEntry struct {
	Stage     Stage
	Phase     Phase
	Timestamp time.Time
	Detail    string
}

// ErrNoHeartbeats means a MAC has never posted a heartbeat.
var ErrNoHeartbeats = errors.New("no heartbeats from this MAC")

// RecordHeartbeat stores a heartbeat, moves the machine's lifecycle as it
// says and announces both, in one transaction: a heartbeat acknowledged is
// a heartbeat kept, however many arrive at once. A MAC no machine owns
// becomes a discovered machine if the discovery policy lets heartbeats
// make one (else a *DiscoveryRefusedError). It returns the MAC's updated
// record.
func (inv *Inventory) RecordHeartbeat(ctx context.Context, hb Heartbeat) (Client, error) {
	alone := inv.beating.enter(hb.MAC)
	defer inv.beating.leave(hb.MAC)
	var c commitNotes
	var added addedHeartbeat
	err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		c, added = commitNotes{}, addedHeartbeat{}
		return inv.heartbeatInTx(tx, hb, alone, &c, &added)
	})
	if err != nil {
		return Client{}, fmt.Errorf("record heartbeat of %s: %w", hb.MAC, err)
	}
	inv.committed(c)
	if rec, ok := inv.records.extend(added.StageEvent, added.previous, inv.heartbeatsKept(), added.owners); ok {
		return rec, nil
	}
	return inv.Client(ctx, hb.MAC)
}

// addedHeartbeat is a heartbeat as stored, the id of the MAC's heartbeat
// before it (0 if none), and the owners version its transaction saw.
type addedHeartbeat struct {
	store.StageEvent
	previous int64
	owners   uint64
}

func (inv *Inventory) heartbeatsKept() int {
	return cmp.Or(inv.cfg.HeartbeatsKept, DefaultHeartbeatsKept)
}

// withinKept says whether a MAC whose newest stored heartbeat is previous
// (0: none) still holds no more than it keeps with one more, so that
// trimming would delete nothing: a statement the one writer need not run
// for each of a booting site's heartbeats. Unless the remembered record
// says so, the answer is no, and the trim runs.
func (inv *Inventory) withinKept(mac MAC, previous int64) bool {
	n, ok := 0, previous == 0
	if !ok {
		n, ok = inv.records.held(mac, previous)
	}
	return ok && n+1 <= inv.heartbeatsKept()
}

// heartbeatInTx records hb in tx. alone says no other heartbeat of the MAC
// is under way, so that what memory says of its newest is the store's.
func (inv *Inventory) heartbeatInTx(tx *store.Tx, hb Heartbeat, alone bool, c *commitNotes, added *addedHeartbeat) error {
	var target store.HeartbeatTarget
	remembered, owners := false, inv.owners.Load()
	if alone {
		target, remembered = inv.rememberedTarget(hb.MAC, owners)
	}
	if !remembered {
		var err error
		if target, err = inv.readTarget(tx, hb.MAC, c); err != nil {
			return err
		}
	}
	id := target.ID
	ev, err := tx.AddStageEvent(store.StageEvent{MAC: string(hb.MAC), MachineID: id, Stage: string(hb.Stage),
		Phase: string(hb.Phase), Detail: hb.Detail, ClientIP: hb.ClientIP, Hostname: target.Hostname})
	if err != nil {
		return err
	}
	*added = addedHeartbeat{ev, target.LastStageID, owners}
	if !inv.withinKept(hb.MAC, target.LastStageID) {
		if _, err := tx.TrimStageEvents(string(hb.MAC), inv.heartbeatsKept()); err != nil {
			return err
		}
	}
	event := HeartbeatEvent(hb.Stage, hb.Phase, hb.Detail)
	state, err := inv.applyFromInTx(tx, target.MachineState, event, c)
	if remembered && err != nil {
		// A move memory decided was refused by the store (the machine
		// moved meanwhile), or memory says it does not move: a decision
		// the store did not check. Decide again from the store.
		state, err = inv.applyInTx(tx, id, event, c)
	}
	var illegal *IllegalTransitionError
	switch {
	case errors.As(err, &illegal):
		// Recorded all the same: the node said it, the state just does not follow.
		inv.log.Debug("heartbeat does not move the machine", "machine_id", id, "reason", err)
	case err != nil && !errors.Is(err, ErrNoChange):
		return err
	}
	if inv.cfg.Announce == nil {
		return nil
	}
	outbox.Enqueue(tx, inv.cfg.Announce.StageMessage(StageReport{Heartbeat: hb, MachineID: id, At: ev.At, State: state}))
	return nil
}

// rememberedTarget is a heartbeat's target as this process last wrote it,
// if it remembers it whole: the MAC's newest heartbeat from its record,
// the owner from the known MACs, the owner's state as stored by this
// process. The heartbeats of a booting site all queue for the one writer,
// and reading their targets was a fifth of its work. Only a MAC's lone
// heartbeat asks (the one before it has been noted: its record extended,
// its state remembered). What memory cannot know is caught in the
// transaction: a move decided from a state another change has since
// replaced fails its conditional update, and a heartbeat memory says does
// not move its machine is decided again from the store; any change of
// owners, hostnames or heartbeats bumps the owners version in its own
// transaction, ahead of every heartbeat after it, so that records noted
// before it are not trusted (ownersChange).
func (inv *Inventory) rememberedTarget(mac MAC, owners uint64) (store.HeartbeatTarget, bool) {
	id, hostname, lastID, ok := inv.records.last(mac, owners)
	if !ok || id == "" {
		return store.HeartbeatTarget{}, false
	}
	if owner, known := inv.known.Load(mac); !known || owner != id {
		return store.HeartbeatTarget{}, false
	}
	st, ok := inv.cached(id)
	if !ok || st.stored == "" {
		return store.HeartbeatTarget{}, false
	}
	return store.HeartbeatTarget{MachineState: store.MachineState{ID: id, StateJSON: st.stored, Since: st.since},
		Hostname: hostname, LastStageID: lastID}, true
}

// readTarget reads a heartbeat's target in one query (the owner, its state
// and the MAC's newest heartbeat), making a machine of an unknown MAC if
// the discovery policy lets heartbeats.
func (inv *Inventory) readTarget(tx *store.Tx, mac MAC, c *commitNotes) (store.HeartbeatTarget, error) {
	target, err := tx.HeartbeatTarget(string(mac))
	if errors.Is(err, store.ErrNotFound) {
		if err = inv.mayDiscover(mac, DoorHeartbeat); err == nil {
			if _, err = inv.discover(tx, mac, "first heartbeat from "+string(mac), c); err == nil {
				target, err = tx.HeartbeatTarget(string(mac))
			}
		}
	}
	return target, err
}

// RunHeartbeatPruning forgets heartbeats older than retention every
// interval, until ctx ends; 0 retention keeps them.
func (inv *Inventory) RunHeartbeatPruning(ctx context.Context, retention, interval time.Duration) {
	if retention <= 0 {
		return
	}
	every(ctx, interval, func() {
		inv.ownersChange()
		n, err := inv.db.PruneStageEvents(ctx, inv.cfg.Now().Add(-retention))
		switch {
		case err != nil:
			inv.log.Warn("cannot prune old heartbeats", "error", err)
		case n > 0:
			inv.records.forgetAll()
			inv.log.Info("old heartbeats forgotten", "heartbeats", n, "older_than", retention)
		}
	})
}

// Client returns the onboarding record of mac; ErrNoHeartbeats if it has none.
func (inv *Inventory) Client(ctx context.Context, mac MAC) (Client, error) {
	c, ok, generation := inv.records.get(mac)
	if ok {
		return c, nil
	}
	events, err := inv.db.StageEvents(ctx, string(mac))
	if err != nil {
		return Client{}, err
	}
	if len(events) == 0 {
		return Client{}, fmt.Errorf("%s: %w", mac, ErrNoHeartbeats)
	}
	c = clientRecord(events)
	inv.records.put(c, events[len(events)-1].ID, generation)
	return c, nil
}

// Clients returns the onboarding record of every MAC that posted a heartbeat.
func (inv *Inventory) Clients(ctx context.Context, after MAC, limit int) ([]Client, error) {
	events, err := inv.db.StageEventsPage(ctx, string(after), limit)
	if err != nil {
		return nil, err
	}
	var out []Client
	for start := 0; start < len(events); {
		end := start + 1
		for end < len(events) && events[end].MAC == events[start].MAC {
			end++
		}
		out = append(out, clientRecord(events[start:end]))
		start = end
	}
	return out, nil
}

// clientRecord folds one MAC's heartbeats, oldest first, into its record.
func clientRecord(events []store.StageEvent) Client {
	c := Client{MAC: MAC(events[0].MAC), Stages: make([]StageEntry, 0, len(events))}
	for _, e := range events {
		c.add(e, 0)
	}
	return c
}

// ResetOnboarding forgets a machine's heartbeats (its /clients record and
// its retained last heartbeat on the bus), so that a reinstall's progress
// reads from a clean slate. Its lifecycle history stays. It returns how
// many heartbeats were forgotten.
func (inv *Inventory) ResetOnboarding(ctx context.Context, machineID string) (int64, error) {
	var n int64
	var c commitNotes
	err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		c = commitNotes{}
		m, err := tx.Machine(machineID)
		if err != nil {
			return err
		}
		if n, err = tx.DeleteStageEvents(m.MACs); err != nil {
			return err
		}
		inv.ownersChange()
		c.recordsStale = true
		if inv.cfg.Announce != nil {
			outbox.Enqueue(tx, inv.cfg.Announce.OnboardingClearedMessage(machineID))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reset the onboarding record of %s: %w", machineID, err)
	}
	inv.committed(c)
	inv.log.Info("onboarding record reset", "machine_id", machineID, "heartbeats_forgotten", n)
	return n, nil
}

// heartbeatsUnderWay counts the heartbeats of each MAC being recorded.
type heartbeatsUnderWay struct {
	mu    sync.Mutex
	count map[MAC]int
}

// enter counts a heartbeat of mac in and says whether it is the only one.
func (h *heartbeatsUnderWay) enter(mac MAC) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count == nil {
		h.count = map[MAC]int{}
	}
	h.count[mac]++
	return h.count[mac] == 1
}

func (h *heartbeatsUnderWay) leave(mac MAC) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count[mac]--; h.count[mac] <= 0 {
		delete(h.count, mac)
	}
}
