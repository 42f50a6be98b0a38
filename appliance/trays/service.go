package trays

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/firmware"
	"github.com/slipway/slipway/appliance/task"
)

// BMCs are the BMCs' last findings.
type BMCs interface {
	Statuses() []bmc.Status
}

// Firmware is the image library and the updater.
type Firmware interface {
	Images(ctx context.Context) ([]firmware.Image, error)
	StartFor(ctx context.Context, machineID, imageID string, o firmware.Origin) (task.Task, error)
	StartDPU(ctx context.Context, d firmware.DPUReprovision) (task.Task, error)
}

// Service lists the site's trays and updates their firmware.
type Service struct {
	Machines domain.MachinePager
	BMCs     BMCs
	Firmware Firmware
	// SiteID is this box's site (nico.site_id); "" takes no request.
	SiteID string
	// Parallel is how many updates of one request run at once
	// (nico.parallel_updates); 0: no limit.
	Parallel int
	// DPUOSVersion is the DPU_OS image version target dpu installs
	// (nico.dpu.os_version); "" refuses dpu. DPUBufferTime is how long the
	// host stays off after (nico.dpu.buffer_time).
	DPUOSVersion  string
	DPUBufferTime time.Duration
}

// ErrUnsupported: a valid request this box cannot carry out.
var ErrUnsupported = errors.New("not supported by this box")

// Trays are the machines the inventory places in racks.
func (s *Service) Trays(ctx context.Context) ([]Tray, error) {
	byMachine := s.bmcsByMachine()
	machines, err := domain.AllMachines(ctx, s.Machines)
	if err != nil {
		return nil, err
	}
	dpus := map[string][]string{}
	for _, m := range machines {
		if m.DPUOf != "" {
			dpus[m.DPUOf] = append(dpus[m.DPUOf], m.ID)
		}
	}
	var out []Tray
	for _, m := range machines {
		if m.RackID == "" && m.RackName == "" || m.DPUOf != "" {
			continue // not in a rack, or part of its host's tray: not a tray
		}
		t := trayOf(m, byMachine[m.ID])
		t.DPUs = dpus[m.ID]
		out = append(out, t)
	}
	return Select(Filter{}, out), nil
}

// bmcsByMachine are the BMCs' last findings by the machine each manages.
func (s *Service) bmcsByMachine() map[string]bmc.Status {
	out := map[string]bmc.Status{}
	for _, b := range s.BMCs.Statuses() {
		if b.MachineID != "" {
			out[b.MachineID] = b
		}
	}
	return out
}

func trayOf(m domain.MachineRecord, b bmc.Status) Tray {
	position, known := m.TrayPlace()
	t := Tray{ID: m.ID, Type: m.TrayType, Name: m.Hostname, Position: position, PositionKnown: known, RackID: m.RackID, RackName: m.RackName,
		PowerState: b.Inventory.PowerState, Manufacturer: b.Inventory.Manufacturer, Model: b.Inventory.Model,
		SerialNumber: b.Inventory.Serial, FirmwareVersion: b.Inventory.BMCVersion, BMCs: []string{}}
	if t.Type == "" {
		t.Type = Compute
	}
	if t.Name == "" {
		t.Name = m.ID
	}
	if b.ID != "" {
		t.ComponentID, t.BMCs = b.ID, []string{b.Endpoint}
	}
	switch {
	case m.StateName != domain.StateReady:
		t.NotReady = "its lifecycle state is " + m.StateName
	case b.ID == "":
		t.NotReady = "it has no BMC"
	case !b.Reachable:
		t.NotReady = "its BMC did not answer its last poll"
	default:
		t.Ready = true
	}
	return t
}

// Update checks a request against NICo's rules and this box (its site, the
// trays' readiness, an image in the library for each target and version,
// the component in each tray's firmware inventory), then starts one
// firmware update per tray and target, and returns their task ids. Nothing
// starts unless every update can.
func (s *Service) Update(ctx context.Context, r Request) ([]string, error) {
	if err := s.checkSite(r.SiteID); err != nil {
		return nil, err
	}
	all, err := s.Trays(ctx)
	if err != nil {
		return nil, err
	}
	updates, err := Plan(r, all)
	if err != nil {
		return nil, err
	}
	images, err := s.Firmware.Images(ctx)
	if err != nil {
		return nil, err
	}
	byMachine := s.bmcsByMachine()
	chosen := make([]string, len(updates))
	for i, u := range updates {
		if chosen[i], err = s.check(u, r, images, byMachine); err != nil {
			return nil, err
		}
	}
	var ids []string
	batch := uuid.NewString()
	for i, u := range updates {
		origin := firmware.Origin{RuleID: r.RuleID, Batch: batch, Group: slices.Index(Types, u.Tray.Type), Limit: s.Parallel}
		var t task.Task
		if u.Target == DPU {
			t, err = s.Firmware.StartDPU(ctx, firmware.DPUReprovision{HostID: u.Tray.ID, DPUIDs: u.Tray.DPUs, ImageID: chosen[i],
				BufferTime: s.DPUBufferTime, Origin: origin})
		} else {
			t, err = s.Firmware.StartFor(ctx, u.Tray.ID, chosen[i], origin)
		}
		if err != nil {
			return ids, fmt.Errorf("tray %s, target %s (after %d updates started): %w", u.Tray.ID, u.Target, len(ids), err)
		}
		ids = append(ids, t.ID)
	}
	return ids, nil
}

func (s *Service) checkSite(id string) error {
	switch {
	case s.SiteID == "":
		return ruleError("siteId", "this box has no site id: set nico.site_id in its configuration")
	case !isUUID(id):
		return ruleError("siteId", "%q is not a UUID", id)
	case !strings.EqualFold(id, s.SiteID):
		return ruleError("siteId", "site %s is not this box's site (%s)", id, s.SiteID)
	}
	return nil
}

// check says which image updates u, or why it cannot be updated.
func (s *Service) check(u Update, r Request, images []firmware.Image, byMachine map[string]bmc.Status) (string, error) {
	b := byMachine[u.Tray.ID]
	if !u.Tray.Ready && !r.OverrideReadinessCheck {
		return "", ruleError("overrideReadinessCheck", "tray %s is not ready: %s (set overrideReadinessCheck to proceed)", u.Tray.ID, u.Tray.NotReady)
	}
	if u.Tray.ComponentID == "" {
		return "", ruleError("filter", "tray %s has no BMC to update its firmware through", u.Tray.ID)
	}
	if u.Target == DPU {
		return s.checkDPUs(u, r, images, byMachine)
	}
	component := ""
	for _, f := range b.Inventory.Firmware {
		if strings.EqualFold(f.ID, u.Target) {
			component = f.ID
		}
	}
	if component == "" {
		return "", ruleError("targets", "tray %s's BMC reports no %s firmware (its inventory: %s)", u.Tray.ID, u.Target, firmwareIDs(b))
	}
	return newestImage(images, component, r.version())
}

// checkDPUs says which image reprovisions a compute tray's DPUs (the site's
// DPU OS version: NICo's request names none), or why they cannot be.
func (s *Service) checkDPUs(u Update, r Request, images []firmware.Image, byMachine map[string]bmc.Status) (string, error) {
	if s.DPUOSVersion == "" {
		return "", fmt.Errorf("tray %s: DPU reprovisioning (target dpu) needs the site's DPU OS version, nico.dpu.os_version: %w", u.Tray.ID, ErrUnsupported)
	}
	if len(u.Tray.DPUs) == 0 {
		return "", ruleError("targets", "tray %s has no DPU: list its DPUs in the inventory (a machine with dpu_of: %s and its own bmc)", u.Tray.ID, u.Tray.ID)
	}
	for _, id := range u.Tray.DPUs {
		switch b := byMachine[id]; {
		case b.ID == "":
			return "", ruleError("targets", "DPU %s of tray %s has no BMC to install its operating system through", id, u.Tray.ID)
		case !b.Reachable && !r.OverrideReadinessCheck:
			return "", ruleError("overrideReadinessCheck", "DPU %s of tray %s is not ready: its BMC did not answer its last poll (set overrideReadinessCheck to proceed)", id, u.Tray.ID)
		}
	}
	return newestImage(images, firmware.DPUComponent, s.DPUOSVersion)
}

// newestImage is the newest image of the component at version; without a
// version, the newest of the component (the bundle).
func newestImage(images []firmware.Image, component, version string) (string, error) {
	var best *firmware.Image
	for i, im := range images {
		if strings.EqualFold(im.Component, component) && (version == "" || im.Version == version) &&
			(best == nil || im.CreatedAt.After(best.CreatedAt)) {
			best = &images[i]
		}
	}
	if best != nil {
		return best.ID, nil
	}
	return "", ruleError("version", "no %s firmware image of version %q in the library: upload one (POST /api/v1/firmware?component=%s&version=…)",
		component, version, component)
}

func firmwareIDs(b bmc.Status) string {
	var ids []string
	for _, f := range b.Inventory.Firmware {
		ids = append(ids, f.ID)
	}
	if len(ids) == 0 {
		return "none read yet"
	}
	return strings.Join(ids, ", ")
}
