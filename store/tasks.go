package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Task is a stored piece of asynchronous work (a firmware update, a deploy
// step, a Drydock action) that survives a restart and is resumed from it.
type Task struct {
	ID         string
	Kind       string
	MachineID  string // empty for tasks that concern no single machine
	Status     string // queued | running | succeeded | failed | cancelled
	Step       string // where a multi-step task is, for resuming
	Progress   int    // percent
	Message    string
	Params     string // JSON, owned by the task's kind
	Result     string // JSON, owned by the task's kind
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time
}

// PutTask inserts or replaces a task.
func (tx *Tx) PutTask(t Task) error {
	if t.Params == "" {
		t.Params = "{}"
	}
	if t.Result == "" {
		t.Result = "{}"
	}
	_, err := tx.exec(`INSERT INTO tasks (id, kind, machine_id, status, step, progress, message, params, result,
		created_at, updated_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, step = excluded.step, progress = excluded.progress,
		message = excluded.message, result = excluded.result, updated_at = excluded.updated_at,
		finished_at = excluded.finished_at`,
		t.ID, t.Kind, nullable(t.MachineID), t.Status, t.Step, t.Progress,
		t.Message, t.Params, t.Result, tx.nowText, tx.nowText, optionalTime(t.FinishedAt))
	if err != nil {
		return fmt.Errorf("write task %s: %w", t.ID, err)
	}
	return nil
}

const taskColumns = `id, kind, COALESCE(machine_id, ''), status, step, progress, message, params, result,
	created_at, updated_at, finished_at`

func scanTaskRow(r rowScanner) (Task, error) {
	var t Task
	err := r.Scan(&t.ID, &t.Kind, &t.MachineID, &t.Status, &t.Step, &t.Progress, &t.Message, &t.Params, &t.Result,
		storedTime{t: &t.CreatedAt}, storedTime{t: &t.UpdatedAt}, storedTime{t: &t.FinishedAt, nullable: true})
	return t, err
}

// Task reads one task.
func (s *Store) Task(ctx context.Context, id string) (Task, error) {
	t, err := scanTaskRow(s.read.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("task %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("read task %s: %w", id, err)
	}
	return t, nil
}

// UnfinishedTasks returns queued and running tasks, oldest first: the work to
// resume after a restart.
func (s *Store) UnfinishedTasks(ctx context.Context) ([]Task, error) {
	return queryAll(ctx, s.read, "list unfinished tasks", scanTaskRow, `SELECT `+taskColumns+` FROM tasks
		WHERE status IN ('queued', 'running') ORDER BY created_at, id`)
}

// Tasks lists tasks, newest first; machineID, if set, keeps that
// machine's.
func (s *Store) Tasks(ctx context.Context, machineID string, limit int) ([]Task, error) {
	if machineID != "" {
		return queryAll(ctx, s.read, "list tasks", scanTaskRow, `SELECT `+taskColumns+` FROM tasks
			WHERE machine_id = ? ORDER BY created_at DESC, id LIMIT ?`, machineID, limit)
	}
	return queryAll(ctx, s.read, "list tasks", scanTaskRow, `SELECT `+taskColumns+` FROM tasks
		ORDER BY created_at DESC, id LIMIT ?`, limit)
}

// TasksOfKind lists the tasks whose kind starts with prefix, newest first.
func (s *Store) TasksOfKind(ctx context.Context, prefix string, limit int) ([]Task, error) {
	return queryAll(ctx, s.read, "list tasks", scanTaskRow, `SELECT `+taskColumns+` FROM tasks
		WHERE kind LIKE ? || '%' ORDER BY created_at DESC, id LIMIT ?`, prefix, limit)
}

// TasksInBatch lists the tasks of kind whose params name batch, oldest
// first: the members of one batch (an index keeps a waiting member's
// frequent look cheap).
func (s *Store) TasksInBatch(ctx context.Context, kind, batch string) ([]Task, error) {
	return queryAll(ctx, s.read, "list a batch's tasks", scanTaskRow, tasksInBatch, kind, batch)
}

const tasksInBatch = `SELECT ` + taskColumns + ` FROM tasks
	WHERE kind = ? AND json_extract(params, '$.batch') = ? ORDER BY created_at, id`
