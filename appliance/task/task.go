package task

import (
	"context"
	"encoding/json"
	"time"

	"github.com/slipway/slipway/store"
)

// Statuses a task goes through.
const (
	Queued    = "queued"
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
	Cancelled = "cancelled"
)

// Task is one piece of asynchronous work: what it is, where it is, and how
// it went. Params and Result are JSON objects owned by the task's kind.
type Task struct {
	ID         string
	Kind       string
	MachineID  string // empty for work that concerns no single machine
	Status     string
	Step       string // where a multi-step task is
	Progress   int    // percent
	Message    string
	Params     json.RawMessage
	Result     json.RawMessage
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time // zero while unfinished
}

// Finished says whether the task has ended, one way or another.
func (t Task) Finished() bool { return t.Status != Queued && t.Status != Running }

// FromStored is a stored task as the model shows it.
func FromStored(t store.Task) Task {
	return Task{ID: t.ID, Kind: t.Kind, MachineID: t.MachineID, Status: t.Status, Step: t.Step, Progress: t.Progress,
		Message: t.Message, Params: object(t.Params), Result: object(t.Result),
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, FinishedAt: t.FinishedAt}
}

// object is s as a JSON object, {} for nothing or anything else.
func object(s string) json.RawMessage {
	if !json.Valid([]byte(s)) {
		return json.RawMessage("{}")
	}
	return json.RawMessage(s)
}

// Reader reads stored tasks.
type Reader struct{ DB *store.Store }

// Task is one task; store.ErrNotFound if there is none by that id.
func (r Reader) Task(ctx context.Context, id string) (Task, error) {
	t, err := r.DB.Task(ctx, id)
	if err != nil {
		return Task{}, err
	}
	return FromStored(t), nil
}

// Tasks lists tasks, newest first; machineID, if set, keeps that machine's.
func (r Reader) Tasks(ctx context.Context, machineID string, limit int) ([]Task, error) {
	return convert(r.DB.Tasks(ctx, machineID, limit))
}

// Unfinished are the tasks queued or running, oldest first.
func (r Reader) Unfinished(ctx context.Context) ([]Task, error) {
	return convert(r.DB.UnfinishedTasks(ctx))
}

// Retained are the tasks worth showing without asking: every unfinished one
// and the last hundred, so that a subscriber sees how recent work ended.
func (r Reader) Retained(ctx context.Context) ([]Task, error) {
	recent, err := r.Tasks(ctx, "", 100)
	if err != nil {
		return nil, err
	}
	unfinished, err := r.Unfinished(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(recent))
	for _, t := range recent {
		seen[t.ID] = true
	}
	for _, t := range unfinished {
		if !seen[t.ID] {
			recent = append(recent, t)
		}
	}
	return recent, nil
}

func convert(stored []store.Task, err error) ([]Task, error) {
	if err != nil {
		return nil, err
	}
	out := make([]Task, len(stored))
	for i, t := range stored {
		out[i] = FromStored(t)
	}
	return out, nil
}

// TasksOfKind lists the tasks whose kind starts with prefix, newest first.
func (r Reader) TasksOfKind(ctx context.Context, prefix string, limit int) ([]Task, error) {
	return convert(r.DB.TasksOfKind(ctx, prefix, limit))
}

// TasksInBatch lists the tasks of kind whose params name batch, oldest
// first.
func (r Reader) TasksInBatch(ctx context.Context, kind, batch string) ([]Task, error) {
	return convert(r.DB.TasksInBatch(ctx, kind, batch))
}
