package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/store"
)

// Kind is one kind of task the engine runs: a firmware update, a Drydock
// action, a deploy step.
type Kind struct {
	Name string
	// Run takes a task from its stored step to its end, storing every step
	// with Run.Save before acting on the next, so that a task interrupted
	// (a stop, a kill -9) resumes from where it was. It returns when the
	// task has ended, or when ctx ends: a stop, or a cancel.
	Run func(ctx context.Context, r *Run)
	// Locks names the resources a task holds while it runs ("bmc:<id>",
	// "machine:<id>"): two tasks never hold the same one at once.
	Locks func(r *Run) []string
	// Cancelled, if set, undoes what a cancelled task leaves (a machine
	// it had taken out of service); the engine then stores it cancelled.
	Cancelled func(ctx context.Context, r *Run)
}

// Announcer turns a task into its event-bus message.
type Announcer interface {
	TaskMessage(t Task) outbox.Message
}

// EngineConfig is what an Engine works with.
type EngineConfig struct {
	DB       *store.Store
	Commit   *store.Committer
	Announce Announcer // nil: no bus messages
	Log      *slog.Logger
}

// Errors of Submit and Cancel.
var (
	// ErrBusy: another task holds a resource the new one needs.
	ErrBusy = errors.New("another task is working on it")
	// ErrFinished: the task has ended; there is nothing to cancel.
	ErrFinished = errors.New("the task has ended")
)

// Engine runs stored tasks of every kind: one runner per task, each step
// stored before the next, every change on the bus, interrupted tasks
// resumed at start, cancel, and a lock per resource.
type Engine struct {
	cfg   EngineConfig
	log   *slog.Logger
	kinds map[string]Kind

	mu      sync.Mutex
	run     context.Context               // set by Run: runners stop with it
	locks   map[string]string             // resource → task id holding it
	running map[string]context.CancelFunc // task id → its runner's cancel
	cancel  map[string]string             // task id → who cancelled it
	waiting []store.Task                  // resumed tasks whose resources were held
	started chan struct{}
	wg      sync.WaitGroup
}

// NewEngine is an engine for cfg; Register its kinds, then Run it.
func NewEngine(cfg EngineConfig) *Engine {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Engine{cfg: cfg, log: cfg.Log.With("part", "tasks"), kinds: map[string]Kind{}, locks: map[string]string{},
		running: map[string]context.CancelFunc{}, cancel: map[string]string{}, started: make(chan struct{})}
}

// Register adds a kind; it must come before Run.
func (e *Engine) Register(k Kind) { e.kinds[k.Name] = k }

// Run resumes the tasks a stop interrupted, runs new ones until ctx ends,
// then waits for their runners (which stop between two steps).
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.run = ctx
	e.mu.Unlock()
	unfinished, err := e.cfg.DB.UnfinishedTasks(ctx)
	if err != nil {
		close(e.started)
		return fmt.Errorf("resume tasks: %w", err)
	}
	for _, t := range unfinished {
		if _, ok := e.kinds[t.Kind]; !ok {
			e.log.Warn("a task of a kind this Slipway does not run stays as it is", "task_id", t.ID, "kind", t.Kind)
			continue
		}
		e.log.Info("task resumed", "task_id", t.ID, "kind", t.Kind, "machine_id", t.MachineID, "step", t.Step)
		e.start(t, true)
	}
	// Only now: the interrupted tasks hold their resources again before a
	// new task can ask for them.
	close(e.started)
	<-ctx.Done()
	e.wg.Wait()
	return nil
}

// Started is closed once Run takes new tasks, the interrupted ones resumed
// and holding their resources (or once it failed to read them: Run then
// returns the error).
func (e *Engine) Started() <-chan struct{} { return e.started }

// New is a task to submit: its kind, the machine it concerns (if one),
// its first step and message, and its params and initial result (encoded
// as JSON).
type New struct {
	Kind      string
	MachineID string
	Step      string
	Message   string
	Params    any
	Result    any
	// WaitForLocks queues the task, stored, until the resources it needs
	// are free, instead of refusing it with ErrBusy (the updates of one
	// batch that share a machine run one after another).
	WaitForLocks bool
}

// Submit stores a new task at its first step and starts it. It is refused
// with ErrBusy, storing nothing, while another task holds one of its
// resources.
func (e *Engine) Submit(ctx context.Context, n New) (Task, error) {
	k, ok := e.kinds[n.Kind]
	if !ok {
		return Task{}, fmt.Errorf("no task kind %q", n.Kind)
	}
	pj, err := json.Marshal(n.Params)
	if err != nil {
		return Task{}, fmt.Errorf("task params: %w", err)
	}
	r := &Run{e: e, Task: store.Task{ID: uuid.NewString(), Kind: n.Kind, MachineID: n.MachineID, Status: Queued, Step: n.Step,
		Params: string(pj), Message: n.Message}}
	if n.Result == nil {
		n.Result = struct{}{}
	}
	r.SetResult(n.Result)
	if n.WaitForLocks {
		return e.submitWaiting(ctx, r, k)
	}
	if held := e.lock(r.ID, k.Locks(r)); held != "" {
		return Task{}, fmt.Errorf("%s: %w (%s)", n.Kind, ErrBusy, held)
	}
	if err := r.Save(ctx); err != nil {
		e.unlock(r.ID)
		return Task{}, err
	}
	e.log.Info("task queued", "task_id", r.ID, "kind", n.Kind, "machine_id", n.MachineID)
	e.start(r.Task, false)
	return FromStored(r.Task), nil
}

// submitWaiting stores a task, then starts it if its resources are free or
// leaves it waiting for them: the lock is tried and the task put in line
// in one critical section, so that a holder finishing meanwhile cannot
// miss it.
func (e *Engine) submitWaiting(ctx context.Context, r *Run, k Kind) (Task, error) {
	if err := r.Save(ctx); err != nil {
		return Task{}, err
	}
	e.mu.Lock()
	held := e.lockLocked(r.ID, k.Locks(r))
	if held != "" {
		e.waiting = append(e.waiting, r.Task)
	}
	e.mu.Unlock()
	e.log.Info("task queued", "task_id", r.ID, "kind", r.Kind, "machine_id", r.MachineID, "waits_for", held)
	if held == "" {
		e.start(r.Task, false)
	}
	return FromStored(r.Task), nil
}

// Cancel stops a queued or running task and stores it cancelled, with who
// asked. A runner stops between two steps; its kind's Cancelled hook
// undoes what the task left.
func (e *Engine) Cancel(ctx context.Context, id, by string) (Task, error) {
	t, err := e.cfg.DB.Task(ctx, id)
	if err != nil {
		return Task{}, err
	}
	if FromStored(t).Finished() {
		return FromStored(t), fmt.Errorf("task %s is %s: %w", id, t.Status, ErrFinished)
	}
	e.mu.Lock()
	stop, running := e.running[id]
	e.cancel[id] = by
	e.mu.Unlock()
	if running {
		stop() // the runner stores it cancelled when it returns
		return FromStored(t), nil
	}
	r := &Run{e: e, Task: t}
	e.finishCancelled(ctx, r)
	return FromStored(r.Task), nil
}

// start runs t if Run runs; a resumed task whose resources are held waits
// for them.
func (e *Engine) start(t store.Task, resumed bool) {
	k := e.kinds[t.Kind]
	r := &Run{e: e, Task: t}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run == nil || e.run.Err() != nil || e.running[t.ID] != nil {
		return // stored: Run resumes it
	}
	if resumed {
		if held := e.lockLocked(t.ID, k.Locks(r)); held != "" {
			e.waiting = append(e.waiting, t)
			return
		}
	}
	ctx, cancel := context.WithCancel(e.run)
	e.running[t.ID] = cancel
	e.wg.Go(func() {
		defer cancel()
		k.Run(ctx, r)
		e.finished(r)
	})
}

// finished releases what a runner held, stores a cancelled task as such,
// and starts the tasks that waited for its resources.
func (e *Engine) finished(r *Run) {
	e.mu.Lock()
	delete(e.running, r.ID)
	_, cancelled := e.cancel[r.ID]
	stopping := e.run.Err() != nil
	if FromStored(r.Task).Finished() {
		delete(e.cancel, r.ID) // it ended before the cancel reached it
	}
	e.mu.Unlock()
	if cancelled && !stopping && !FromStored(r.Task).Finished() {
		e.finishCancelled(e.run, r)
	}
	if stopping && !FromStored(r.Task).Finished() {
		return // resumed at the next start, holding its resources again
	}
	e.unlock(r.ID)
	e.mu.Lock()
	waiting := e.waiting
	e.waiting = nil
	e.mu.Unlock()
	for _, t := range waiting {
		e.start(t, true)
	}
}

func (e *Engine) finishCancelled(ctx context.Context, r *Run) {
	e.mu.Lock()
	by := e.cancel[r.ID]
	delete(e.cancel, r.ID)
	// A task waiting for its resources waits no more.
	e.waiting = slices.DeleteFunc(e.waiting, func(t store.Task) bool { return t.ID == r.ID })
	e.mu.Unlock()
	if k := e.kinds[r.Kind]; k.Cancelled != nil {
		k.Cancelled(ctx, r)
	}
	r.Status, r.FinishedAt = Cancelled, time.Now()
	r.Message = "cancelled by " + by
	if err := r.Save(ctx); err != nil {
		e.log.Error("cannot store a cancelled task", "task_id", r.ID, "error", err)
		return
	}
	e.unlock(r.ID)
	e.log.Info("task cancelled", "task_id", r.ID, "kind", r.Kind, "by", by)
}

// lock takes every resource for id, or none; it names a resource held.
func (e *Engine) lock(id string, resources []string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lockLocked(id, resources)
}

func (e *Engine) lockLocked(id string, resources []string) string {
	for _, res := range resources {
		if holder, ok := e.locks[res]; ok && holder != id {
			return res + " is held by task " + holder
		}
	}
	for _, res := range resources {
		e.locks[res] = id
	}
	return ""
}

func (e *Engine) unlock(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unlockLocked(id)
}

func (e *Engine) unlockLocked(id string) {
	for res, holder := range e.locks {
		if holder == id {
			delete(e.locks, res)
		}
	}
}

// Run is one task being run: its stored record, which its kind moves step
// by step (Step, Status, Progress, Message, Result, FinishedAt) and stores
// with Save.
type Run struct {
	store.Task
	e *Engine
}

// DecodeParams reads the task's params into v.
func (r *Run) DecodeParams(v any) error {
	if err := json.Unmarshal([]byte(r.Params), v); err != nil {
		return fmt.Errorf("task %s params: %w", r.ID, err)
	}
	return nil
}

// DecodeResult reads the task's result so far into v.
func (r *Run) DecodeResult(v any) error {
	if err := json.Unmarshal([]byte(r.Result), v); err != nil {
		return fmt.Errorf("task %s result: %w", r.ID, err)
	}
	return nil
}

// SetResult encodes v as the task's result (stored at the next Save).
func (r *Run) SetResult(v any) {
	b, _ := json.Marshal(v)
	r.Result = string(b)
}

// Save stores the task and its bus message in one commit.
func (r *Run) Save(ctx context.Context) error {
	e := r.e
	if FromStored(r.Task).Finished() {
		// A task seen finished holds nothing: its locks go in the same
		// critical section as its final state is stored, so that a
		// caller who reads "cancelled" or "done" and starts the next task
		// on the machine at once never finds it still held.
		e.mu.Lock()
		defer e.mu.Unlock()
		if err := r.store(ctx); err != nil {
			return err
		}
		e.unlockLocked(r.ID)
		return nil
	}
	return r.store(ctx)
}

func (r *Run) store(ctx context.Context) error {
	e := r.e
	err := e.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		if err := tx.PutTask(r.Task); err != nil {
			return err
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = tx.Now() // as the store records a new task's
		}
		if e.cfg.Announce == nil {
			return nil
		}
		t := r.Task
		t.UpdatedAt = tx.Now()
		outbox.Enqueue(tx, e.cfg.Announce.TaskMessage(FromStored(t)))
		return nil
	})
	return err
}
