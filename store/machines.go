package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Machine is one machine as stored: inventory fields, MACs and current
// lifecycle state.
type Machine struct {
	ID       string
	MACs     []string // canonical form, boot NIC first
	Hostname string
	Profile  string
	RackID   string
	RackName string
	Tray     int
	// TrayKnown says Tray was given by whoever lists the machine: a site
	// design places a node in a rack, never in a tray.
	TrayKnown   bool
	TrayType    string
	BMCEndpoint string
	DPUOf       string // the host a DPU sits in; "" for other machines
	ReleaseID   string // the OS release it runs (a USM deploy's); "" for its profile's
	Source      string // config | discovered | api
	State       string // top-level state name
	StateJSON   string // the whole state object, as the domain encodes it
	StateSince  time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Seen is what listings add from other tables (Machines fills it, the
	// single-machine reads on the boot path do not).
	Seen Seen
}

// Seen is where a machine was last seen: its bound lease, its last
// heartbeat, and the power state its BMC last reported.
type Seen struct {
	IP            string
	LastHeartbeat time.Time
	Power         string
}

// seenColumns are Seen's, by indexed lookups per machine.
const seenColumns = `,
	COALESCE((SELECT l.ip FROM leases l JOIN machine_macs mm ON mm.mac = l.mac
		WHERE mm.machine_id = m.id AND l.state = 'bound' ORDER BY l.updated_at DESC LIMIT 1), ''),
	(SELECT max(se.at) FROM stage_events se JOIN machine_macs mm ON mm.mac = se.mac WHERE mm.machine_id = m.id),
	COALESCE((SELECT json_extract(b.inventory, '$.power_state') FROM bmcs b WHERE b.machine_id = m.id LIMIT 1), '')`

// Transition is one stored change of a machine's lifecycle state.
type Transition struct {
	Seq       int64
	MachineID string
	From      string
	To        string
	StateJSON string
	Cause     string
	At        time.Time
}

// CreateMachine inserts a new machine with its MACs and initial state, and
// records that state as its first transition (from ""), whose sequence
// number it returns. It fails with ErrConflict if the id or one of the MACs
// is taken.
func (tx *Tx) CreateMachine(m Machine, cause string) (int64, error) {
	_, err := tx.exec(`INSERT INTO machines (id, hostname, profile, rack_id, rack_name, tray, tray_known, tray_type,
		bmc_endpoint, dpu_of, source, state, state_json, state_since, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Hostname, m.Profile, m.RackID, m.RackName, m.Tray, m.TrayKnown, m.TrayType, m.BMCEndpoint, m.DPUOf,
		m.Source, m.State, m.StateJSON, tx.nowText, tx.nowText, tx.nowText)
	if isUniqueViolation(err) {
		return 0, fmt.Errorf("machine %q: %w: the id exists", m.ID, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("insert machine %q: %w", m.ID, err)
	}
	if err := tx.addMACs(m.ID, m.MACs); err != nil {
		return 0, err
	}
	return tx.insertTransition(Transition{MachineID: m.ID, To: m.State, StateJSON: m.StateJSON, Cause: cause})
}

// UpdateInventory rewrites a machine's inventory fields and MACs; its state
// is left alone (use Transition for that). A record that does not know the
// tray (TrayKnown false) keeps the one stored while the rack stays the
// same: a site design relisting a configured machine does not erase the
// slot the configuration gave it.
func (tx *Tx) UpdateInventory(m Machine) error {
	// SET's expressions read the row as it was: rack_id is the old rack.
	res, err := tx.exec(`UPDATE machines SET hostname = ?, profile = ?, rack_name = ?,
		tray = CASE WHEN ? THEN ? WHEN rack_id = ? THEN tray ELSE 0 END,
		tray_known = CASE WHEN ? THEN 1 WHEN rack_id = ? THEN tray_known ELSE 0 END,
		rack_id = ?, tray_type = ?, bmc_endpoint = ?, dpu_of = ?, source = ?, updated_at = ? WHERE id = ?`,
		m.Hostname, m.Profile, m.RackName,
		m.TrayKnown, m.Tray, m.RackID,
		m.TrayKnown, m.RackID,
		m.RackID, m.TrayType, m.BMCEndpoint, m.DPUOf, m.Source, tx.nowText, m.ID)
	if err != nil {
		return fmt.Errorf("update machine %q: %w", m.ID, err)
	}
	if err := mustAffect(res, "machine", m.ID); err != nil {
		return err
	}
	return tx.SetMACs(m.ID, m.MACs)
}

// SetMachineRelease records the OS release a machine runs ("" for none):
// the inventory's updates leave it alone.
func (tx *Tx) SetMachineRelease(id, releaseID string) error {
	res, err := tx.exec(`UPDATE machines SET release_id = ?, updated_at = ? WHERE id = ?`, releaseID, tx.nowText, id)
	if err != nil {
		return fmt.Errorf("set the release of machine %q: %w", id, err)
	}
	return mustAffect(res, "machine", id)
}

// SetMACs replaces a machine's MACs. A MAC that belongs to another machine
// is an ErrConflict.
func (tx *Tx) SetMACs(machineID string, macs []string) error {
	if _, err := tx.exec(`DELETE FROM machine_macs WHERE machine_id = ?`, machineID); err != nil {
		return fmt.Errorf("clear MACs of %q: %w", machineID, err)
	}
	return tx.addMACs(machineID, macs)
}

func (tx *Tx) addMACs(machineID string, macs []string) error {
	for i, mac := range macs {
		_, err := tx.exec(`INSERT INTO machine_macs (mac, machine_id, position) VALUES (?, ?, ?)`, mac, machineID, i)
		if isUniqueViolation(err) {
			return fmt.Errorf("MAC %s of machine %q: %w: it belongs to another machine", mac, machineID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("add MAC %s to %q: %w", mac, machineID, err)
		}
	}
	return nil
}

// Transition moves a machine from t.From (whose whole state is
// expectStateJSON: the state the caller decided from) to t.To (t.StateJSON)
// and appends the move to its history. The update itself compares the
// stored state with expectStateJSON, so no read comes first: if another
// writer moved the machine in between, the move fails with ErrConflict
// rather than overwrite a state the caller never saw.
func (tx *Tx) Transition(t Transition, expectStateJSON string) (Transition, error) {
	// A move within one state (an installer's next stage) leaves the state
	// column as it is: naming it in SET would have SQLite rewrite the
	// machine's entry in the state index, for every heartbeat of a site.
	update := `UPDATE machines SET state = ?, state_json = ?, state_since = ?, updated_at = ? WHERE id = ? AND state_json = ?`
	args := []any{t.To, t.StateJSON, tx.nowText, tx.nowText, t.MachineID, expectStateJSON}
	if t.From == t.To {
		update = `UPDATE machines SET state_json = ?, state_since = ?, updated_at = ? WHERE id = ? AND state_json = ?`
		args = args[1:]
	}
	res, err := tx.exec(update, args...)
	if err != nil {
		return t, fmt.Errorf("move machine %q to %s: %w", t.MachineID, t.To, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if _, err := tx.MachineState(t.MachineID); err != nil {
			return t, err // it is gone
		}
		return t, fmt.Errorf("move machine %q to %s: %w: its state changed meanwhile", t.MachineID, t.To, ErrConflict)
	}
	t.At = tx.now
	t.Seq, err = tx.insertTransition(t)
	return t, err
}

func (tx *Tx) insertTransition(t Transition) (int64, error) {
	res, err := tx.exec(`INSERT INTO transitions (machine_id, from_state, to_state, state_json, cause, at)
		VALUES (?, ?, ?, ?, ?, ?)`, t.MachineID, t.From, t.To, t.StateJSON, t.Cause, tx.nowText)
	if err != nil {
		return 0, fmt.Errorf("record transition of %q: %w", t.MachineID, err)
	}
	return res.LastInsertId()
}

// DeleteMachine removes a machine, its MACs and its history.
func (tx *Tx) DeleteMachine(id string) error {
	res, err := tx.exec(`DELETE FROM machines WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete machine %q: %w", id, err)
	}
	return mustAffect(res, "machine", id)
}

// Machine reads a machine inside the transaction.
func (tx *Tx) Machine(id string) (Machine, error) { return tx.machine(id) }

// MachineState reads a machine's state and since when it holds, inside the
// transaction: what a lifecycle decision needs, and cheap enough to do for
// every DHCP lease.
func (tx *Tx) MachineState(id string) (MachineState, error) {
	ms := MachineState{ID: id}
	err := tx.queryRow(`SELECT state_json, state_since FROM machines WHERE id = ?`, id).Scan(&ms.StateJSON, storedTime{t: &ms.Since})
	if errors.Is(err, sql.ErrNoRows) {
		return ms, fmt.Errorf("machine %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return ms, fmt.Errorf("read state of %q: %w", id, err)
	}
	return ms, nil
}

func (tx *Tx) machine(id string) (Machine, error) {
	return scanMachine(tx.ctx, tx.tx, `WHERE m.id = ?`, id)
}

const machineColumns = `m.id, m.hostname, m.profile, m.rack_id, m.rack_name, m.tray, m.tray_known, m.tray_type, m.bmc_endpoint, m.dpu_of, m.release_id,
	m.source, m.state, m.state_json, m.state_since, m.created_at, m.updated_at,
	COALESCE((SELECT group_concat(mac, ',') FROM (SELECT mac FROM machine_macs WHERE machine_id = m.id ORDER BY position)), '')`

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type rowScanner interface{ Scan(dest ...any) error }

// scanListedMachine reads machineColumns and seenColumns.
func scanListedMachine(r rowScanner) (Machine, error) {
	var m Machine
	var macs string
	err := r.Scan(&m.ID, &m.Hostname, &m.Profile, &m.RackID, &m.RackName, &m.Tray, &m.TrayKnown, &m.TrayType, &m.BMCEndpoint, &m.DPUOf, &m.ReleaseID,
		&m.Source, &m.State, &m.StateJSON, storedTime{t: &m.StateSince}, storedTime{t: &m.CreatedAt}, storedTime{t: &m.UpdatedAt}, &macs,
		&m.Seen.IP, storedTime{t: &m.Seen.LastHeartbeat, nullable: true}, &m.Seen.Power)
	if macs != "" {
		m.MACs = strings.Split(macs, ",")
	}
	return m, err
}

func scanMachineRow(r rowScanner) (Machine, error) {
	var m Machine
	var macs string
	err := r.Scan(&m.ID, &m.Hostname, &m.Profile, &m.RackID, &m.RackName, &m.Tray, &m.TrayKnown, &m.TrayType, &m.BMCEndpoint, &m.DPUOf, &m.ReleaseID,
		&m.Source, &m.State, &m.StateJSON, storedTime{t: &m.StateSince}, storedTime{t: &m.CreatedAt}, storedTime{t: &m.UpdatedAt}, &macs)
	if macs != "" {
		m.MACs = strings.Split(macs, ",")
	}
	return m, err
}

func scanMachine(ctx context.Context, q querier, where string, args ...any) (Machine, error) {
	m, err := scanMachineRow(q.QueryRowContext(ctx, `SELECT `+machineColumns+` FROM machines m `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("machine %v: %w", args, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("read machine %v: %w", args, err)
	}
	return m, nil
}

// Machine reads one machine by id.
func (s *Store) Machine(ctx context.Context, id string) (Machine, error) {
	m, err := scanListedMachine(s.read.QueryRowContext(ctx, `SELECT `+machineColumns+seenColumns+` FROM machines m WHERE m.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("machine %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("read machine %s: %w", id, err)
	}
	return m, nil
}

// MachineByMAC finds the machine that owns mac (canonical form).
func (s *Store) MachineByMAC(ctx context.Context, mac string) (Machine, error) {
	return scanMachine(ctx, s.read, `WHERE m.id = (SELECT machine_id FROM machine_macs WHERE mac = ?)`, mac)
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

// Machines lists machines page by page.
func (s *Store) Machines(ctx context.Context, f MachineFilter) ([]Machine, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(f.Query)) + "%"
	return queryAll(ctx, s.read, "list machines", scanListedMachine, `SELECT `+machineColumns+seenColumns+` FROM machines m
		WHERE (:state = '' OR m.state = :state) AND m.id > :after
		AND (:query = '' OR lower(m.id) LIKE :like ESCAPE '\' OR lower(m.hostname) LIKE :like ESCAPE '\'
			OR lower(m.rack_id) LIKE :like ESCAPE '\' OR lower(m.rack_name) LIKE :like ESCAPE '\'
			OR EXISTS (SELECT 1 FROM machine_macs mm WHERE mm.machine_id = m.id AND mm.mac LIKE :like ESCAPE '\'))
		ORDER BY m.id LIMIT :limit`,
		sql.Named("state", f.State), sql.Named("after", f.AfterID), sql.Named("query", f.Query),
		sql.Named("like", like), sql.Named("limit", f.Limit))
}

// CountMachinesByState returns how many machines are in each state.
func (s *Store) CountMachinesByState(ctx context.Context) (map[string]int, error) {
	return countMachinesByState(ctx, s.read)
}

func countMachinesByState(ctx context.Context, q querier) (map[string]int, error) {
	type count struct {
		state string
		n     int
	}
	counts, err := queryAll(ctx, q, "count machines", func(r rowScanner) (c count, err error) {
		return c, r.Scan(&c.state, &c.n)
	}, `SELECT state, count(*) FROM machines GROUP BY state`)
	out := make(map[string]int, len(counts))
	for _, c := range counts {
		out[c.state] = c.n
	}
	return out, err
}

// Transitions returns a machine's history, oldest first.
func (s *Store) Transitions(ctx context.Context, machineID string) ([]Transition, error) {
	return queryAll(ctx, s.read, "read history of "+machineID, scanTransition, `SELECT `+transitionColumns+`
		FROM transitions WHERE machine_id = ? ORDER BY seq`, machineID)
}

const transitionColumns = `seq, machine_id, from_state, to_state, state_json, cause, at`

func scanTransition(r rowScanner) (t Transition, err error) {
	return t, r.Scan(&t.Seq, &t.MachineID, &t.From, &t.To, &t.StateJSON, &t.Cause, storedTime{t: &t.At})
}

func mustAffect(res sql.Result, what, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s %q: %w", what, id, ErrNotFound)
	}
	return nil
}

// MACOwners maps every MAC that belongs to a machine to that machine's id.
func (s *Store) MACOwners(ctx context.Context) (map[string]string, error) {
	pairs, err := queryAll(ctx, s.read, "list MACs", func(r rowScanner) (p [2]string, err error) {
		return p, r.Scan(&p[0], &p[1])
	}, `SELECT mac, machine_id FROM machine_macs`)
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		out[p[0]] = p[1]
	}
	return out, err
}

// MachineState is a machine's current state and since when it holds.
type MachineState struct {
	ID        string
	StateJSON string
	Since     time.Time
	Source    string // config | discovered | api
}

// MachineStates returns the current state of every machine.
func (s *Store) MachineStates(ctx context.Context) ([]MachineState, error) {
	return queryAll(ctx, s.read, "list machine states", func(r rowScanner) (m MachineState, err error) {
		return m, r.Scan(&m.ID, &m.StateJSON, storedTime{t: &m.Since}, &m.Source)
	}, `SELECT id, state_json, state_since, source FROM machines`)
}

// MACOwner says which machine owns mac, and where that machine came from;
// ErrNotFound if none does.
func (tx *Tx) MACOwner(mac string) (machineID, source string, err error) {
	err = tx.queryRow(`SELECT m.id, m.source FROM machine_macs mm JOIN machines m ON m.id = mm.machine_id
		WHERE mm.mac = ?`, mac).Scan(&machineID, &source)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("MAC %s: %w", mac, ErrNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("owner of MAC %s: %w", mac, err)
	}
	return machineID, source, nil
}

// RemoveMAC takes mac away from whichever machine has it.
func (tx *Tx) RemoveMAC(mac string) error {
	if _, err := tx.exec(`DELETE FROM machine_macs WHERE mac = ?`, mac); err != nil {
		return fmt.Errorf("remove MAC %s: %w", mac, err)
	}
	return nil
}

// Change is a transition without its state document: what a chart of
// machines per state needs.
type Change struct {
	MachineID, From, To string
	At                  time.Time
}

// StatesAndChangesSince is how many machines are in each state and the
// changes since a time that led there (changesSince), read from one
// snapshot of the store: a change committed between two reads would have
// the counts and the changes disagree by one.
func (s *Store) StatesAndChangesSince(ctx context.Context, since time.Time, limit int) (counts map[string]int, changes []Change, more bool, err error) {
	tx, err := s.read.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, false, fmt.Errorf("read states and changes: %w", err)
	}
	defer tx.Rollback()
	if counts, err = countMachinesByState(ctx, tx); err != nil {
		return nil, nil, false, err
	}
	changes, more, err = changesSince(ctx, tx, since, limit)
	return counts, changes, more, err
}

// changesSince are the transitions of any machine at or after since,
// newest first, at most limit of them; more says whether older ones
// within the window were left out. The one writer commits transitions in
// time order, so the read walks back from the newest and stops at the
// first older than since: an hour's changes cost what they are, not the
// table's months.
func changesSince(ctx context.Context, q querier, since time.Time, limit int) (changes []Change, more bool, err error) {
	rows, err := q.QueryContext(ctx, `SELECT machine_id, from_state, to_state, at FROM transitions ORDER BY seq DESC`)
	if err != nil {
		return nil, false, fmt.Errorf("list changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.MachineID, &c.From, &c.To, storedTime{t: &c.At}); err != nil {
			return nil, false, fmt.Errorf("list changes: %w", err)
		}
		if c.At.Before(since) {
			return changes, false, nil
		}
		if len(changes) == limit {
			return changes, true, nil
		}
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list changes: %w", err)
	}
	return changes, false, nil
}

// RecentTransitions are the last transitions of any machine, newest first.
func (s *Store) RecentTransitions(ctx context.Context, limit int) ([]Transition, error) {
	return queryAll(ctx, s.read, "list recent transitions", scanTransition, `SELECT `+transitionColumns+`
		FROM transitions ORDER BY seq DESC LIMIT ?`, limit)
}
