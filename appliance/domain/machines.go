package domain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/slipway/slipway/store"
)

// InitialState is where every machine's life starts: NICo's "created".
const InitialState = `{"state":"created"}`

// Inventory knows which machines exist and discovers new ones. It
// remembers the MACs it has seen, so that a DHCP storm from known machines
// does not read the database for every packet.
type Inventory struct {
	db     *store.Store
	commit *store.Committer
	log    *slog.Logger
	known  sync.Map // MAC → struct{}: MACs that belong to a machine
}

// NewInventory returns the machine inventory over db; new machines are
// written through commit. It loads every known MAC once, so that deciding
// whether a MAC is new never reads the database.
func NewInventory(ctx context.Context, db *store.Store, commit *store.Committer, log *slog.Logger) (*Inventory, error) {
	inv := &Inventory{db: db, commit: commit, log: log}
	macs, err := db.AllMACs(ctx)
	if err != nil {
		return nil, fmt.Errorf("load known MACs: %w", err)
	}
	for _, mac := range macs {
		inv.known.Store(MAC(mac), struct{}{})
	}
	return inv, nil
}

// DiscoveredID is the machine id given to a machine first seen by its MAC.
func DiscoveredID(mac MAC) string { return "mac-" + strings.ReplaceAll(string(mac), ":", "") }

// Seen records that mac is netbooting: a MAC no machine owns becomes a new
// machine (source "discovered", state created). It reports whether the MAC
// belonged to a machine before.
func (inv *Inventory) Seen(ctx context.Context, mac MAC) (known bool, err error) {
	if _, ok := inv.known.Load(mac); ok {
		return true, nil
	}
	id := DiscoveredID(mac)
	err = inv.commit.Do(ctx, func(tx *store.Tx) error {
		return tx.CreateMachine(store.Machine{ID: id, MACs: []string{string(mac)}, Source: "discovered",
			State: "created", StateJSON: InitialState}, "first DHCP request from "+string(mac))
	})
	if errors.Is(err, store.ErrConflict) {
		// Another request discovered it first, or another door added it.
		inv.known.Store(mac, struct{}{})
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover machine %s: %w", mac, err)
	}
	inv.known.Store(mac, struct{}{})
	inv.log.Info("machine discovered", "machine_id", id, "mac", mac)
	return false, nil
}

// Known says whether mac belongs to a machine.
func (inv *Inventory) Known(mac MAC) bool {
	_, ok := inv.known.Load(mac)
	return ok
}

// BootMachine is what netboot needs to know of a machine.
type BootMachine struct {
	ID       string
	Hostname string
	Profile  string
}

// MachineByMAC finds the machine that owns mac, discovering it if no
// machine does yet (a machine that got its address from another DHCP
// server, in proxy mode, reaches us first here).
func (inv *Inventory) MachineByMAC(ctx context.Context, mac MAC) (BootMachine, error) {
	m, err := inv.db.MachineByMAC(ctx, string(mac))
	if errors.Is(err, store.ErrNotFound) {
		if _, err := inv.Seen(ctx, mac); err != nil {
			return BootMachine{}, err
		}
		m, err = inv.db.MachineByMAC(ctx, string(mac))
	}
	if err != nil {
		return BootMachine{}, err
	}
	return BootMachine{ID: m.ID, Hostname: m.Hostname, Profile: m.Profile}, nil
}
