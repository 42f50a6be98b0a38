package domain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slipway/slipway/store"
)

// Door is a way a MAC nobody owns reaches Slipway, and may become a
// discovered machine by (discovery.doors).
type Door string

const (
	// DoorDHCP: a netbooting DHCP request (PXE or UEFI HTTP Boot firmware,
	// iPXE). Other DHCP clients get an address and are not recorded.
	DoorDHCP Door = "dhcp"
	// DoorBoot: an iPXE script or GRUB config asked for by MAC.
	DoorBoot Door = "boot"
	// DoorCloudInit: cloud-init data asked for by MAC.
	DoorCloudInit Door = "cloud-init"
	// DoorHeartbeat: an onboarding heartbeat.
	DoorHeartbeat Door = "heartbeat"
)

// Doors are every door, in the order the docs list them.
var Doors = []Door{DoorDHCP, DoorBoot, DoorCloudInit, DoorHeartbeat}

// DiscoveryPolicy bounds how machines come to exist from the LAN alone:
// any host there can send a request naming a new MAC, and each would
// otherwise cost a machine, a retained message and memory.
type DiscoveryPolicy struct {
	// Doors may discover a machine; the others answer a MAC nobody owns
	// as unknown. Empty means DefaultDiscoveryDoors.
	Doors []Door
	// MaxMachines is how many discovered machines may exist at once; 0
	// means no bound.
	MaxMachines int
	// ExpireAfter forgets a discovered machine that never moved past
	// created, has no heartbeat and holds no lease, this long after it was
	// discovered; 0 keeps them.
	ExpireAfter time.Duration
}

// DefaultDiscoveryDoors: what netboots is discovered; a heartbeat or a
// cloud-init fetch from a MAC nobody knows is answered, not recorded.
var DefaultDiscoveryDoors = []Door{DoorDHCP, DoorBoot}

// ErrDiscoveryRefused means a MAC nobody owns was not made a machine.
var ErrDiscoveryRefused = errors.New("not discovered")

// DiscoveryRefusedError says why a MAC nobody owns was not made a machine.
type DiscoveryRefusedError struct {
	MAC  MAC
	Door Door
	Why  string
}

func (e *DiscoveryRefusedError) Error() string {
	return fmt.Sprintf("no machine has MAC %s and it was not discovered by its %s request: %s", e.MAC, e.Door, e.Why)
}

func (e *DiscoveryRefusedError) Unwrap() error { return ErrDiscoveryRefused }

// mayDiscover says whether door may make a machine of mac now, and why not.
func (inv *Inventory) mayDiscover(mac MAC, door Door) error {
	p := inv.Policy().Discovery
	doors := p.Doors
	if len(doors) == 0 {
		doors = DefaultDiscoveryDoors
	}
	if !slices.Contains(doors, door) {
		return &DiscoveryRefusedError{MAC: mac, Door: door,
			Why: fmt.Sprintf("discovery.doors is %s; list the machine under machines, or add %s", doorList(doors), door)}
	}
	if p.MaxMachines > 0 {
		if n := inv.discoveredCount() + len(inv.discovering); n >= p.MaxMachines {
			inv.capLog.refused(inv.log, string(door), fmt.Errorf("%d discovered machines, discovery.max_machines is %d: %s refused", n, p.MaxMachines, mac))
			return &DiscoveryRefusedError{MAC: mac, Door: door,
				Why: fmt.Sprintf("there are %d discovered machines already (discovery.max_machines); delete some or raise it", n)}
		}
	}
	return nil
}

func doorList(doors []Door) string {
	s := make([]string, len(doors))
	for i, d := range doors {
		s[i] = string(d)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// discoveredCount is how many discovered machines exist, as of the last
// commit.
func (inv *Inventory) discoveredCount() int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.discoveredN
}

// RunDiscoveryExpiry forgets, every interval until ctx ends, the
// discovered machines that never progressed (discovery.expire_after).
// holdsLease says whether a MAC holds an unexpired lease (nil: none do):
// a machine told to keep its disk stays created while it runs, and its
// renewals keep it.
// The policy is read at each round: it may change while Slipway runs.
func (inv *Inventory) RunDiscoveryExpiry(ctx context.Context, interval time.Duration, holdsLease func(MAC) bool) {
	every(ctx, interval, func() {
		after := inv.Policy().Discovery.ExpireAfter
		if after <= 0 {
			return
		}
		n, err := inv.ExpireDiscovered(ctx, holdsLease)
		switch {
		case err != nil:
			inv.log.Warn("cannot expire discovered machines", "error", err)
		case n > 0:
			inv.log.Info("discovered machines that never progressed forgotten", "machines", n, "after", after)
		}
	})
}

// ExpireDiscovered forgets the discovered machines created more than
// discovery.expire_after ago that are still created, never posted a
// heartbeat and hold no lease. It says how many it forgot.
func (inv *Inventory) ExpireDiscovered(ctx context.Context, holdsLease func(MAC) bool) (int, error) {
	cutoff := inv.cfg.Now().Add(-inv.Policy().Discovery.ExpireAfter)
	forgotten := 0
	for _, id := range inv.staleDiscovered(cutoff) {
		var c commitNotes
		gone := false
		err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
			c, gone = commitNotes{}, false
			m, err := tx.Machine(id)
			if err != nil || m.Source != SourceDiscovered || m.State != StateCreated || m.StateSince.After(cutoff) {
				return err
			}
			for _, mac := range m.MACs {
				if holdsLease != nil && holdsLease(MAC(mac)) {
					return nil
				}
			}
			if beat, err := tx.HasStageEvents(m.MACs); err != nil || beat {
				return err
			}
			gone = true
			return inv.deleteInTx(tx, id, &c)
		})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return forgotten, fmt.Errorf("expire machine %s: %w", id, err)
		}
		inv.committed(c)
		if gone {
			forgotten++
			inv.log.Debug("discovered machine forgotten: it never progressed", "machine_id", id)
		}
	}
	return forgotten, nil
}

// staleDiscovered are the discovered machines still created since before
// cutoff, from memory.
func (inv *Inventory) staleDiscovered(cutoff time.Time) []string {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	var ids []string
	for id, s := range inv.states {
		if s.discovered && s.State.State == StateCreated && s.since.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	return ids
}
