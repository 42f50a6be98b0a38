package domain

import (
	"container/list"
	"slices"
	"sync"
	"time"

	"github.com/slipway/slipway/store"
)

// recentRecords remembers the onboarding records of the MACs that posted
// heartbeats lately. Every heartbeat's answer is the MAC's whole record:
// read from the store, a MAC's n heartbeats cost n reads of a growing
// history, and while a site onboards those reads were a sixth of
// Slipway's CPU. Here a committed heartbeat extends the record it
// follows, so the answer costs no read.
//
// A record is extended only by the heartbeat that comes right after its
// newest (the store says which one that was, in the heartbeat's own
// transaction); anything else sends the next answer to the store.
// Whatever changes a record behind the heartbeats' back (a reset, a prune,
// a machine renamed or deleted) forgets them all, and a generation number
// keeps a read that began before such a change from storing what it read.
type recentRecords struct {
	mu         sync.Mutex
	byMAC      map[MAC]*list.Element // of *recentRecord
	lru        *list.List            // most recently used first
	entries    int                   // heartbeats held, over all records
	generation uint64
	maxEntries int
	idle       time.Duration
	now        func() time.Time
}

type recentRecord struct {
	client Client
	lastID int64 // the store's id of the record's newest heartbeat
	used   time.Time
	// owners is the Inventory's owners version the record was extended
	// at (0: read from the store, not extended since): rememberedTarget
	// trusts it only while no change of owners, hostnames or records has
	// begun since. hostname is the newest heartbeat's, as stored ("" for
	// none: the record's shows a generated one).
	owners   uint64
	hostname string
}

// Bounds of recentRecords: a booting site is a few thousand MACs of a few
// dozen heartbeats each; a MAC quiet for longer than recordIdle is done
// onboarding and is read from the store if it asks again.
const (
	maxRecentHeartbeats = 262_144
	recordIdle          = 10 * time.Minute
)

func newRecentRecords(now func() time.Time) *recentRecords {
	return &recentRecords{byMAC: map[MAC]*list.Element{}, lru: list.New(),
		maxEntries: maxRecentHeartbeats, idle: recordIdle, now: now}
}

// get returns a copy of mac's remembered record, and the generation to
// hand put if the caller reads it from the store instead.
func (r *recentRecords) get(mac MAC) (c Client, ok bool, generation uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byMAC[mac]
	if !ok {
		return Client{}, false, r.generation
	}
	rec := el.Value.(*recentRecord)
	r.touch(el, rec)
	return rec.client.clone(), true, r.generation
}

// last is what mac's remembered record says of its newest heartbeat: the
// machine and hostname it was recorded for, and its id in the store, if
// the record was noted at owners version owners.
func (r *recentRecords) last(mac MAC, owners uint64) (machineID, hostname string, lastID int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, found := r.byMAC[mac]
	if !found || el.Value.(*recentRecord).owners != owners || owners == 0 {
		return "", "", 0, false
	}
	rec := el.Value.(*recentRecord)
	return rec.client.MachineID, rec.hostname, rec.lastID, true
}

// put remembers a record read from the store at generation, unless the
// records were forgotten since (the read may be older than what made them
// stale) or a newer record is already here.
func (r *recentRecords) put(c Client, lastID int64, generation uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if generation != r.generation {
		return
	}
	if el, ok := r.byMAC[c.MAC]; ok && el.Value.(*recentRecord).lastID >= lastID {
		return
	}
	r.store(&recentRecord{client: c.clone(), lastID: lastID})
}

// held is how many heartbeats the store holds for mac when the newest of
// them is lastID, as its remembered record tells; ok is false when the
// record is not remembered or is not at lastID.
func (r *recentRecords) held(mac MAC, lastID int64) (n int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, found := r.byMAC[mac]
	if !found || el.Value.(*recentRecord).lastID != lastID {
		return 0, false
	}
	return len(el.Value.(*recentRecord).client.Stages), true
}

// extend adds a committed heartbeat to its MAC's record if the record's
// newest is the heartbeat before it (previous; 0 if it is the MAC's first,
// which makes a new record), keeping the newest keep. It returns the
// record, or ok false if the store must be read: the record is not here,
// or another heartbeat of the MAC came in between.
func (r *recentRecords) extend(ev store.StageEvent, previous int64, keep int, owners uint64) (c Client, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mac := MAC(ev.MAC)
	el, found := r.byMAC[mac]
	var rec *recentRecord
	switch {
	case found && el.Value.(*recentRecord).lastID >= ev.ID:
		// A later heartbeat of the MAC got here first: its record
		// already holds this one, and is the newer answer.
		rec = el.Value.(*recentRecord)
		r.touch(el, rec)
		return rec.client.clone(), true
	case found && el.Value.(*recentRecord).lastID == previous:
		rec = el.Value.(*recentRecord)
		r.remove(el)
	case !found && previous == 0:
		rec = &recentRecord{client: Client{MAC: mac}}
	default:
		if found {
			r.remove(el)
		}
		return Client{}, false
	}
	rec.client.add(ev, keep)
	rec.lastID, rec.owners, rec.hostname = ev.ID, owners, ev.Hostname
	r.store(rec)
	return rec.client.clone(), true
}

// forgetAll drops every record: something changed them in the store.
func (r *recentRecords) forgetAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.generation++
	clear(r.byMAC)
	r.lru.Init()
	r.entries = 0
}

func (r *recentRecords) touch(el *list.Element, rec *recentRecord) {
	rec.used = r.now()
	r.lru.MoveToFront(el)
}

func (r *recentRecords) store(rec *recentRecord) {
	if el, ok := r.byMAC[rec.client.MAC]; ok {
		r.remove(el)
	}
	rec.used = r.now()
	r.byMAC[rec.client.MAC] = r.lru.PushFront(rec)
	r.entries += len(rec.client.Stages)
	r.evict(rec.used)
}

// evict drops the least recently used records while there are too many
// heartbeats held, and those idle too long.
func (r *recentRecords) evict(now time.Time) {
	for el := r.lru.Back(); el != nil && el != r.lru.Front(); el = r.lru.Back() {
		rec := el.Value.(*recentRecord)
		if r.entries <= r.maxEntries && now.Sub(rec.used) < r.idle {
			return
		}
		r.remove(el)
	}
}

func (r *recentRecords) remove(el *list.Element) {
	rec := r.lru.Remove(el).(*recentRecord)
	delete(r.byMAC, rec.client.MAC)
	r.entries -= len(rec.client.Stages)
}

// add appends a committed heartbeat to c, keeping the newest keep, as
// the store does in the heartbeat's transaction.
func (c *Client) add(ev store.StageEvent, keep int) {
	c.MachineID, c.IP, c.Hostname = ev.MachineID, ev.ClientIP, ev.Hostname
	if c.Hostname == "" {
		c.Hostname = GeneratedHostname(c.MAC)
	}
	c.CurrentStage, c.LastHeartbeat = Stage(ev.Stage), ev.At
	c.Stages = append(c.Stages, stageEntry(ev))
	if over := len(c.Stages) - keep; keep > 0 && over > 0 {
		c.Stages = slices.Delete(c.Stages, 0, over)
	}
}

func stageEntry(e store.StageEvent) StageEntry {
	return StageEntry{Stage: Stage(e.Stage), Phase: Phase(e.Phase), Timestamp: e.At, Detail: e.Detail}
}

// clone is c with a Stages of its own, for a caller to keep.
func (c Client) clone() Client {
	c.Stages = slices.Clone(c.Stages)
	return c
}
