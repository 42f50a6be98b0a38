package task

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

type recorder struct{}

func (recorder) TaskMessage(t Task) outbox.Message {
	b, _ := json.Marshal(struct{ Step, Status string }{t.Step, t.Status})
	return outbox.Message{Topic: "test/task/" + t.ID, Payload: b, QoS: 1}
}

// counting is a kind of three steps, one, two, three, each stored before the
// next; a step waits for its gate, so a test decides when it may go on.
type counting struct {
	mu        sync.Mutex
	gates     map[string]chan struct{} // task id → step permits
	ran       []string                 // "id:step" as each step ran
	cancelled []string
}

func newCounting() *counting { return &counting{gates: map[string]chan struct{}{}} }

func (k *counting) gate(id string) chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gates[id] == nil {
		k.gates[id] = make(chan struct{}, 16)
	}
	return k.gates[id]
}

func (k *counting) kind() Kind {
	return Kind{Name: "counting",
		Locks: func(r *Run) []string {
			var p struct{ Resource string }
			_ = r.DecodeParams(&p)
			return []string{p.Resource}
		},
		Run: func(ctx context.Context, r *Run) {
			next := map[string]string{"one": "two", "two": "three", "three": ""}
			for r.Step != "" && ctx.Err() == nil {
				select {
				case <-ctx.Done():
					return
				case <-k.gate(r.ID):
				}
				k.mu.Lock()
				k.ran = append(k.ran, r.ID[:4]+":"+r.Step)
				k.mu.Unlock()
				r.Status, r.Step = Running, next[r.Step]
				if r.Step == "" {
					r.Status, r.Step, r.Progress, r.FinishedAt = Succeeded, "done", 100, time.Now()
				}
				if r.Save(ctx) != nil || r.Status == Succeeded {
					return
				}
			}
		},
		Cancelled: func(_ context.Context, r *Run) {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.cancelled = append(k.cancelled, r.ID)
		},
	}
}

type engineFixture struct {
	db     *store.Store
	commit *store.Committer
	k      *counting
}

// start runs a fresh engine (a start of Slipway) until the test ends or
// stop is called.
func (f engineFixture) start(t *testing.T) (*Engine, func()) {
	t.Helper()
	e := NewEngine(EngineConfig{DB: f.db, Commit: f.commit, Announce: recorder{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.Register(f.k.kind())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	<-e.Started()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return e, stop
}

func newEngineFixture(t *testing.T) engineFixture {
	db, commit := testkit.OpenStore(t)
	return engineFixture{db: db, commit: commit, k: newCounting()}
}

func (f engineFixture) stored(t *testing.T, id string) store.Task {
	t.Helper()
	st, err := f.db.Task(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func submit(t *testing.T, e *Engine, resource string) Task {
	t.Helper()
	tk, err := e.Submit(context.Background(), New{Kind: "counting", Step: "one", Message: "queued", Params: map[string]string{"resource": resource}})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// Every step is stored before the next; a stop leaves the task at its
// stored step, and the next start resumes it there, holding its resource
// again; it ends succeeded, and its bus messages went out with its steps.
func TestEngineStoresEveryStepAndResumes(t *testing.T) {
	f := newEngineFixture(t)
	e, stop := f.start(t)
	tk := submit(t, e, "bmc:a")
	f.k.gate(tk.ID) <- struct{}{}
	testkit.WaitFor(t, "step one stored", func() bool { return f.stored(t, tk.ID).Step == "two" })
	stop()
	if st := f.stored(t, tk.ID); st.Status != Running || st.Step != "two" {
		t.Fatalf("after a stop: %s at %s", st.Status, st.Step)
	}
	e2, _ := f.start(t)
	if _, err := e2.Submit(context.Background(), New{Kind: "counting", Step: "one", Params: map[string]string{"resource": "bmc:a"}}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second task on the resumed task's resource: %v", err)
	}
	f.k.gate(tk.ID) <- struct{}{}
	f.k.gate(tk.ID) <- struct{}{}
	testkit.WaitFor(t, "the task done", func() bool { return f.stored(t, tk.ID).Status == Succeeded })
	if got := len(f.k.ran); got != 3 {
		t.Fatalf("steps ran %v: want each once", f.k.ran)
	}
	events, _ := f.db.EventsAfter(context.Background(), 0, 100)
	if len(events) != 4 { // queued, two, three, done
		t.Fatalf("%d bus messages, want 4", len(events))
	}
	// Released once its runner returns, a moment after the last step is stored.
	testkit.WaitFor(t, "bmc:a free again", func() bool {
		_, err := e2.Submit(context.Background(), New{Kind: "counting", Step: "one", Params: map[string]string{"resource": "bmc:a"}})
		return err == nil
	})
}

// Two tasks never hold one resource: the second is refused, storing
// nothing; one on another resource runs beside the first.
func TestEngineLocksPerResource(t *testing.T) {
	f := newEngineFixture(t)
	e, _ := f.start(t)
	first := submit(t, e, "machine:m1")
	if _, err := e.Submit(context.Background(), New{Kind: "counting", Step: "one", Params: map[string]string{"resource": "machine:m1"}}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second task on machine:m1: %v", err)
	}
	tasks, _ := f.db.Tasks(context.Background(), "", 10)
	if len(tasks) != 1 {
		t.Fatalf("%d tasks stored, want the first only", len(tasks))
	}
	other := submit(t, e, "machine:m2")
	for range 3 {
		f.k.gate(other.ID) <- struct{}{}
	}
	testkit.WaitFor(t, "the other task done", func() bool { return f.stored(t, other.ID).Status == Succeeded })
	if st := f.stored(t, first.ID); st.Status != Queued {
		t.Fatalf("the first task moved without its gate: %s", st.Status)
	}
}

// Cancel stops a running task between steps, or a queued one at once, and
// stores it cancelled with who asked; its kind undoes what it left; a task
// that ended cannot be cancelled; its resource is free again.
func TestEngineCancel(t *testing.T) {
	f := newEngineFixture(t)
	e, _ := f.start(t)
	ctx := context.Background()
	tk := submit(t, e, "bmc:c")
	f.k.gate(tk.ID) <- struct{}{}
	testkit.WaitFor(t, "step one stored", func() bool { return f.stored(t, tk.ID).Step == "two" })
	if _, err := e.Cancel(ctx, tk.ID, "otto"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the task cancelled", func() bool { return f.stored(t, tk.ID).Status == Cancelled })
	if st := f.stored(t, tk.ID); st.Message != "cancelled by otto" || st.Step != "two" || st.FinishedAt.IsZero() {
		t.Fatalf("cancelled task: %+v", st)
	}
	if len(f.k.cancelled) != 1 {
		t.Fatalf("the kind's Cancelled hook ran %d times", len(f.k.cancelled))
	}
	if _, err := e.Cancel(ctx, tk.ID, "otto"); !errors.Is(err, ErrFinished) {
		t.Fatalf("cancel a cancelled task: %v", err)
	}
	var again Task
	testkit.WaitFor(t, "bmc:c free again", func() bool {
		var err error
		again, err = e.Submit(ctx, New{Kind: "counting", Step: "one", Params: map[string]string{"resource": "bmc:c"}})
		return err == nil
	})
	for range 3 {
		f.k.gate(again.ID) <- struct{}{}
	}
	testkit.WaitFor(t, "the next task done", func() bool { return f.stored(t, again.ID).Status == Succeeded })
	if _, err := e.Cancel(ctx, "no-such-task", "otto"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancel an unknown task: %v", err)
	}
}

// A task submitted to wait for its resources is stored and waits in line:
// it starts when the holder ends; cancelled while it waits, it never runs.
func TestEngineWaitsForLocks(t *testing.T) {
	f := newEngineFixture(t)
	e, _ := f.start(t)
	ctx := context.Background()
	wait := func() Task {
		tk, err := e.Submit(ctx, New{Kind: "counting", Step: "one", Params: map[string]string{"resource": "machine:w"}, WaitForLocks: true})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	first, second, third := wait(), wait(), wait()
	if _, err := e.Cancel(ctx, third.ID, "otto"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.k.gate(first.ID) <- struct{}{}
		f.k.gate(second.ID) <- struct{}{}
		f.k.gate(third.ID) <- struct{}{}
	}
	testkit.WaitFor(t, "both waiting tasks done", func() bool {
		return f.stored(t, first.ID).Status == Succeeded && f.stored(t, second.ID).Status == Succeeded
	})
	f.k.mu.Lock()
	ran := f.k.ran
	f.k.mu.Unlock()
	order := ""
	for _, step := range ran {
		order += step[:4] + " "
	}
	want := strings.Repeat(first.ID[:4]+" ", 3) + strings.Repeat(second.ID[:4]+" ", 3)
	if order != want {
		t.Errorf("ran %v: the second started before the first ended, or the cancelled one ran", ran)
	}
	if st := f.stored(t, third.ID); st.Status != Cancelled {
		t.Errorf("the cancelled task is %s", st.Status)
	}
}
