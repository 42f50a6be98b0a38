package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Release is an OS release kept on the box.
type Release struct {
	ID        string
	State     string
	SWVersion string
	Manifest  string // JSON
	Signer    string
	SHA256    string
	Size      int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateRelease records a new release; ErrConflict if its id is taken.
func (tx *Tx) CreateRelease(r Release) error {
	_, err := tx.exec(`INSERT INTO releases (id, state, sw_version, manifest, signer, sha256, size, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.State, r.SWVersion, r.Manifest, r.Signer, r.SHA256, r.Size, tx.nowText, tx.nowText)
	if isUniqueViolation(err) {
		return fmt.Errorf("release %s: %w: it was uploaded before", r.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("record release %s: %w", r.ID, err)
	}
	return nil
}

// SetReleaseState moves a release to state.
func (tx *Tx) SetReleaseState(id, state string) error {
	res, err := tx.exec(`UPDATE releases SET state = ?, updated_at = ? WHERE id = ?`, state, tx.nowText, id)
	if err != nil {
		return fmt.Errorf("set release %s %s: %w", id, state, err)
	}
	return mustAffect(res, "release", id)
}

// DeleteRelease forgets a release.
func (tx *Tx) DeleteRelease(id string) error {
	res, err := tx.exec(`DELETE FROM releases WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete release %s: %w", id, err)
	}
	return mustAffect(res, "release", id)
}

// Release reads one release in a transaction.
func (tx *Tx) Release(id string) (Release, error) {
	return scanOneRelease(tx.tx.QueryRowContext(tx.ctx, `SELECT `+releaseColumns+` FROM releases WHERE id = ?`, id), id)
}

const releaseColumns = `id, state, sw_version, manifest, signer, sha256, size, created_at, updated_at`

func scanRelease(r rowScanner) (Release, error) {
	var rel Release
	err := r.Scan(&rel.ID, &rel.State, &rel.SWVersion, &rel.Manifest, &rel.Signer, &rel.SHA256, &rel.Size,
		storedTime{t: &rel.CreatedAt}, storedTime{t: &rel.UpdatedAt})
	return rel, err
}

func scanOneRelease(row *sql.Row, id string) (Release, error) {
	rel, err := scanRelease(row)
	if errors.Is(err, sql.ErrNoRows) {
		return rel, fmt.Errorf("release %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return rel, fmt.Errorf("read release %s: %w", id, err)
	}
	return rel, nil
}

// Releases lists the releases, by version then id.
func (s *Store) Releases(ctx context.Context) ([]Release, error) {
	return queryAll(ctx, s.read, "list releases", scanRelease, `SELECT `+releaseColumns+` FROM releases ORDER BY sw_version, id`)
}

// Release reads one release.
func (s *Store) Release(ctx context.Context, id string) (Release, error) {
	return scanOneRelease(s.read.QueryRowContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE id = ?`, id), id)
}
