package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is one login: its token's id, whose it is, from where, and the
// user's session generation it was issued in.
type Session struct {
	ID        string
	User      string
	Client    string
	Gen       int
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AddSession records a login, and forgets the sessions past their expiry.
func (tx *Tx) AddSession(s Session) error {
	if _, err := tx.exec(`INSERT INTO sessions (id, user, client, gen, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		s.ID, s.User, s.Client, s.Gen, tx.nowText, formatTime(s.ExpiresAt)); err != nil {
		return fmt.Errorf("record session: %w", err)
	}
	_, err := tx.exec(`DELETE FROM sessions WHERE expires_at < ?`, tx.nowText)
	return err
}

// Sessions lists the sessions not yet expired nor revoked, newest first.
// Whether a user's later password change ended one is the caller's to
// judge, by Gen.
func (s *Store) Sessions(ctx context.Context) ([]Session, error) {
	return queryAll(ctx, s.read, "list sessions", func(r rowScanner) (Session, error) {
		var v Session
		err := r.Scan(&v.ID, &v.User, &v.Client, &v.Gen, storedTime{t: &v.CreatedAt}, storedTime{t: &v.ExpiresAt})
		return v, err
	}, `SELECT id, user, client, gen, created_at, expires_at FROM sessions
		WHERE expires_at >= ? AND id NOT IN (SELECT id FROM revoked_tokens) ORDER BY created_at DESC, id`, formatTime(time.Now()))
}

// Session reads one session, revoked or not.
func (tx *Tx) Session(id string) (Session, error) {
	var v Session
	err := tx.queryRow(`SELECT id, user, client, gen, created_at, expires_at FROM sessions WHERE id = ?`, id).
		Scan(&v.ID, &v.User, &v.Client, &v.Gen, storedTime{t: &v.CreatedAt}, storedTime{t: &v.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("read session %s: %w", id, err)
	}
	return v, nil
}
