package domain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slipway/slipway/store"
)

// RunPolicy is what an operator may change while Slipway runs, from the
// console or the API: what a MAC nobody owns gets when it netboots, and
// how machines come to exist from the LAN alone. It starts as the
// configuration file says; a change is kept in the store and stays over
// the file, across restarts, until it is reset.
type RunPolicy struct {
	UnknownMachines UnknownPolicy
	Discovery       DiscoveryPolicy
	// Source is "file" (as the configuration says) or "changed" (by
	// ChangedBy at ChangedAt).
	Source    string
	ChangedBy string
	ChangedAt time.Time
}

// Policy sources.
const (
	PolicyFromFile = "file"
	PolicyChanged  = "changed"
)

// policySetting is the store's key for a changed RunPolicy.
const policySetting = "run_policy"

// maxExpireAfter bounds discovery.expire_after as the form takes it.
const maxExpireAfter = 365 * 24 * time.Hour

// storedPolicy is a changed RunPolicy as the store keeps it.
type storedPolicy struct {
	UnknownMachines string   `json:"unknown_machines"`
	Doors           []string `json:"doors"`
	MaxMachines     int      `json:"max_machines"`
	ExpireAfter     string   `json:"expire_after"`
}

// ErrBadPolicy is a RunPolicy that cannot be applied; the error says why.
var ErrBadPolicy = errors.New("bad policy")

// Check says what is wrong with p, naming the setting.
func (p RunPolicy) Check() error {
	switch {
	case !slices.Contains([]UnknownPolicy{UnknownInstall, UnknownLocal, UnknownIgnore}, p.UnknownMachines):
		return fmt.Errorf("%w: netboot.unknown_machines is %q: use install, local or ignore", ErrBadPolicy, p.UnknownMachines)
	case p.Discovery.MaxMachines < 0 || p.Discovery.MaxMachines > 1_000_000:
		return fmt.Errorf("%w: discovery.max_machines %d is out of range: use 0 (no bound) to 1000000", ErrBadPolicy, p.Discovery.MaxMachines)
	case p.Discovery.ExpireAfter != 0 && (p.Discovery.ExpireAfter < time.Hour || p.Discovery.ExpireAfter > maxExpireAfter):
		return fmt.Errorf("%w: discovery.expire_after %s is out of range: use 0 (keep them), or 1h to 8760h", ErrBadPolicy, p.Discovery.ExpireAfter)
	case len(p.Discovery.Doors) == 0:
		// Empty means the defaults in the file; here it would surprise.
		return fmt.Errorf("%w: discovery.doors names none: name at least one (dhcp, boot, cloud-init, heartbeat); to discover nothing, set netboot.unknown_machines to ignore", ErrBadPolicy)
	}
	for _, d := range p.Discovery.Doors {
		if !slices.Contains(Doors, d) {
			return fmt.Errorf("%w: discovery.doors names %q: use %s", ErrBadPolicy, d, doorList(Doors))
		}
	}
	return nil
}

// Policy is the policy in force.
func (inv *Inventory) Policy() RunPolicy { return *inv.policy.Load() }

// FilePolicy is the policy the configuration file gives.
func (inv *Inventory) FilePolicy() RunPolicy {
	p := RunPolicy{UnknownMachines: inv.cfg.UnknownMachines, Discovery: inv.cfg.Discovery, Source: PolicyFromFile}
	if len(p.Discovery.Doors) == 0 {
		p.Discovery.Doors = slices.Clone(DefaultDiscoveryDoors)
	}
	return p
}

// SetPolicy applies p at once and keeps it over the file's, as changed by
// by; a policy that does not Check is refused and changes nothing.
func (inv *Inventory) SetPolicy(ctx context.Context, p RunPolicy, by string) (RunPolicy, error) {
	if err := p.Check(); err != nil {
		return inv.Policy(), err
	}
	doors := make([]string, len(p.Discovery.Doors))
	for i, d := range p.Discovery.Doors {
		doors[i] = string(d)
	}
	text, err := json.Marshal(storedPolicy{UnknownMachines: string(p.UnknownMachines), Doors: doors,
		MaxMachines: p.Discovery.MaxMachines, ExpireAfter: p.Discovery.ExpireAfter.String()})
	if err != nil {
		return inv.Policy(), err
	}
	if err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.PutSetting(policySetting, string(text), by) }); err != nil {
		return inv.Policy(), fmt.Errorf("keep the policy: %w", err)
	}
	p.Source, p.ChangedBy, p.ChangedAt = PolicyChanged, by, inv.cfg.Now().UTC()
	inv.policy.Store(&p)
	inv.log.Info("run-time policy changed", "by", by, "unknown_machines", p.UnknownMachines, "discovery_doors", doorList(p.Discovery.Doors),
		"max_machines", p.Discovery.MaxMachines, "expire_after", p.Discovery.ExpireAfter)
	return p, nil
}

// ResetPolicy forgets a changed policy: the file's is in force again.
func (inv *Inventory) ResetPolicy(ctx context.Context, by string) (RunPolicy, error) {
	if err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.DeleteSetting(policySetting) }); err != nil {
		return inv.Policy(), fmt.Errorf("forget the changed policy: %w", err)
	}
	p := inv.FilePolicy()
	inv.policy.Store(&p)
	inv.log.Info("run-time policy reset to the configuration file's", "by", by)
	return p, nil
}

// loadPolicy is the policy in force at start: a changed one kept in the
// store, else the file's. A kept one that no longer reads or checks (an
// older shape) is reported and the file's is used.
func (inv *Inventory) loadPolicy(ctx context.Context) error {
	p := inv.FilePolicy()
	st, err := inv.db.Setting(ctx, policySetting)
	switch {
	case errors.Is(err, store.ErrNotFound):
		inv.policy.Store(&p)
		return nil
	case err != nil:
		return err
	}
	var sp storedPolicy
	changed := RunPolicy{Source: PolicyChanged, ChangedBy: st.ChangedBy, ChangedAt: st.ChangedAt}
	err = json.Unmarshal([]byte(st.Value), &sp)
	if err == nil {
		changed.UnknownMachines = UnknownPolicy(sp.UnknownMachines)
		changed.Discovery = DiscoveryPolicy{MaxMachines: sp.MaxMachines}
		for _, d := range sp.Doors {
			changed.Discovery.Doors = append(changed.Discovery.Doors, Door(d))
		}
		changed.Discovery.ExpireAfter, err = time.ParseDuration(sp.ExpireAfter)
	}
	if err == nil {
		err = changed.Check()
	}
	if err != nil {
		inv.log.Warn("the run-time policy kept in the store cannot be used; the configuration file's is in force", "error", err)
		inv.policy.Store(&p)
		return nil
	}
	inv.log.Info("a run-time policy changed in the console is in force over the configuration file's", "by", changed.ChangedBy, "at", changed.ChangedAt)
	inv.policy.Store(&changed)
	return nil
}
