package bmc

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"reflect"
	"strings"
	"time"

	"github.com/slipway/slipway/store"
)

// Inventory is what a poll collects from a BMC. Its JSON is how the store
// keeps it (the bmcs.inventory column, which the machine listing reads the
// power state from), not a door's shape.
type Inventory struct {
	System string `json:"system,omitempty"` // the ComputerSystem's URI
	// Systems are every system the BMC manages, when it manages several
	// (each has a record of its own).
	Systems      []string   `json:"systems,omitempty"`
	PowerState   string     `json:"power_state,omitempty"`
	Health       string     `json:"health,omitempty"`
	Manufacturer string     `json:"manufacturer,omitempty"`
	Model        string     `json:"model,omitempty"`
	Serial       string     `json:"serial,omitempty"`
	BIOSVersion  string     `json:"bios_version,omitempty"`
	BMCVersion   string     `json:"bmc_version,omitempty"`
	BootMode     string     `json:"boot_mode,omitempty"` // UEFI | Legacy, as the system boots
	MemoryMiB    int        `json:"memory_mib,omitempty"`
	CPUCount     int        `json:"cpu_count,omitempty"` // processors (sockets), as Redfish counts them
	MACs         []string   `json:"macs,omitempty"`      // host NICs, canonical lower case
	Firmware     []Firmware `json:"firmware,omitempty"`
	// Auth is how Slipway logs in: "session" where the BMC offers a
	// session service, else "basic".
	Auth string `json:"auth,omitempty"`
	// Missing are the parts the BMC could not give, each with why (a BMC
	// without a firmware inventory): the rest of the poll stands.
	Missing []string `json:"missing,omitempty"`
}

// Firmware is one member of the BMC's firmware inventory.
type Firmware struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Version    string `json:"version"`
	Updateable bool   `json:"updateable"`
}

// Status is a BMC as the model knows it: how to reach it (never its
// password), which machine it manages, and what its last poll found. The
// doors give it their own shapes.
type Status struct {
	ID        string
	Endpoint  string
	System    string // the system managed, as registered ("" for the BMC's first)
	Username  string // part of the credentials: no door shows it
	Insecure  bool
	MachineID string
	LinkedBy  string // config | mac | api
	Source    string // config | discovered | api
	Reachable bool
	LastError string
	Inventory Inventory
	ChangedAt time.Time
}

// sameFindings says whether a poll learned nothing new: then nothing is
// written.
func sameFindings(a, b Status) bool {
	return a.Reachable == b.Reachable && a.LastError == b.LastError && a.MachineID == b.MachineID &&
		a.LinkedBy == b.LinkedBy && reflect.DeepEqual(a.Inventory, b.Inventory)
}

// statusOf is a stored BMC's status. A stored inventory that cannot be
// read (an older shape) is reported and left empty: the next poll reads the
// BMC again and replaces it.
func statusOf(b store.BMC) (Status, error) {
	s := Status{ID: b.ID, Endpoint: b.Endpoint, System: b.System, Username: b.Username, Insecure: b.Insecure, MachineID: b.MachineID,
		LinkedBy: b.LinkedBy, Source: b.Source, Reachable: b.Reachable, LastError: b.LastError, ChangedAt: b.ChangedAt}
	if b.Inventory == "" {
		return s, nil // never polled
	}
	if err := json.Unmarshal([]byte(b.Inventory), &s.Inventory); err != nil {
		s.Inventory = Inventory{}
		return s, fmt.Errorf("BMC %s: its stored inventory cannot be read, so it shows none until the next poll: %w", b.ID, err)
	}
	return s, nil
}

func (s Status) storeStatus() store.BMCStatus {
	inv, _ := json.Marshal(s.Inventory)
	return store.BMCStatus{Reachable: s.Reachable, LastError: s.LastError, Inventory: string(inv)}
}

// IDForSystem names the record of one system of the BMC at endpoint:
// IDFor(endpoint) for its first ("") and IDFor(endpoint) and the system's
// Id for the others.
func IDForSystem(endpoint, system string) string {
	if system == "" {
		return IDFor(endpoint)
	}
	return IDFor(endpoint) + "-" + idSafe(path.Base(system))
}

// IDFor names the BMC at an endpoint: "bmc-" and its host (and port, if
// given), every character but letters, digits, '.', '_' and '-' made '-',
// so that it is one MQTT topic level and a URL path segment as it is.
func IDFor(endpoint string) string {
	name := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		name = u.Hostname()
		if p := u.Port(); p != "" {
			name += "-" + p
		}
	}
	return "bmc-" + idSafe(name)
}

// idSafe makes every character but letters, digits, '.', '_' and '-' a '-'.
func idSafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, name)
}
