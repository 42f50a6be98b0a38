package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// User is a console and API user.
type User struct {
	Name         string
	Role         string // viewer | operator | admin
	PasswordHash string // bcrypt
	Source       string // config | api | first-start
	MustChange   bool   // a one-time password, to be changed
	// SessionGen is the generation a session must carry: moving it on
	// ends the user's sessions.
	SessionGen int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// PutUser adds a user or replaces one.
func (tx *Tx) PutUser(u User) error {
	_, err := tx.exec(`INSERT INTO users (name, role, password_hash, source, must_change, session_gen, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET role = excluded.role,
		password_hash = excluded.password_hash, source = excluded.source, must_change = excluded.must_change,
		session_gen = excluded.session_gen, updated_at = excluded.updated_at`,
		u.Name, u.Role, u.PasswordHash, u.Source, u.MustChange, u.SessionGen, tx.nowText, tx.nowText)
	if err != nil {
		return fmt.Errorf("write user %s: %w", u.Name, err)
	}
	return nil
}

// DeleteUser removes a user.
func (tx *Tx) DeleteUser(name string) error {
	res, err := tx.exec(`DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	return mustAffect(res, "user", name)
}

// RevokeToken refuses a session token from now until it expires.
func (tx *Tx) RevokeToken(id string, expires time.Time) error {
	_, err := tx.exec(`INSERT INTO revoked_tokens (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`,
		id, formatTime(expires))
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	// Tokens past their expiry are refused anyway: forget them.
	_, err = tx.exec(`DELETE FROM revoked_tokens WHERE expires_at < ?`, tx.nowText)
	return err
}

const userColumns = `name, role, password_hash, source, must_change, session_gen, created_at, updated_at`

func scanUser(r rowScanner) (User, error) {
	var u User
	err := r.Scan(&u.Name, &u.Role, &u.PasswordHash, &u.Source, &u.MustChange, &u.SessionGen, storedTime{t: &u.CreatedAt}, storedTime{t: &u.UpdatedAt})
	return u, err
}

// Users lists every user by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	return queryAll(ctx, s.read, "list users", scanUser, `SELECT `+userColumns+` FROM users ORDER BY name`)
}

// User reads one user.
func (s *Store) User(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("read user %s: %w", name, err)
	}
	return u, nil
}

// RevokedTokens lists the revoked tokens not yet expired, with their expiry.
func (s *Store) RevokedTokens(ctx context.Context) (map[string]time.Time, error) {
	type revoked struct {
		id  string
		exp time.Time
	}
	list, err := queryAll(ctx, s.read, "list revoked tokens", func(r rowScanner) (revoked, error) {
		var v revoked
		err := r.Scan(&v.id, storedTime{t: &v.exp})
		return v, err
	}, `SELECT id, expires_at FROM revoked_tokens WHERE expires_at >= ?`, formatTime(time.Now()))
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(list))
	for _, v := range list {
		out[v.id] = v.exp
	}
	return out, nil
}
