package bmc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/slipway/slipway/appliance/domain"
)

// PowerAction is what an operator asks of a machine's power.
type PowerAction string

// The power actions, each mapped to the reset types BMCs offer for it,
// preferred first.
const (
	PowerOn       PowerAction = "on"
	PowerOff      PowerAction = "off"      // immediately
	PowerShutdown PowerAction = "shutdown" // ask the OS to shut down
	PowerRestart  PowerAction = "restart"  // immediately
)

func (a PowerAction) resetTypes() []schemas.ResetType {
	switch a {
	case PowerOn:
		return []schemas.ResetType{schemas.OnResetType, schemas.ForceOnResetType, schemas.PushPowerButtonResetType}
	case PowerOff:
		return []schemas.ResetType{schemas.ForceOffResetType, schemas.PushPowerButtonResetType}
	case PowerShutdown:
		return []schemas.ResetType{schemas.GracefulShutdownResetType}
	case PowerRestart:
		return []schemas.ResetType{schemas.ForceRestartResetType, schemas.PowerCycleResetType, schemas.GracefulRestartResetType}
	}
	return nil
}

// ParsePowerAction accepts on, off, shutdown and restart.
func ParsePowerAction(s string) (PowerAction, error) {
	a := PowerAction(strings.ToLower(s))
	if a.resetTypes() == nil {
		return "", fmt.Errorf("%q is not a power action: use on, off, shutdown or restart", s)
	}
	return a, nil
}

// Power runs a power action on a BMC's system and returns the Redfish
// reset type it used.
func (m *Manager) Power(ctx context.Context, bmcID string, a PowerAction) (string, error) {
	reset, err := act(ctx, m, bmcID, "power "+string(a), func(c *gofish.APIClient, inv Inventory) (string, error) {
		sys, err := system(c, inv.System)
		if err != nil {
			return "", err
		}
		return resetSystem(sys, a.resetTypes())
	})
	if err != nil {
		return "", err
	}
	m.pollSoon(bmcID) // show the new power state soon
	m.log.Info("BMC power action", "bmc_id", bmcID, "action", a, "reset_type", reset)
	return reset, nil
}

// ProvisionOptions say how a machine should netboot.
type ProvisionOptions struct {
	// HTTPBoot asks for UEFI HTTP boot instead of PXE, where the BMC
	// offers it.
	HTTPBoot bool
	// Mode is UEFI or Legacy; empty keeps the mode the system boots in.
	Mode string
}

// Provisioned says what Provision did.
type Provisioned struct {
	MachineID string
	BMCID     string // empty for a machine without a BMC
	Target    string // Pxe | UefiHttp
	Mode      string // UEFI | Legacy
	Reset     string
	State     domain.State
	Notes     []string // vendor quirks met on the way
	// Persistent: the BMC keeps the override Continuous; Slipway clears
	// it once the machine has netbooted.
	Persistent bool
}

// Provision reinstalls a machine: its BMC sets a one-time network boot and
// power-cycles it, and the lifecycle moves it to hostinit/
// waitingfordiscovery. A machine whose lifecycle refuses provisioning is
// refused before its BMC is touched.
func (m *Manager) Provision(ctx context.Context, machineID string, o ProvisionOptions) (Provisioned, error) {
	ev := domain.Event{Kind: domain.EventProvision}
	if err := m.cfg.Machines.Check(machineID, ev); err != nil && !errors.Is(err, domain.ErrNoChange) {
		return Provisioned{}, fmt.Errorf("provision %s: %w", machineID, err)
	}
	st, err := m.ForMachine(machineID)
	if errors.Is(err, ErrUnknownBMC) {
		return m.armWithoutBMC(ctx, machineID, ev)
	}
	if err != nil {
		return Provisioned{}, err
	}
	var prov Provisioned
	var applied domain.State
	var applyErr error
	p, err := actThen(ctx, m, st.ID, "provision "+machineID, func(c *gofish.APIClient, inv Inventory) (Provisioned, error) {
		var err error
		prov, err = netbootOnce(c, inv.System, o, m.cfg.HTTPBootURI)
		return prov, err
	}, func(t *target) {
		// The BMC is still held: no poll sees the override before the
		// lifecycle says the machine is to netboot (a persistent override
		// is cleared once it has).
		persistent := ""
		if prov.Persistent {
			persistent = prov.Target
		}
		m.overridePending(ctx, t, persistent)
		ev.Cause = fmt.Sprintf("provisioned through BMC %s: one-time %s boot (%s), %s", st.ID, prov.Target, prov.Mode, prov.Reset)
		applied, applyErr = m.cfg.Machines.Apply(ctx, machineID, ev)
	})
	if err != nil {
		return p, err
	}
	m.pollSoon(st.ID)
	p.MachineID, p.BMCID, p.State = machineID, st.ID, applied
	err = applyErr
	if err != nil && !errors.Is(err, domain.ErrNoChange) {
		return p, fmt.Errorf("provision %s: the machine is rebooting into the network, but its lifecycle did not follow: %w", machineID, err)
	}
	m.log.Info("machine provisioned through its BMC", "machine_id", machineID, "bmc_id", st.ID,
		"boot_target", p.Target, "boot_mode", p.Mode, "reset_type", p.Reset, "notes", p.Notes)
	return p, nil
}

// armWithoutBMC provisions a machine that has no BMC: nothing can reboot
// it, so only its lifecycle is armed, and it installs at its next network
// boot, which someone at the rack starts.
func (m *Manager) armWithoutBMC(ctx context.Context, machineID string, ev domain.Event) (Provisioned, error) {
	ev.Cause = "provisioned without a BMC: it installs at its next network boot"
	p := Provisioned{MachineID: machineID, Notes: []string{"the machine has no BMC: it installs at its next network boot; power-cycle it into its network boot yourself"}}
	var err error
	p.State, err = m.cfg.Machines.Apply(ctx, machineID, ev)
	if err != nil && !errors.Is(err, domain.ErrNoChange) {
		return p, fmt.Errorf("provision %s: %w", machineID, err)
	}
	m.log.Info("machine provisioned without a BMC: it installs at its next network boot", "machine_id", machineID)
	return p, nil
}

func (m *Manager) pollSoon(bmcID string) {
	if t, err := m.target(bmcID); err == nil {
		t.refreshSoon()
	}
}

func (m *Manager) actionError(t *target, what string, err error) error {
	_, msg := describe(err, t.reg.Username, m.cfg.Poll.Timeout)
	return &ActionError{BMC: t.reg.ID, Action: what, Message: msg, Err: err}
}

// ActionError is an operator action a BMC did not carry out.
type ActionError struct {
	BMC, Action, Message string
	Err                  error
}

func (e *ActionError) Error() string { return e.Action + " via BMC " + e.BMC + ": " + e.Message }
func (e *ActionError) Unwrap() error { return e.Err }

// system reads the BMC's system at uri, or its first one.
func system(c *gofish.APIClient, uri string) (*schemas.ComputerSystem, error) {
	if uri != "" {
		return schemas.GetObject[schemas.ComputerSystem](c, uri)
	}
	systems, err := c.Service.Systems()
	if err != nil {
		return nil, err
	}
	if len(systems) == 0 {
		return nil, errors.New("the BMC manages no computer system")
	}
	slices.SortFunc(systems, func(a, b *schemas.ComputerSystem) int { return strings.Compare(a.ODataID, b.ODataID) })
	return systems[0], nil
}

// netbootOnce sets a one-time network boot and power-cycles the system (or
// powers it on).
func netbootOnce(c *gofish.APIClient, uri string, o ProvisionOptions, httpBootURI string) (Provisioned, error) {
	var p Provisioned
	sys, err := system(c, uri)
	if err != nil {
		return p, err
	}
	p.Target, p.Mode = bootTarget(sys, o, &p.Notes), cmp.Or(o.Mode, string(sys.Boot.BootSourceOverrideMode), "UEFI")
	if p.Target != string(schemas.UefiHTTPBootSource) {
		httpBootURI = ""
	}
	p.Persistent, err = setBootOnce(c, sys, p.Target, p.Mode, httpBootURI, &p.Notes)
	var refused *httpBootRefused
	if errors.As(err, &refused) {
		p.Notes = append(p.Notes, fmt.Sprintf("the BMC refused UEFI HTTP boot (%s): booting with PXE", refused.msg))
		p.Target = string(schemas.PxeBootSource)
		p.Persistent, err = setBootOnce(c, sys, p.Target, p.Mode, "", &p.Notes)
	}
	if err != nil {
		return p, fmt.Errorf("set one-time %s boot: %w", p.Target, err)
	}
	want := PowerRestart
	if sys.PowerState == schemas.OffPowerState {
		want = PowerOn
	}
	if p.Reset, err = resetSystem(sys, want.resetTypes()); err != nil {
		return p, fmt.Errorf("one-time %s boot is set, but %w", p.Target, err)
	}
	return p, nil
}

// bootTarget is UefiHttp when asked for and offered, else Pxe.
func bootTarget(sys *schemas.ComputerSystem, o ProvisionOptions, notes *[]string) string {
	allowed := sys.Boot.AllowableBootSourceOverrideTargetValues
	if o.HTTPBoot {
		if len(allowed) == 0 || slices.Contains(allowed, schemas.UefiHTTPBootSource) {
			return string(schemas.UefiHTTPBootSource)
		}
		*notes = append(*notes, "the BMC does not offer UefiHttp as a boot target: booting with PXE")
	}
	return string(schemas.PxeBootSource)
}

// setBootOnce PATCHes the boot override and reads it back. gofish sends
// the ETag it read (and falls back to a @Redfish.Settings resource); the
// quirks handled here are a stale ETag (412: read again, retry once), a
// BMC that wants If-Match but gave no ETag (428: If-Match *), and one that
// refuses BootSourceOverrideMode (400: retry without it). persistent says
// the BMC keeps the override Continuous (some store Once that way).
func setBootOnce(c *gofish.APIClient, sys *schemas.ComputerSystem, target, mode, httpBootURI string, notes *[]string) (persistent bool, err error) {
	boot := &schemas.Boot{
		BootSourceOverrideEnabled: schemas.OnceBootSourceOverrideEnabled,
		BootSourceOverrideTarget:  schemas.BootSource(target),
		BootSourceOverrideMode:    schemas.BootSourceOverrideMode(mode),
		HTTPBootURI:               httpBootURI,
	}
	err = sys.SetBoot(boot)
	switch status(err) {
	case http.StatusPreconditionFailed:
		*notes = append(*notes, "the BMC's ETag changed between read and write (412): read it again")
		if sys, err = schemas.GetObject[schemas.ComputerSystem](c, sys.ODataID); err == nil {
			err = sys.SetBoot(boot)
		}
	case http.StatusPreconditionRequired:
		*notes = append(*notes, "the BMC requires If-Match but gave no ETag (428): sent If-Match *")
		var resp *http.Response
		if resp, err = c.PatchWithHeaders(sys.ODataID, struct{ Boot *schemas.Boot }{boot}, map[string]string{"If-Match": "*"}); err == nil {
			resp.Body.Close()
		}
	case http.StatusBadRequest:
		msg := badRequestMessage(err)
		if target == string(schemas.UefiHTTPBootSource) && !strings.Contains(msg, "BootSourceOverrideMode") {
			return false, &httpBootRefused{msg: msg}
		}
		*notes = append(*notes, fmt.Sprintf("the BMC refused BootSourceOverrideMode %s (%s): set the target alone", mode, msg))
		boot.BootSourceOverrideMode = ""
		err = sys.SetBoot(boot)
	}
	if err != nil {
		return false, err
	}
	got, err := schemas.GetObject[schemas.ComputerSystem](c, sys.ODataID)
	if err != nil {
		return false, fmt.Errorf("read the override back: %w", err)
	}
	switch {
	case string(got.Boot.BootSourceOverrideTarget) != target:
		return false, fmt.Errorf("the BMC accepted the override but keeps %s/%s", got.Boot.BootSourceOverrideEnabled, got.Boot.BootSourceOverrideTarget)
	case got.Boot.BootSourceOverrideEnabled == schemas.ContinuousBootSourceOverrideEnabled:
		*notes = append(*notes, "the BMC keeps the override Continuous, not Once: Slipway clears it once the machine has netbooted")
		return true, nil
	case got.Boot.BootSourceOverrideEnabled != schemas.OnceBootSourceOverrideEnabled:
		return false, fmt.Errorf("the BMC accepted the override but keeps %s/%s", got.Boot.BootSourceOverrideEnabled, got.Boot.BootSourceOverrideTarget)
	}
	return false, nil
}

// httpBootRefused: the BMC would not take a UEFI HTTP boot override (its
// target or its URI), in its words.
type httpBootRefused struct{ msg string }

func (e *httpBootRefused) Error() string { return "the BMC refused UEFI HTTP boot: " + e.msg }

// badRequestMessage is what the BMC said of a 400.
func badRequestMessage(err error) string {
	var re *schemas.Error
	if errors.As(err, &re) {
		return redfishMessage(re)
	}
	return err.Error()
}

func status(err error) int {
	var re *schemas.Error
	if errors.As(err, &re) {
		return re.HTTPReturnedStatusCode
	}
	return 0
}

// resetSystem runs the first of the wanted reset types the system allows.
func resetSystem(sys *schemas.ComputerSystem, wanted []schemas.ResetType) (string, error) {
	allowed, err := sys.GetSupportedResetTypes()
	if err != nil || len(allowed) == 0 {
		allowed = wanted // no annotation and no ActionInfo: try the first
	}
	for _, rt := range wanted {
		if slices.Contains(allowed, rt) {
			if _, err := sys.Reset(rt); err != nil {
				return "", fmt.Errorf("reset %s: %w", rt, err)
			}
			return string(rt), nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return "", fmt.Errorf("the system offers none of the reset types for this (it has %s)", strings.Join(names, ", "))
}
