package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// BMC is a baseboard management controller: how to reach it, which
// machine it manages and what its last poll found.
type BMC struct {
	ID        string
	Endpoint  string
	Username  string
	Secret    []byte // the password, sealed; store never sees it in clear
	Insecure  bool
	MachineID string
	LinkedBy  string // config | mac | api
	Source    string // config | discovered | api
	// System is the ComputerSystem's URI this record manages, on a BMC
	// that manages several; "" is the BMC's first.
	System string
	// OverridePending is a persistent boot override Slipway set (the BMC
	// kept Once as Continuous), to clear once the machine has netbooted.
	OverridePending string
	BMCStatus
	CreatedAt time.Time
	UpdatedAt time.Time
}

// BMCStatus is what polls learn of a BMC.
type BMCStatus struct {
	Reachable bool
	LastError string
	Inventory string // JSON, owned by the BMC service
	ChangedAt time.Time
}

// PutBMC registers a BMC or replaces how to reach it; what polls learned
// is kept.
func (tx *Tx) PutBMC(b BMC) error {
	_, err := tx.exec(`INSERT INTO bmcs (id, endpoint, username, secret, insecure, machine_id, linked_by, source,
		system, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint, username = excluded.username,
		secret = excluded.secret, insecure = excluded.insecure, source = excluded.source, system = excluded.system,
		machine_id = COALESCE(excluded.machine_id, machine_id),
		linked_by = CASE WHEN excluded.machine_id IS NULL THEN linked_by ELSE excluded.linked_by END,
		updated_at = excluded.updated_at`,
		b.ID, b.Endpoint, b.Username, b.Secret, b.Insecure, nullable(b.MachineID), b.LinkedBy, b.Source,
		b.System, tx.nowText, tx.nowText)
	if err != nil {
		return fmt.Errorf("write BMC %s: %w", b.ID, err)
	}
	return nil
}

// SetBMCStatus records what a poll found and which machine it links to.
func (tx *Tx) SetBMCStatus(id string, s BMCStatus, machineID, linkedBy string) error {
	res, err := tx.exec(`UPDATE bmcs SET reachable = ?, last_error = ?, inventory = ?, changed_at = ?,
		machine_id = ?, linked_by = ?, updated_at = ? WHERE id = ?`,
		s.Reachable, s.LastError, s.Inventory, tx.nowText, nullable(machineID), linkedBy, tx.nowText, id)
	if err != nil {
		return fmt.Errorf("write status of BMC %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("BMC %s: %w", id, ErrNotFound)
	}
	return nil
}

// SetBMCOverridePending records the persistent boot override Slipway set
// on a BMC ("" once it is cleared).
func (tx *Tx) SetBMCOverridePending(id, target string) error {
	res, err := tx.exec(`UPDATE bmcs SET override_pending = ?, updated_at = ? WHERE id = ?`, target, tx.nowText, id)
	if err != nil {
		return fmt.Errorf("write the boot override of BMC %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("BMC %s: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteBMC forgets a BMC.
func (tx *Tx) DeleteBMC(id string) error {
	res, err := tx.exec(`DELETE FROM bmcs WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete BMC %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("BMC %s: %w", id, ErrNotFound)
	}
	return nil
}

const bmcColumns = `id, endpoint, username, secret, insecure, COALESCE(machine_id, ''), linked_by, source,
	system, override_pending, reachable, last_error, inventory, changed_at, created_at, updated_at`

func scanBMC(r rowScanner) (BMC, error) {
	var b BMC
	err := r.Scan(&b.ID, &b.Endpoint, &b.Username, &b.Secret, &b.Insecure, &b.MachineID, &b.LinkedBy, &b.Source,
		&b.System, &b.OverridePending, &b.Reachable, &b.LastError, &b.Inventory, storedTime{t: &b.ChangedAt, nullable: true},
		storedTime{t: &b.CreatedAt}, storedTime{t: &b.UpdatedAt})
	return b, err
}

// BMCs lists every BMC by id.
func (s *Store) BMCs(ctx context.Context) ([]BMC, error) {
	return queryAll(ctx, s.read, "list BMCs", scanBMC, `SELECT `+bmcColumns+` FROM bmcs ORDER BY id`)
}

// BMC reads one BMC.
func (s *Store) BMC(ctx context.Context, id string) (BMC, error) {
	b, err := scanBMC(s.read.QueryRowContext(ctx, `SELECT `+bmcColumns+` FROM bmcs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("BMC %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("read BMC %s: %w", id, err)
	}
	return b, nil
}

func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
