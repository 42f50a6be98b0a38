package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SWDeploy reads the USM deploy in progress as its JSON document;
// ErrNotFound when there is none.
func (s *Store) SWDeploy(ctx context.Context) (string, error) {
	return swDeploy(s.read.QueryRowContext(ctx, `SELECT doc FROM sw_deploy WHERE id = 1`))
}

// SWDeploy is Store.SWDeploy inside a transaction.
func (tx *Tx) SWDeploy() (string, error) {
	return swDeploy(tx.tx.QueryRowContext(tx.ctx, `SELECT doc FROM sw_deploy WHERE id = 1`))
}

func swDeploy(row *sql.Row) (string, error) {
	var doc string
	err := row.Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("deploy: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read the deploy: %w", err)
	}
	return doc, nil
}

// PutSWDeploy stores the deploy in progress, creating it or replacing it.
func (tx *Tx) PutSWDeploy(state, doc string) error {
	_, err := tx.exec(`INSERT INTO sw_deploy (id, state, doc, created_at, updated_at) VALUES (1, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, doc = excluded.doc, updated_at = excluded.updated_at`,
		state, doc, tx.nowText, tx.nowText)
	if err != nil {
		return fmt.Errorf("store the deploy: %w", err)
	}
	return nil
}

// DeleteSWDeploy removes the deploy.
func (tx *Tx) DeleteSWDeploy() error {
	res, err := tx.exec(`DELETE FROM sw_deploy WHERE id = 1`)
	if err != nil {
		return fmt.Errorf("delete the deploy: %w", err)
	}
	return mustAffect(res, "deploy", "1")
}
