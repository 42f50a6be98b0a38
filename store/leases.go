package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Lease is one DHCP address binding. The address is the primary key, so the
// table itself refuses two live leases for one address.
type Lease struct {
	IP        string
	MAC       string
	Hostname  string
	State     string // offered | bound | released | declined
	ExpiresAt time.Time
	UpdatedAt time.Time
}

const putLeaseSQL = `INSERT INTO leases (ip, mac, hostname, state, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, hostname = excluded.hostname, state = excluded.state,
	expires_at = excluded.expires_at, updated_at = excluded.updated_at`

// PutLease writes l, replacing whatever the address held before. Callers
// decide inside the same transaction (with Lease) whether that is allowed.
// The DHCP server does not: it journals its leases (JournalLease), and a
// lease put here may be overwritten by an older journaled one of the same
// address not yet applied.
func (tx *Tx) PutLease(l Lease) error {
	_, err := tx.exec(putLeaseSQL, l.IP, l.MAC, l.Hostname, l.State, formatTime(l.ExpiresAt), tx.nowText)
	if err != nil {
		return fmt.Errorf("write lease %s: %w", l.IP, err)
	}
	return nil
}

// DeleteLease forgets an address's lease.
func (tx *Tx) DeleteLease(ip string) error {
	_, err := tx.exec(`DELETE FROM leases WHERE ip = ?`, ip)
	if err != nil {
		return fmt.Errorf("delete lease %s: %w", ip, err)
	}
	return nil
}

// Lease reads the lease of an address inside the transaction.
func (tx *Tx) Lease(ip string) (Lease, error) { return scanLease(tx.ctx, tx.tx, `WHERE ip = ?`, ip) }

// LeasesOfMAC reads every lease a MAC holds inside the transaction.
func (tx *Tx) LeasesOfMAC(mac string) ([]Lease, error) {
	return queryLeases(tx.ctx, tx.tx, `WHERE mac = ? ORDER BY ip`, mac)
}

// Lease reads the lease of one address, journaled ones too.
func (s *Store) Lease(ctx context.Context, ip string) (Lease, error) {
	if err := s.flushLeases(ctx); err != nil {
		return Lease{}, fmt.Errorf("read lease %s: %w", ip, err)
	}
	return scanLease(ctx, s.read, `WHERE ip = ?`, ip)
}

// Leases lists every lease, by address, journaled ones too.
func (s *Store) Leases(ctx context.Context) ([]Lease, error) {
	if err := s.flushLeases(ctx); err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return queryLeases(ctx, s.read, `ORDER BY ip`)
}

const leaseColumns = `ip, mac, hostname, state, expires_at, updated_at`

func scanLeaseRow(r rowScanner) (Lease, error) {
	var l Lease
	err := r.Scan(&l.IP, &l.MAC, &l.Hostname, &l.State, storedTime{t: &l.ExpiresAt}, storedTime{t: &l.UpdatedAt})
	return l, err
}

func scanLease(ctx context.Context, q querier, where string, args ...any) (Lease, error) {
	l, err := scanLeaseRow(q.QueryRowContext(ctx, `SELECT `+leaseColumns+` FROM leases `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("lease %v: %w", args, ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("read lease %v: %w", args, err)
	}
	return l, nil
}

func queryLeases(ctx context.Context, q querier, where string, args ...any) ([]Lease, error) {
	return queryAll(ctx, q, "list leases", scanLeaseRow, `SELECT `+leaseColumns+` FROM leases `+where, args...)
}
