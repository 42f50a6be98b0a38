package domain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/slipway/slipway/store"
)

// InitialState is where every machine's life starts: NICo's "created".
const InitialState = `{"state":"created"}`

// Inventory knows which machines exist and discovers new ones.
type Inventory struct {
	db  *store.Store
	log *slog.Logger
}

// NewInventory returns the machine inventory over db.
func NewInventory(db *store.Store, log *slog.Logger) *Inventory {
	return &Inventory{db: db, log: log}
}

// DiscoveredID is the machine id given to a machine first seen by its MAC.
func DiscoveredID(mac MAC) string { return "mac-" + strings.ReplaceAll(string(mac), ":", "") }

// Seen records that mac is netbooting: a MAC no machine owns becomes a new
// machine (source "discovered", state created). It reports whether the MAC
// belonged to a machine before.
func (inv *Inventory) Seen(ctx context.Context, mac MAC) (known bool, err error) {
	_, err = inv.db.MachineByMAC(ctx, string(mac))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	id := DiscoveredID(mac)
	err = inv.db.Update(ctx, func(tx *store.Tx) error {
		return tx.CreateMachine(store.Machine{ID: id, MACs: []string{string(mac)}, Source: "discovered",
			State: "created", StateJSON: InitialState}, "first DHCP request from "+string(mac))
	})
	if errors.Is(err, store.ErrConflict) {
		return false, nil // a concurrent request discovered it first
	}
	if err != nil {
		return false, fmt.Errorf("discover machine %s: %w", mac, err)
	}
	inv.log.Info("machine discovered", "machine_id", id, "mac", mac)
	return false, nil
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
