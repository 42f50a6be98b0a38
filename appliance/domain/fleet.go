package domain

import (
	"cmp"
	"context"
	"encoding/json"
	"time"

	"github.com/slipway/slipway/store"
)

// Errors the doors tell apart, whichever service answered.
var (
	ErrNotFound = store.ErrNotFound // no such machine, BMC, task, user…
	ErrConflict = store.ErrConflict // it exists already, or changed meanwhile
	// The storage's conditions, which a write may fail on through no fault
	// of its own (see store.ErrStorageFull).
	ErrStorageFull     = store.ErrStorageFull
	ErrStorageReadOnly = store.ErrStorageReadOnly
	ErrBusy            = store.ErrBusy
)

// MachineRecord is a machine as the doors read it: what it is, where it
// is in its lifecycle, and, in listings, where it was last seen.
type MachineRecord struct {
	ID   string
	MACs []MAC // boot NIC first
	MachineInfo
	Source    string // config | discovered | api
	StateName string // the top-level state
	// State is the whole ManagedHostState as NICo encodes it.
	State      json.RawMessage
	StateSince time.Time
	CreatedAt  time.Time
	// Filled in listings (Machines), not by Machine.
	IP            string    // its bound lease
	LastHeartbeat time.Time // zero: none yet
	Power         string    // as its BMC last reported
}

// TrayPlace is the tray the machine sits in, if it is known: a site
// design (Drydock's) puts a node in a rack, never in a tray, so its
// machines have none, where tray 0 is a slot like any other.
func (m MachineInfo) TrayPlace() (tray int, known bool) {
	if m.RackID == "" || !m.TrayKnown {
		return 0, false
	}
	return m.Tray, true
}

// CompareSlots orders two places in a rack by slot (as TrayPlace gives
// them), a place in no known slot after every slotted one.
func CompareSlots(a int, aKnown bool, b int, bKnown bool) int {
	switch {
	case aKnown && bKnown:
		return cmp.Compare(a, b)
	case aKnown:
		return -1
	case bKnown:
		return 1
	}
	return 0
}

// Transition is one change of a machine's lifecycle state, with its cause.
type Transition struct {
	Seq       int64
	MachineID string
	From, To  string // top-level states; From is "" for the first
	State     json.RawMessage
	Cause     string
	At        time.Time
}

// Lease is one DHCP lease.
type Lease struct {
	IP        string
	MAC       MAC
	Hostname  string
	State     string // offered | bound | released | declined
	ExpiresAt time.Time
	UpdatedAt time.Time
}

// MachineFilter selects a page of machines, ordered by id.
type MachineFilter struct {
	State string // only machines in this top-level state
	// Query keeps machines whose id, hostname, rack id or name, or one of
	// whose MACs, contains it (case-insensitive).
	Query   string
	AfterID string // keyset paging: machines with an id after this one
	Limit   int    // at most this many; 0 means 100
}

// Fleet reads machines, their histories and leases for the doors. It
// writes nothing: changes go through Inventory and LeaseBook.
type Fleet struct{ DB *store.Store }

// Machine is one machine; ErrNotFound if there is none by that id.
func (f Fleet) Machine(ctx context.Context, id string) (MachineRecord, error) {
	m, err := f.DB.Machine(ctx, id)
	if err != nil {
		return MachineRecord{}, err
	}
	return machineRecord(m), nil
}

// Machines is a page of machines, with where each was last seen.
func (f Fleet) Machines(ctx context.Context, filter MachineFilter) ([]MachineRecord, error) {
	rows, err := f.DB.Machines(ctx, store.MachineFilter(filter))
	if err != nil {
		return nil, err
	}
	out := make([]MachineRecord, len(rows))
	for i, m := range rows {
		out[i] = machineRecord(m)
	}
	return out, nil
}

// CountMachinesByState is how many machines each top-level state holds.
func (f Fleet) CountMachinesByState(ctx context.Context) (map[string]int, error) {
	return f.DB.CountMachinesByState(ctx)
}

// Transitions is a machine's history, oldest first.
func (f Fleet) Transitions(ctx context.Context, machineID string) ([]Transition, error) {
	return transitions(f.DB.Transitions(ctx, machineID))
}

// RecentTransitions are the fleet's last limit transitions, newest first.
func (f Fleet) RecentTransitions(ctx context.Context, limit int) ([]Transition, error) {
	return transitions(f.DB.RecentTransitions(ctx, limit))
}

// Leases are every DHCP lease the store holds.
func (f Fleet) Leases(ctx context.Context) ([]Lease, error) {
	rows, err := f.DB.Leases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Lease, len(rows))
	for i, l := range rows {
		out[i] = Lease{IP: l.IP, MAC: MAC(l.MAC), Hostname: l.Hostname, State: l.State, ExpiresAt: l.ExpiresAt, UpdatedAt: l.UpdatedAt}
	}
	return out, nil
}

func machineRecord(m store.Machine) MachineRecord {
	macs := make([]MAC, len(m.MACs))
	for i, mac := range m.MACs {
		macs[i] = MAC(mac)
	}
	return MachineRecord{ID: m.ID, MACs: macs, MachineInfo: machineInfo(m), Source: m.Source, StateName: m.State,
		State: json.RawMessage(m.StateJSON), StateSince: m.StateSince, CreatedAt: m.CreatedAt,
		IP: m.Seen.IP, LastHeartbeat: m.Seen.LastHeartbeat, Power: m.Seen.Power}
}

func transitions(rows []store.Transition, err error) ([]Transition, error) {
	if err != nil {
		return nil, err
	}
	out := make([]Transition, len(rows))
	for i, t := range rows {
		out[i] = Transition{Seq: t.Seq, MachineID: t.MachineID, From: t.From, To: t.To, State: json.RawMessage(t.StateJSON), Cause: t.Cause, At: t.At}
	}
	return out, nil
}

// MachinePager pages through machines, as Fleet.Machines does.
type MachinePager interface {
	Machines(ctx context.Context, f MachineFilter) ([]MachineRecord, error)
}

// AllMachines reads every machine from m, a page at a time.
func AllMachines(ctx context.Context, m MachinePager) ([]MachineRecord, error) {
	const page = 500
	var all []MachineRecord
	for after := ""; ; {
		rows, err := m.Machines(ctx, MachineFilter{AfterID: after, Limit: page})
		if err != nil {
			return nil, err
		}
		all = append(all, rows...)
		if len(rows) < page {
			return all, nil
		}
		after = rows[len(rows)-1].ID
	}
}
