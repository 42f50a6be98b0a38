package native

import (
	"time"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/bmc"
)

// The native API's JSON for the model's BMC, user and session read types:
// the API's contract, pinned by the golden files, whatever the model's
// types become.

type bmcJSON struct {
	ID        string `json:"bmc_id"`
	Endpoint  string `json:"endpoint"`
	System    string `json:"system,omitempty"` // the system registered, on a BMC that manages several
	Insecure  bool   `json:"insecure_skip_verify,omitempty"`
	MachineID string `json:"machine_id,omitempty"`
	LinkedBy  string `json:"linked_by,omitempty"`
	Source    string `json:"source"`
	Reachable bool   `json:"reachable"`
	// Polled: the BMC was polled at least once (a new one is not yet: it
	// is not unreachable).
	Polled    bool          `json:"polled"`
	LastError string        `json:"last_error,omitempty"`
	Inventory inventoryJSON `json:"inventory"`
	ChangedAt time.Time     `json:"changed_at,omitzero"`
}

type inventoryJSON struct {
	System       string         `json:"system,omitempty"`
	Systems      []string       `json:"systems,omitempty"` // all of them, on a BMC that manages several
	PowerState   string         `json:"power_state,omitempty"`
	Health       string         `json:"health,omitempty"`
	Manufacturer string         `json:"manufacturer,omitempty"`
	Model        string         `json:"model,omitempty"`
	Serial       string         `json:"serial,omitempty"`
	BIOSVersion  string         `json:"bios_version,omitempty"`
	BMCVersion   string         `json:"bmc_version,omitempty"`
	BootMode     string         `json:"boot_mode,omitempty"`
	MACs         []string       `json:"macs,omitempty"`
	Firmware     []firmwareJSON `json:"firmware,omitempty"`
	// Auth is how Slipway logs in (session or basic); Missing, the parts
	// the BMC could not give.
	Auth    string   `json:"auth,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

type firmwareJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Version    string `json:"version"`
	Updateable bool   `json:"updateable"`
}

// toBMCJSON shows a BMC, never its credentials (the model's status holds
// its user name; this shape has no place for it).
func toBMCJSON(s bmc.Status) bmcJSON {
	i := s.Inventory
	inv := inventoryJSON{System: i.System, Systems: i.Systems, PowerState: i.PowerState, Health: i.Health, Manufacturer: i.Manufacturer,
		Model: i.Model, Serial: i.Serial, BIOSVersion: i.BIOSVersion, BMCVersion: i.BMCVersion, BootMode: i.BootMode, MACs: i.MACs,
		Auth: i.Auth, Missing: i.Missing}
	for _, f := range i.Firmware {
		inv.Firmware = append(inv.Firmware, firmwareJSON{ID: f.ID, Name: f.Name, Version: f.Version, Updateable: f.Updateable})
	}
	return bmcJSON{ID: s.ID, Endpoint: s.Endpoint, System: s.System, Insecure: s.Insecure, MachineID: s.MachineID, LinkedBy: s.LinkedBy,
		Source: s.Source, Reachable: s.Reachable, Polled: !s.ChangedAt.IsZero(), LastError: s.LastError, Inventory: inv, ChangedAt: s.ChangedAt}
}

type userJSON struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	Source     string `json:"source"`
	MustChange bool   `json:"must_change_password,omitempty"`
}

func toUserJSON(u auth.User) userJSON {
	return userJSON{Name: u.Name, Role: u.Role, Source: u.Source, MustChange: u.MustChange}
}

type sessionJSON struct {
	Token      string    `json:"token"` // empty for a caller by HTTP basic
	User       string    `json:"user"`
	Role       string    `json:"role"`
	Roles      []string  `json:"roles"`
	Expires    time.Time `json:"expires_at"`
	MustChange bool      `json:"must_change_password,omitempty"`
	CSRF       string    `json:"csrf_token,omitempty"`
}

func toSessionJSON(s auth.Session, csrf string) sessionJSON {
	return sessionJSON{Token: s.Token, User: s.User, Role: s.Role, Roles: s.Roles, Expires: s.Expires, MustChange: s.MustChange, CSRF: csrf}
}

type provisionedJSON struct {
	MachineID string   `json:"machine_id"`
	BMCID     string   `json:"bmc_id"`
	Target    string   `json:"boot_target"`
	Mode      string   `json:"boot_mode"`
	Reset     string   `json:"reset_type"`
	Notes     []string `json:"notes,omitempty"`
}

func toProvisionedJSON(p bmc.Provisioned) provisionedJSON {
	return provisionedJSON{MachineID: p.MachineID, BMCID: p.BMCID, Target: p.Target, Mode: p.Mode, Reset: p.Reset, Notes: p.Notes}
}
