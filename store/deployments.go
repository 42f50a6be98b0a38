package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// BootAction is one boot action a node runs in one deployment.
type BootAction struct {
	ID        string
	TaskID    string
	Node      string
	Name      string
	Key       string
	Status    string
	Details   string // JSON list
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PutBootAction inserts or replaces a boot action.
func (tx *Tx) PutBootAction(b BootAction) error {
	if b.Details == "" {
		b.Details = "[]"
	}
	_, err := tx.exec(`INSERT INTO boot_actions (id, task_id, node, name, key, status, details, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status,
		details = excluded.details, updated_at = excluded.updated_at`,
		b.ID, b.TaskID, b.Node, b.Name, b.Key, b.Status, b.Details, tx.nowText, tx.nowText)
	if err != nil {
		return fmt.Errorf("write boot action %s: %w", b.ID, err)
	}
	return nil
}

const bootActionColumns = `id, task_id, node, name, key, status, details, created_at, updated_at`

func scanBootAction(r rowScanner) (BootAction, error) {
	var b BootAction
	err := r.Scan(&b.ID, &b.TaskID, &b.Node, &b.Name, &b.Key, &b.Status, &b.Details,
		storedTime{t: &b.CreatedAt}, storedTime{t: &b.UpdatedAt})
	return b, err
}

// BootAction reads one boot action in a transaction (to update it).
func (tx *Tx) BootAction(id string) (BootAction, error) {
	b, err := scanBootAction(tx.queryRow(`SELECT `+bootActionColumns+` FROM boot_actions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("boot action %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("read boot action %s: %w", id, err)
	}
	return b, nil
}

// BootAction reads one boot action.
func (s *Store) BootAction(ctx context.Context, id string) (BootAction, error) {
	var b BootAction
	err := s.Update(ctx, func(tx *Tx) (err error) {
		b, err = tx.BootAction(id)
		return err
	})
	return b, err
}

// BootActionsOfTask are a deploy task's boot actions, by name.
func (s *Store) BootActionsOfTask(ctx context.Context, taskID string) ([]BootAction, error) {
	return queryAll(ctx, s.read, "list boot actions", scanBootAction, `SELECT `+bootActionColumns+` FROM boot_actions
		WHERE task_id = ? ORDER BY name, id`, taskID)
}

// LatestBootActions are the boot actions of a node's newest deployment.
func (s *Store) LatestBootActions(ctx context.Context, node string) ([]BootAction, error) {
	return queryAll(ctx, s.read, "list boot actions", scanBootAction, `SELECT `+bootActionColumns+` FROM boot_actions
		WHERE task_id = (SELECT task_id FROM boot_actions WHERE node = ? ORDER BY created_at DESC, id DESC LIMIT 1)
		ORDER BY name, id`, node)
}

// BuildData is one piece of data collected about a node.
type BuildData struct {
	Node        string
	TaskID      string
	Generator   string
	Format      string
	Element     string
	CollectedAt time.Time
}

// AddBuildData records a piece of build data.
func (tx *Tx) AddBuildData(b BuildData) error {
	_, err := tx.exec(`INSERT INTO build_data (node, task_id, generator, data_format, data_element, collected_at)
		VALUES (?, ?, ?, ?, ?, ?)`, b.Node, b.TaskID, b.Generator, b.Format, b.Element, tx.nowText)
	if err != nil {
		return fmt.Errorf("record build data for %s: %w", b.Node, err)
	}
	return nil
}

func scanBuildData(r rowScanner) (BuildData, error) {
	var b BuildData
	err := r.Scan(&b.Node, &b.TaskID, &b.Generator, &b.Format, &b.Element, storedTime{t: &b.CollectedAt})
	return b, err
}

// BuildDataOf is a node's build data (node set) or a task's (taskID set),
// oldest first.
func (s *Store) BuildDataOf(ctx context.Context, node, taskID string) ([]BuildData, error) {
	const cols = `SELECT node, task_id, generator, data_format, data_element, collected_at FROM build_data`
	if taskID != "" {
		return queryAll(ctx, s.read, "list build data", scanBuildData, cols+` WHERE task_id = ? ORDER BY collected_at, id`, taskID)
	}
	return queryAll(ctx, s.read, "list build data", scanBuildData, cols+` WHERE node = ? ORDER BY collected_at, id`, node)
}

// PurgeTasks deletes the finished tasks of kinds starting with kindPrefix
// that ended before before, with their boot actions and build data; it
// says how many tasks went.
func (tx *Tx) PurgeTasks(kindPrefix string, before time.Time) (int64, error) {
	const old = `SELECT id FROM tasks WHERE kind LIKE ? || '%' AND finished_at IS NOT NULL AND finished_at < ?`
	args := []any{kindPrefix, formatTime(before)}
	for _, q := range []string{
		`DELETE FROM boot_actions WHERE task_id IN (` + old + `)`,
		`DELETE FROM build_data WHERE task_id IN (` + old + `)`,
	} {
		if _, err := tx.exec(q, args...); err != nil {
			return 0, fmt.Errorf("purge tasks: %w", err)
		}
	}
	res, err := tx.exec(`DELETE FROM tasks WHERE id IN (`+old+`)`, args...)
	if err != nil {
		return 0, fmt.Errorf("purge tasks: %w", err)
	}
	return res.RowsAffected()
}
