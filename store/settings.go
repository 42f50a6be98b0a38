package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Setting is one value an operator changed at run time, as JSON.
type Setting struct {
	Key, Value, ChangedBy string
	ChangedAt             time.Time
}

// Setting reads key's setting; ErrNotFound if none was changed.
func (s *Store) Setting(ctx context.Context, key string) (Setting, error) {
	st := Setting{Key: key}
	err := s.read.QueryRowContext(ctx, `SELECT value, changed_by, changed_at FROM settings WHERE key = ?`, key).
		Scan(&st.Value, &st.ChangedBy, storedTime{t: &st.ChangedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("setting %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("read setting %s: %w", key, err)
	}
	return st, nil
}

// PutSetting stores key's value, changed by whom now.
func (tx *Tx) PutSetting(key, value, by string) error {
	_, err := tx.exec(`INSERT INTO settings (key, value, changed_by, changed_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, changed_by = excluded.changed_by, changed_at = excluded.changed_at`,
		key, value, by, tx.nowText)
	if err != nil {
		return fmt.Errorf("store setting %s: %w", key, err)
	}
	return nil
}

// DeleteSetting forgets key's setting (nothing if there was none).
func (tx *Tx) DeleteSetting(key string) error {
	if _, err := tx.exec(`DELETE FROM settings WHERE key = ?`, key); err != nil {
		return fmt.Errorf("forget setting %s: %w", key, err)
	}
	return nil
}
