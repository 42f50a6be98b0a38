package trays

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func version(v string) *string { return &v }

// Every constraint of NICo's tray firmware request, as its reference
// states it.
func TestRequestRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		req   Request
		field string // "" for a valid request
		says  string
	}{
		{"no filter: every tray", Request{}, "", ""},
		{"rackId", Request{Filter: &Filter{RackID: "r1"}}, "", ""},
		{"rackName", Request{Filter: &Filter{RackName: "Rack 1"}}, "", ""},
		{"rackId and rackName", Request{Filter: &Filter{RackID: "r1", RackName: "Rack 1"}}, "filter", "mutually exclusive"},
		{"rack and ids", Request{Filter: &Filter{RackID: "r1", IDs: []string{"m1"}}}, "filter", "cannot be combined"},
		{"rackName and componentIds", Request{Filter: &Filter{RackName: "Rack 1", ComponentIDs: []string{"b1"}, Type: Compute}}, "filter", "cannot be combined"},
		{"ids alone", Request{Filter: &Filter{IDs: []string{"m1"}}}, "", ""},
		{"componentIds without type", Request{Filter: &Filter{ComponentIDs: []string{"b1"}}}, "filter.type", "componentIds requires type"},
		{"componentIds with type", Request{Filter: &Filter{ComponentIDs: []string{"b1"}, Type: Switch}}, "", ""},
		{"an unknown type", Request{Filter: &Filter{Type: "gpu"}}, "filter.type", `unknown tray type "gpu"`},
		{"targets without version", Request{Targets: []string{"bmc"}}, "version", "targets require version"},
		{"targets with an empty version", Request{Targets: []string{"bmc"}, Version: version("")}, "version", "targets require version"},
		{"targets with version", Request{Targets: []string{"bmc", "bios"}, Version: version("2.0")}, "", ""},
		{"dpu needs no version", Request{Targets: []string{DPU}}, "", ""},
		{"dpu and bmc need one", Request{Targets: []string{DPU, "bmc"}}, "version", "targets require version"},
		{"an unknown target", Request{Targets: []string{"gpu"}, Version: version("1")}, "targets", `unknown target "gpu"`},
		{"upper case is unknown", Request{Targets: []string{"BMC"}, Version: version("1")}, "targets", `unknown target "BMC"`},
		{"switch targets", Request{Filter: &Filter{Type: Switch}, Targets: []string{"bmc", "cpld", "bios", "nvos"}, Version: version("1")}, "", ""},
		{"a power shelf has no bios", Request{Filter: &Filter{Type: PowerShelf}, Targets: []string{"bios"}, Version: version("1")}, "targets", `unknown target "bios" for powershelf trays (pmc, psu)`},
		{"power shelf targets", Request{Filter: &Filter{Type: PowerShelf}, Targets: []string{"pmc", "psu"}, Version: version("1")}, "", ""},
		{"a compute tray has no nvos", Request{Filter: &Filter{Type: Compute}, Targets: []string{"nvos"}, Version: version("1")}, "targets", `for compute trays`},
		{"dpu on a switch", Request{Filter: &Filter{Type: Switch}, Targets: []string{DPU}}, "targets", `unknown target "dpu" for switch trays`},
		{"a ruleId that is not a UUID", Request{RuleID: "rule-1"}, "ruleId", "not a UUID"},
		{"a ruleId", Request{RuleID: "6f1c2e8a-4b0d-4c47-9d1e-2a7f3c5b8e90"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Check()
			var re *RuleError
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.field != "" && (!errors.As(err, &re) || re.Field != tc.field || !strings.Contains(re.Message, tc.says)):
				t.Errorf("got %v; want a %s error saying %q", err, tc.field, tc.says)
			}
		})
	}
}

// rack is two racks: r1 with a power shelf, a switch and three compute
// trays (out of slot order, one in no known slot, as a Drydock design
// places a node), r2 with one compute tray.
func rack() []Tray {
	return []Tray{
		{ID: "cx", Type: Compute, RackID: "r1", RackName: "Rack 1", ComponentID: "b-cx"},
		{ID: "c2", Type: Compute, RackID: "r1", RackName: "Rack 1", Position: 4, PositionKnown: true, ComponentID: "b-c2"},
		{ID: "c1", Type: Compute, RackID: "r1", RackName: "Rack 1", Position: 3, PositionKnown: true, ComponentID: "b-c1"},
		{ID: "sw", Type: Switch, RackID: "r1", RackName: "Rack 1", Position: 2, PositionKnown: true, ComponentID: "b-sw"},
		{ID: "ps", Type: PowerShelf, RackID: "r1", RackName: "Rack 1", Position: 1, PositionKnown: true, ComponentID: "b-ps"},
		{ID: "c9", Type: Compute, RackID: "r2", RackName: "Rack 2", Position: 1, PositionKnown: true, ComponentID: "b-c9"},
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"a whole rack, every target but dpu, power and network first", Request{Filter: &Filter{RackID: "r1"}},
			"ps:pmc ps:psu sw:bmc sw:cpld sw:bios sw:nvos c1:bmc c1:bios c2:bmc c2:bios cx:bmc cx:bios"},
		{"by rack name", Request{Filter: &Filter{RackName: "Rack 2"}}, "c9:bmc c9:bios"},
		{"the site", Request{Targets: []string{"bmc"}, Version: version("2")}, "sw:bmc c1:bmc c2:bmc cx:bmc c9:bmc"},
		{"trays by id", Request{Filter: &Filter{IDs: []string{"c2", "ps"}}, Targets: []string{"psu", "bios"}, Version: version("2")}, "ps:psu c2:bios"},
		{"components of a type", Request{Filter: &Filter{ComponentIDs: []string{"b-c1", "b-sw"}, Type: Compute}, Targets: []string{"bmc"}, Version: version("2")}, "c1:bmc"},
		{"dpu only when asked", Request{Filter: &Filter{Type: Compute}, Targets: []string{DPU}}, "c1:dpu c2:dpu cx:dpu c9:dpu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Plan(tc.req, rack())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range plan {
				got = append(got, fmt.Sprintf("%s:%s", u.Tray.ID, u.Target))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("plan %q\nwant %q", strings.Join(got, " "), tc.want)
			}
		})
	}
	if _, err := Plan(Request{Filter: &Filter{RackID: "r7"}}, rack()); !errors.Is(err, ErrNothingSelected) {
		t.Errorf("an empty selection: %v", err)
	}
	if _, err := Plan(Request{Filter: &Filter{RackID: "r1", RackName: "x"}}, rack()); err == nil {
		t.Error("Plan did not check the request")
	}
}
