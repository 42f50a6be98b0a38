package trays

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/slipway/slipway/appliance/domain"
)

// Tray types, as NICo names them.
const (
	Compute    = "compute"
	Switch     = "switch"
	PowerShelf = "powershelf"
)

// DPU is the compute tray target that asks for DPU reprovisioning: never
// implied by an empty target list, and it takes no version.
const DPU = "dpu"

// targets are each tray type's firmware targets, as NICo's per-tray-type
// enums list them.
var targets = map[string][]string{
	Switch:     {"bmc", "cpld", "bios", "nvos"},
	PowerShelf: {"pmc", "psu"},
	Compute:    {"bmc", "bios", DPU},
}

// Types are the tray types, in the order a rack is updated: what powers
// and connects the compute trays first.
var Types = []string{PowerShelf, Switch, Compute}

// TargetsOf are the targets a tray type has.
func TargetsOf(trayType string) []string { return slices.Clone(targets[trayType]) }

// defaultTargets are what an empty target list means for a tray type:
// everything but dpu.
func defaultTargets(trayType string) []string {
	return slices.DeleteFunc(TargetsOf(trayType), func(t string) bool { return t == DPU })
}

// Filter selects trays, as NICo's filter does. The zero Filter selects
// every tray of the site.
type Filter struct {
	RackID       string   `json:"rackId,omitempty"`
	RackName     string   `json:"rackName,omitempty"`
	IDs          []string `json:"ids,omitempty"`
	ComponentIDs []string `json:"componentIds,omitempty"`
	Type         string   `json:"type,omitempty"`
}

// RuleError is a request NICo's rules refuse: 400, with the field at
// fault and what to do.
type RuleError struct {
	Field   string
	Message string
}

func (e *RuleError) Error() string { return e.Field + ": " + e.Message }

func ruleError(field, format string, args ...any) error {
	return &RuleError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Check applies NICo's filter constraints.
func (f Filter) Check() error {
	rack := f.RackID != "" || f.RackName != ""
	switch {
	case f.RackID != "" && f.RackName != "":
		return ruleError("filter", "rackId and rackName are mutually exclusive")
	case rack && (len(f.IDs) > 0 || len(f.ComponentIDs) > 0):
		return ruleError("filter", "rackId/rackName cannot be combined with ids/componentIds (rack-level vs component-level targeting)")
	case len(f.ComponentIDs) > 0 && f.Type == "":
		return ruleError("filter.type", "componentIds requires type to be specified")
	case f.Type != "" && targets[f.Type] == nil:
		return ruleError("filter.type", "unknown tray type %q (compute, switch or powershelf)", f.Type)
	}
	return nil
}

// Request is one firmware update across trays.
type Request struct {
	SiteID  string   `json:"siteId"`
	Filter  *Filter  `json:"filter"`
	Version *string  `json:"version"`
	Targets []string `json:"targets"`
	RuleID  string   `json:"ruleId"`
	// OverrideReadinessCheck proceeds with trays that are not ready.
	OverrideReadinessCheck bool `json:"overrideReadinessCheck"`
}

// Check applies NICo's rules for a request: the filter's, known target
// names (for the filter's tray type when it names one), and a version for
// every target but dpu.
func (r Request) Check() error {
	f := r.filter()
	if err := f.Check(); err != nil {
		return err
	}
	for _, t := range r.Targets {
		if f.Type != "" && !slices.Contains(targets[f.Type], t) {
			return ruleError("targets", "unknown target %q for %s trays (%s)", t, f.Type, strings.Join(targets[f.Type], ", "))
		}
		if !knownTarget(t) {
			return ruleError("targets", "unknown target %q (switch: %s; powershelf: %s; compute: %s)", t,
				strings.Join(targets[Switch], ", "), strings.Join(targets[PowerShelf], ", "), strings.Join(targets[Compute], ", "))
		}
	}
	onlyDPU := len(r.Targets) > 0 && !slices.ContainsFunc(r.Targets, func(t string) bool { return t != DPU })
	if len(r.Targets) > 0 && !onlyDPU && r.version() == "" {
		return ruleError("version", "targets require version to be set")
	}
	if r.RuleID != "" && !isUUID(r.RuleID) {
		return ruleError("ruleId", "%q is not a UUID", r.RuleID)
	}
	return nil
}

func (r Request) filter() Filter {
	if r.Filter == nil {
		return Filter{}
	}
	return *r.Filter
}

func (r Request) version() string {
	if r.Version == nil {
		return ""
	}
	return *r.Version
}

func knownTarget(t string) bool {
	for _, list := range targets {
		if slices.Contains(list, t) {
			return true
		}
	}
	return false
}

// Tray is a machine in a rack, as NICo lists it.
type Tray struct {
	ID              string // the machine id
	ComponentID     string // its BMC's id; "" without one
	Type            string
	Name            string // its hostname, else its id
	Manufacturer    string
	Model           string
	SerialNumber    string
	FirmwareVersion string // its BMC's firmware version
	PowerState      string
	Position        int  // its tray slot, when PositionKnown
	PositionKnown   bool // its rack entry gives a slot (a Drydock design gives none)
	BMCs            []string
	RackID          string
	RackName        string
	// DPUs are the machine ids of the DPUs the inventory puts in it.
	DPUs []string
	// Ready: its lifecycle is ready and its BMC answered its last poll.
	Ready    bool
	NotReady string // why not, when not
}

// Select keeps the trays f selects, in rack and slot order.
func Select(f Filter, all []Tray) []Tray {
	var out []Tray
	for _, t := range all {
		switch {
		case f.RackID != "" && t.RackID != f.RackID,
			f.RackName != "" && t.RackName != f.RackName,
			len(f.IDs) > 0 && !slices.Contains(f.IDs, t.ID),
			len(f.ComponentIDs) > 0 && !slices.Contains(f.ComponentIDs, t.ComponentID),
			f.Type != "" && t.Type != f.Type:
			continue
		}
		out = append(out, t)
	}
	slices.SortStableFunc(out, func(a, b Tray) int {
		if c := strings.Compare(a.RackID, b.RackID); c != 0 {
			return c
		}
		return domain.CompareSlots(a.Position, a.PositionKnown, b.Position, b.PositionKnown)
	})
	return out
}

// Update is one target of one tray to update.
type Update struct {
	Tray   Tray
	Target string
}

// ErrNothingSelected: the filter selects no tray (or no tray has a target
// the request names).
var ErrNothingSelected = errors.New("the filter selects no tray to update")

// Plan is a checked request's updates over the trays it selects, in the
// order a rack is updated (power shelves, switches, then compute trays).
// A target another tray type has is skipped on a tray that lacks it.
func Plan(r Request, all []Tray) ([]Update, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	var out []Update
	for _, typ := range Types {
		for _, t := range Select(r.filter(), all) {
			if t.Type != typ {
				continue
			}
			want := r.Targets
			if len(want) == 0 {
				want = defaultTargets(t.Type)
			}
			for _, target := range want {
				if slices.Contains(targets[t.Type], target) {
					out = append(out, Update{Tray: t, Target: target})
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, ErrNothingSelected
	}
	return out, nil
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
