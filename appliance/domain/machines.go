package domain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/store"
)

// InitialState is where every machine's life starts: NICo's "created".
var InitialState = Created().JSON()

// Announcer turns what the domain records into messages for the event bus.
// The broker package provides it: topics and payloads are its business.
// The messages go to the outbox in the same transaction as the change.
type Announcer interface {
	// StateMessage announces machine machineID in state s since at;
	// encoded is s as JSON if the caller has it, "" if not.
	StateMessage(machineID string, s State, encoded string, at time.Time) outbox.Message
	StageMessage(r StageReport) outbox.Message
	// GoneMessages clear what the bus retains of a machine that is no more.
	GoneMessages(machineID string) []outbox.Message
	// OnboardingClearedMessage clears a machine's retained last heartbeat.
	OnboardingClearedMessage(machineID string) outbox.Message
}

// InventoryConfig is what an Inventory works with.
type InventoryConfig struct {
	DB     *store.Store
	Commit *store.Committer // small writes share commits
	Log    *slog.Logger
	// Announce, if set, writes every transition and heartbeat to the outbox.
	Announce Announcer
	// Timeouts are how long a machine may stay in a top-level state
	// (hostinit, validation, …) before it fails; absent or 0: forever.
	Timeouts map[string]time.Duration
	// Now is the clock timeouts are judged by; nil means time.Now.
	Now func() time.Time
	// UnknownMachines is what a MAC no machine owns gets when it netboots
	// (netboot.unknown_machines); empty means UnknownInstall.
	UnknownMachines UnknownPolicy
	// HeartbeatsKept is how many heartbeats a MAC keeps, its newest: a
	// node (or anyone) posting without end must not grow the store without
	// end. 0 means DefaultHeartbeatsKept.
	HeartbeatsKept int
	// Discovery bounds which doors make machines of MACs nobody owns, and
	// how many.
	Discovery DiscoveryPolicy
}

// DefaultHeartbeatsKept is InventoryConfig.HeartbeatsKept's default.
const DefaultHeartbeatsKept = 500

// Inventory knows which machines exist, discovers new ones and moves them
// through their lifecycle. It is the only writer of machine states, so it
// keeps every machine's state in memory as well: a DHCP storm from known
// machines costs no database reads, and timeouts are found without polling.
type Inventory struct {
	cfg   InventoryConfig
	db    *store.Store
	log   *slog.Logger
	known sync.Map // MAC → machine id
	// beating counts heartbeats being recorded, by MAC, and owners is
	// bumped by every change of MAC owners, hostnames or heartbeats other
	// than a heartbeat's, in its transaction (rememberedTarget).
	beating heartbeatsUnderWay
	owners  atomic.Uint64
	// policy is the run-time policy in force (RunPolicy): the file's, or
	// one an operator changed.
	policy atomic.Pointer[RunPolicy]

	mu     sync.Mutex
	states map[string]cachedState // machine id → latest committed state
	// discoveredN counts the states marked discovered: the discovery cap
	// is checked on every new MAC, which must not walk every machine.
	discoveredN int

	fingerprints fingerprints
	// capLog reports refusals past discovery.max_machines, sparingly.
	capLog refusalLog
	// discovering holds a slot per machine SeenSoon is recording in the
	// background; the discovery cap counts them. settling maps each such
	// MAC to a channel closed once its machine is stored (Settle).
	discovering chan struct{}
	settling    sync.Map
	// records answers heartbeats without reading the MAC's history.
	records *recentRecords
}

// maxBackgroundDiscoveries bounds SeenSoon's writes in flight: past it, a
// DISCOVER waits for its own, which slows a flood of new MACs down.
const maxBackgroundDiscoveries = 1024

// cachedState is a machine's state as of transition seq; a newer seq wins,
// whatever order the goroutines that committed them get here in.
type cachedState struct {
	State
	// stored is State as the store holds it, once this process wrote it
	// ("" until then): the one writer, finding it stored, need not parse
	// it again (see storedState).
	stored string
	since  time.Time
	seq    int64
	// discovered: the machine was first seen on the LAN, not listed by an
	// operator (netboot.unknown_machines decides whether it installs).
	discovered bool
}

// NewInventory loads every known MAC and machine state once.
func NewInventory(ctx context.Context, cfg InventoryConfig) (*Inventory, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UnknownMachines == "" {
		cfg.UnknownMachines = UnknownInstall
	}
	inv := &Inventory{cfg: cfg, db: cfg.DB, log: cfg.Log, states: map[string]cachedState{}, discovering: make(chan struct{}, maxBackgroundDiscoveries),
		records: newRecentRecords(cfg.Now)}
	inv.owners.Store(1) // 0 marks a record read from the store, never trusted
	if err := inv.loadPolicy(ctx); err != nil {
		return nil, fmt.Errorf("load the run-time policy: %w", err)
	}
	owners, err := cfg.DB.MACOwners(ctx)
	if err != nil {
		return nil, fmt.Errorf("load known MACs: %w", err)
	}
	for mac, id := range owners {
		inv.known.Store(MAC(mac), id)
	}
	states, err := cfg.DB.MachineStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("load machine states: %w", err)
	}
	for _, ms := range states {
		st, err := ParseState(ms.StateJSON)
		if err != nil {
			return nil, fmt.Errorf("machine %s: %w", ms.ID, err)
		}
		// seq 0: every transition from now on has a higher one.
		inv.put(ms.ID, cachedState{State: st, since: ms.Since, discovered: ms.Source == SourceDiscovered})
	}
	return inv, nil
}

// Machines returns every machine's current state, as of the last commit.
func (inv *Inventory) Machines() []Machine {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	out := make([]Machine, 0, len(inv.states))
	for id, s := range inv.states {
		out = append(out, Machine{ID: id, State: s.State, Since: s.since})
	}
	return out
}

// DiscoveredID is the machine id given to a machine first seen by its MAC.
func DiscoveredID(mac MAC) string { return "mac-" + strings.ReplaceAll(string(mac), ":", "") }

// GeneratedHostname is the hostname of a machine the inventory gives none.
func GeneratedHostname(mac MAC) string { return "node-" + strings.ReplaceAll(string(mac), ":", "") }

// Seen records that mac is netbooting, as door saw: a MAC no machine owns
// becomes a new machine (source "discovered", state created) if the
// discovery policy lets door make one, else the error is a
// *DiscoveryRefusedError. It reports whether the MAC belonged to a machine
// before.
func (inv *Inventory) Seen(ctx context.Context, mac MAC, door Door) (known bool, err error) {
	if inv.Known(mac) {
		return true, nil
	}
	if err := inv.mayDiscover(mac, door); err != nil {
		return false, err
	}
	return inv.recordDiscovered(ctx, mac, door)
}

// SeenSoon is Seen for a DHCP DISCOVER: the discovery policy is applied at
// once, and a new MAC's machine is recorded in the background, so that the
// OFFER does not wait for a commit (a site powering on sends thousands of
// DISCOVERs at once). The REQUEST that follows goes through Seen, so the
// ACK is sent only once the machine is stored.
func (inv *Inventory) SeenSoon(ctx context.Context, mac MAC, door Door) (known bool, err error) {
	if inv.Known(mac) {
		return true, nil
	}
	if err := inv.mayDiscover(mac, door); err != nil {
		return false, err
	}
	select {
	case inv.discovering <- struct{}{}:
	default:
		return inv.recordDiscovered(ctx, mac, door) // a backlog already: wait for this one
	}
	stored := make(chan struct{})
	if _, already := inv.settling.LoadOrStore(mac, stored); already {
		<-inv.discovering // a copy of the same DISCOVER: the first one's write stores it
		return false, nil
	}
	go func() {
		defer func() { <-inv.discovering }()
		defer inv.settling.Delete(mac)
		defer close(stored)
		if _, err := inv.recordDiscovered(context.WithoutCancel(ctx), mac, door); err != nil {
			inv.log.Warn("could not record a discovered machine yet; its next request will", "mac", mac, "door", door, "error", err)
		}
	}()
	return false, nil
}

// Settle waits until the machine SeenSoon is storing for mac, if any, is
// stored (or ctx ends): a DHCP REQUEST is acknowledged only after it.
func (inv *Inventory) Settle(ctx context.Context, mac MAC) {
	if stored, ok := inv.settling.Load(mac); ok {
		select {
		case <-stored.(chan struct{}):
		case <-ctx.Done():
		}
	}
}

// recordDiscovered stores the machine of a MAC nobody owned, which the
// discovery policy allows; another request may have stored it meanwhile.
func (inv *Inventory) recordDiscovered(ctx context.Context, mac MAC, door Door) (known bool, err error) {
	var c commitNotes
	do := inv.cfg.Commit.Do
	if door == DoorDHCP {
		do = inv.cfg.Commit.DoUrgent // the firmware waits, and retries only seconds later
	}
	err = do(ctx, func(tx *store.Tx) error {
		c = commitNotes{}
		_, err := inv.discover(tx, mac, fmt.Sprintf("first %s request from %s", door, mac), &c)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		// Another request discovered it first, or another door added it.
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover machine %s: %w", mac, err)
	}
	inv.committed(c)
	inv.log.Info("machine discovered", "machine_id", DiscoveredID(mac), "mac", mac)
	return false, nil
}

// discover creates the machine for a MAC nobody owns, inside tx.
func (inv *Inventory) discover(tx *store.Tx, mac MAC, cause string, c *commitNotes) (string, error) {
	id := DiscoveredID(mac)
	seq, err := tx.CreateMachine(store.Machine{ID: id, MACs: []string{string(mac)}, Source: SourceDiscovered,
		State: StateCreated, StateJSON: InitialState}, cause)
	if err != nil {
		return "", err
	}
	c.macs = append(c.macs, macOwner{mac, id})
	c.discovered = append(c.discovered, id)
	return id, inv.recordState(tx, c, id, Created(), InitialState, seq)
}

// Known says whether mac belongs to a machine.
func (inv *Inventory) Known(mac MAC) bool {
	_, ok := inv.known.Load(mac)
	return ok
}

// machineID is the machine that owns mac, if any.
func (inv *Inventory) machineID(mac MAC) (string, bool) {
	id, ok := inv.known.Load(mac)
	if !ok {
		return "", false
	}
	return id.(string), true
}

// MachineInfo is what an operator says of a machine: its name, what it
// installs, where it sits and how its BMC is reached. Listings, boot
// decisions and the configuration share it.
type MachineInfo struct {
	Hostname string
	Profile  string // empty: the default profile
	RackID   string
	RackName string
	Tray     int
	// TrayKnown says Tray is a slot the lister gave: a site design places
	// a node in a rack, never in a tray, and tray 0 is a slot like any
	// other.
	TrayKnown   bool
	TrayType    string // compute | switch | powershelf
	BMCEndpoint string
	// DPUOf is the host a DPU sits in ("" for other machines): NICo's
	// target dpu reinstalls a host's DPUs.
	DPUOf string
	// ReleaseID is the OS release a USM deploy put it on ("" for none):
	// it boots that release's profile instead of Profile.
	ReleaseID string
}

// ReleaseProfile is the boot profile of an OS release.
func ReleaseProfile(releaseID string) string { return "release:" + releaseID }

// BootProfile is the profile the machine boots: its release's, else its
// own ("" for the default).
func (m MachineInfo) BootProfile() string {
	if m.ReleaseID != "" {
		return ReleaseProfile(m.ReleaseID)
	}
	return m.Profile
}

func machineInfo(m store.Machine) MachineInfo {
	return MachineInfo{Hostname: m.Hostname, Profile: m.Profile, RackID: m.RackID, RackName: m.RackName, Tray: m.Tray,
		TrayKnown: m.TrayKnown, TrayType: m.TrayType, BMCEndpoint: m.BMCEndpoint, DPUOf: m.DPUOf, ReleaseID: m.ReleaseID}
}

// BootMachine is what netboot needs to know of a machine, and what it
// should boot into.
type BootMachine struct {
	BootPlan
	ID string
	MachineInfo
}

// MachineByMAC finds the machine that owns mac, discovering it if no
// machine does yet and the discovery policy lets door make one (a machine
// that got its address from another DHCP server, in proxy mode, reaches
// us first here).
func (inv *Inventory) MachineByMAC(ctx context.Context, mac MAC, door Door) (BootMachine, error) {
	m, err := inv.db.MachineByMAC(ctx, string(mac))
	if errors.Is(err, store.ErrNotFound) && inv.Policy().UnknownMachines == UnknownIgnore {
		return BootMachine{}, fmt.Errorf("MAC %s: %w (netboot.unknown_machines: ignore)", mac, ErrNotFound)
	}
	if errors.Is(err, store.ErrNotFound) {
		if _, err := inv.Seen(ctx, mac, door); err != nil {
			return BootMachine{}, err
		}
		m, err = inv.db.MachineByMAC(ctx, string(mac))
	}
	if err != nil {
		return BootMachine{}, err
	}
	return BootMachine{BootPlan: inv.BootPlan(mac), ID: m.ID, MachineInfo: machineInfo(m)}, nil
}

// commitNotes collect, inside a transaction, what the caches learn once it
// commits: a retried transaction starts them afresh.
type commitNotes struct {
	macs   []macOwner
	states []stateNote
	gone   []string // machines deleted, with their MACs
	// discovered are machines made in this transaction from a MAC seen on
	// the LAN.
	discovered []string
	// recordsStale: onboarding records changed other than by a heartbeat
	// (a machine renamed, heartbeats forgotten); machines gone imply it.
	recordsStale bool
	// moves are logged once committed: not by the one writer, in its
	// transaction (a line for each of a booting site's heartbeats), and
	// never for a transaction rolled back.
	moves []move
}

// move is one machine's state change, as the log tells it.
type move struct {
	id       string
	from, to State
	cause    string
}

type macOwner struct {
	mac MAC
	id  string
}

type stateNote struct {
	id string
	cachedState
}

// recordState notes a new committed state and writes its bus message.
func (inv *Inventory) recordState(tx *store.Tx, c *commitNotes, id string, st State, stored string, seq int64) error {
	c.states = append(c.states, stateNote{id, cachedState{State: st, stored: stored, since: tx.Now(), seq: seq}})
	if inv.cfg.Announce == nil {
		return nil
	}
	outbox.Enqueue(tx, inv.cfg.Announce.StateMessage(id, st, stored, tx.Now()))
	return nil
}

// ownersChange is called in the transaction of a change to MAC owners,
// hostnames or heartbeats: heartbeats after it in the writer's order stop
// trusting what memory says of their targets. Rolled back, it costs only
// a few reads.
func (inv *Inventory) ownersChange() { inv.owners.Add(1) }

// committed brings the caches up to date after a commit and wakes the relay.
func (inv *Inventory) committed(c commitNotes) {
	if c.recordsStale || len(c.gone) > 0 {
		inv.records.forgetAll()
	}
	for _, m := range c.macs {
		inv.known.Store(m.mac, m.id)
	}
	for _, id := range c.gone {
		inv.known.Range(func(mac, owner any) bool {
			if owner == id {
				inv.known.Delete(mac)
			}
			return true
		})
	}
	inv.mu.Lock()
	for _, id := range c.gone {
		inv.forget(id)
	}
	for _, s := range c.states {
		if cur, ok := inv.states[s.id]; !ok || s.seq > cur.seq {
			s.discovered = s.discovered || cur.discovered
			inv.put(s.id, s.cachedState)
		}
	}
	for _, id := range c.discovered {
		if s, ok := inv.states[id]; ok {
			s.discovered = true
			inv.put(id, s)
		}
	}
	inv.mu.Unlock()
	if len(c.moves) > 0 && inv.log.Enabled(context.Background(), slog.LevelInfo) {
		for _, m := range c.moves {
			inv.log.Info("machine state changed", "machine_id", m.id, "from", m.from.Label(), "to", m.to.Label(), "cause", m.cause)
		}
	}
}

// put sets a machine's cached state, and forget drops it, keeping the
// count of discovered machines; inv.mu is held, or inv is not shared yet.
func (inv *Inventory) put(id string, s cachedState) {
	inv.forget(id)
	if s.discovered {
		inv.discoveredN++
	}
	inv.states[id] = s
}

func (inv *Inventory) forget(id string) {
	if cur, ok := inv.states[id]; ok && cur.discovered {
		inv.discoveredN--
	}
	delete(inv.states, id)
}

// cached is the last committed state of a machine known to the cache.
func (inv *Inventory) cached(id string) (cachedState, bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	s, ok := inv.states[id]
	return s, ok
}
