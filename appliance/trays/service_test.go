package trays

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/firmware"
	"github.com/slipway/slipway/appliance/task"
)

const site = "6f1c2e8a-4b0d-4c47-9d1e-2a7f3c5b8e90"

type machineList []domain.MachineRecord

func (l machineList) Machines(context.Context, domain.MachineFilter) ([]domain.MachineRecord, error) {
	return l, nil
}

type bmcList []bmc.Status

func (l bmcList) Statuses() []bmc.Status { return l }

// started records what the service asked the updater for.
type started struct {
	images []firmware.Image
	dpus   []firmware.DPUReprovision
}

func (s *started) Images(context.Context) ([]firmware.Image, error) { return s.images, nil }
func (s *started) StartFor(context.Context, string, string, firmware.Origin) (task.Task, error) {
	return task.Task{ID: "fw"}, nil
}
func (s *started) StartDPU(_ context.Context, d firmware.DPUReprovision) (task.Task, error) {
	s.dpus = append(s.dpus, d)
	return task.Task{ID: "dpu"}, nil
}

// hostWithDPUs is a ready compute tray c1 with DPUs c1-dpu0 and c1-dpu1,
// each with a BMC; edit changes the DPUs' BMCs.
func hostWithDPUs(editBMCs func([]bmc.Status) []bmc.Status) (machineList, bmcList) {
	ready := func(id, dpuOf string) domain.MachineRecord {
		m := domain.MachineRecord{ID: id, StateName: domain.StateReady}
		m.DPUOf = dpuOf
		if dpuOf == "" {
			m.RackID, m.TrayType = "r1", Compute
		}
		return m
	}
	machines := machineList{ready("c1", ""), ready("c1-dpu0", "c1"), ready("c1-dpu1", "c1")}
	bmcs := []bmc.Status{{ID: "b-c1", MachineID: "c1", Reachable: true},
		{ID: "b-d0", MachineID: "c1-dpu0", Reachable: true}, {ID: "b-d1", MachineID: "c1-dpu1", Reachable: true}}
	if editBMCs != nil {
		bmcs = editBMCs(bmcs)
	}
	return machines, bmcs
}

// Target dpu: what the service checks before it starts anything, and what
// it starts.
func TestDPUReprovisioningChecks(t *testing.T) {
	bfb := firmware.Image{ID: "bfb-4.9.1-0123456789", Component: "DPU_OS", Version: "4.9.1", CreatedAt: time.Now()}
	request := Request{SiteID: site, Filter: &Filter{IDs: []string{"c1"}}, Targets: []string{DPU}}
	override := request
	override.OverrideReadinessCheck = true
	for _, tc := range []struct {
		name    string
		req     Request
		version string
		images  []firmware.Image
		edit    func([]bmc.Status) []bmc.Status
		says    string // "" when it starts
	}{
		{"starts with the site's version", request, "4.9.1", []firmware.Image{bfb}, nil, ""},
		{"no site version", request, "", []firmware.Image{bfb}, nil, "nico.dpu.os_version"},
		{"no image of the site's version", request, "5.0", []firmware.Image{bfb}, nil, `no DPU_OS firmware image of version "5.0"`},
		{"a DPU without a BMC", request, "4.9.1", []firmware.Image{bfb}, func(b []bmc.Status) []bmc.Status { return b[:2] },
			"DPU c1-dpu1 of tray c1 has no BMC"},
		{"a DPU's BMC unreachable", request, "4.9.1", []firmware.Image{bfb}, func(b []bmc.Status) []bmc.Status { b[1].Reachable = false; return b },
			"DPU c1-dpu0 of tray c1 is not ready"},
		{"an unreachable DPU BMC, overridden", override, "4.9.1", []firmware.Image{bfb}, func(b []bmc.Status) []bmc.Status { b[1].Reachable = false; return b }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machines, bmcs := hostWithDPUs(tc.edit)
			fw := &started{images: tc.images}
			s := &Service{Machines: machines, BMCs: bmcs, Firmware: fw, SiteID: site, DPUOSVersion: tc.version, DPUBufferTime: 5 * time.Second}
			ids, err := s.Update(context.Background(), tc.req)
			if tc.says != "" {
				if err == nil || !strings.Contains(err.Error(), tc.says) || len(fw.dpus) != 0 {
					t.Fatalf("got %v, %v, started %v; want an error saying %q", ids, err, fw.dpus, tc.says)
				}
				return
			}
			if err != nil || len(ids) != 1 || len(fw.dpus) != 1 {
				t.Fatalf("got %v, %v, started %v", ids, err, fw.dpus)
			}
			d := fw.dpus[0]
			if d.HostID != "c1" || strings.Join(d.DPUIDs, ",") != "c1-dpu0,c1-dpu1" || d.ImageID != bfb.ID || d.BufferTime != 5*time.Second || d.Origin.Batch == "" {
				t.Errorf("started %+v", d)
			}
		})
	}
	// A tray without DPUs is told how to list them; without the site's
	// version the request is one this box cannot carry out.
	machines, bmcs := hostWithDPUs(nil)
	s := &Service{Machines: machines[:1], BMCs: bmcs, Firmware: &started{images: []firmware.Image{bfb}}, SiteID: site, DPUOSVersion: "4.9.1"}
	var rule *RuleError
	if _, err := s.Update(context.Background(), request); !errors.As(err, &rule) || !strings.Contains(err.Error(), "dpu_of: c1") {
		t.Errorf("a tray without DPUs: %v", err)
	}
	s.DPUOSVersion = ""
	if _, err := s.Update(context.Background(), request); !errors.Is(err, ErrUnsupported) {
		t.Errorf("no site version: %v", err)
	}
	// The DPUs are part of their host's tray.
	list, _ := (&Service{Machines: machines, BMCs: bmcs}).Trays(context.Background())
	if len(list) != 1 || list[0].ID != "c1" || len(list[0].DPUs) != 2 {
		t.Errorf("trays %+v", list)
	}
}
