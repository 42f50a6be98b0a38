package bmc

import (
	"context"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
)

// A BMC that keeps a one-time boot override as Continuous would netboot
// its machine at every power-on. Slipway records the override it set that
// way (store: bmcs.override_pending, so that a restart does not forget it)
// and each poll clears it once the machine has netbooted: its lifecycle
// has left hostinit/waitingfordiscovery, where provisioning put it.

// overridePending records (or, with "", forgets) the persistent override
// Slipway set on t; t is held.
func (m *Manager) overridePending(ctx context.Context, t *target, boot string) {
	if t.reg.OverridePending == boot {
		return
	}
	if err := m.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.SetBMCOverridePending(t.reg.ID, boot) }); err != nil {
		m.log.Error("BMC: cannot record its persistent boot override", "bmc_id", t.reg.ID, "error", err)
		return
	}
	t.reg.OverridePending = boot
	if boot != "" {
		m.log.Warn("BMC keeps the one-time boot override as Continuous: Slipway clears it once the machine has netbooted",
			"bmc_id", t.reg.ID, "boot_target", boot)
	}
}

// clearOverride clears the persistent override Slipway set on t once its
// machine has netbooted; t is held and polled well. A failure is logged
// and tried again at the next poll.
func (m *Manager) clearOverride(ctx context.Context, t *target, s Status) {
	if t.reg.OverridePending == "" || s.MachineID == "" {
		return
	}
	if st, ok := m.cfg.Machines.State(s.MachineID); ok && st.Label() == domain.StateHostInit+"/"+domain.HostInitWaitingForDiscovery {
		return // not netbooted yet: the override is still wanted
	}
	_, err := withConn(ctx, m, t, func(c *gofish.APIClient) (struct{}, error) {
		sys, err := system(c, s.Inventory.System)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, sys.SetBoot(&schemas.Boot{BootSourceOverrideEnabled: schemas.DisabledBootSourceOverrideEnabled})
	})
	if err != nil {
		m.log.Warn("BMC: cannot clear the persistent boot override Slipway set; trying again at the next poll", "bmc_id", t.reg.ID, "error", err)
		return
	}
	m.log.Info("BMC: cleared the persistent boot override Slipway set, the machine having netbooted", "bmc_id", t.reg.ID, "machine_id", s.MachineID)
	m.overridePending(ctx, t, "")
}
