package firmware

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/slipway/slipway/appliance/task"
)

// member is what admission needs of a batch's task.
type member struct {
	ID       string
	Group    int
	Admitted bool
	Finished bool
}

// admit says whether the update self, of group, may start: every member of
// a lower group has ended, and fewer than limit members are under way.
// why says what it waits for.
func admit(self string, group, limit int, members []member) (ok bool, why string) {
	running := 0
	for _, m := range members {
		switch {
		case m.ID == self:
		case m.Group < group && !m.Finished:
			return false, fmt.Sprintf("waiting for the batch's group %d updates to end (power shelves, then switches, then compute)", m.Group)
		case m.Admitted && !m.Finished:
			running++
		}
	}
	if limit > 0 && running >= limit {
		return false, fmt.Sprintf("waiting for a turn: %d of the batch's updates run at once", limit)
	}
	return true, ""
}

// batchKinds are the task kinds a batch is made of: firmware updates and
// DPU reprovisionings share its turns.
var batchKinds = []string{TaskKind, DPUTaskKind}

// turn is a batch member waiting for its turn: its task, its origin, and
// its result's admitted flag (setResult stores the result with it).
type turn struct {
	t         *task.Run
	o         Origin
	admitted  *bool
	setResult func()
}

// waitTurn waits until the task's batch lets it start, and stores that it
// did; it says false when ctx ended first. Admission is decided under one
// lock, so that two waiting tasks never take the last turn together.
func (u *Updater) waitTurn(ctx context.Context, w turn) bool {
	if w.o.Batch == "" || *w.admitted {
		return true
	}
	shown := ""
	for {
		u.batchMu.Lock()
		ok, why, err := u.mayStart(ctx, w)
		if ok {
			*w.admitted = true
			w.setResult()
			err = w.t.Save(ctx)
		}
		u.batchMu.Unlock()
		if err != nil {
			u.log.Warn("firmware batch: cannot decide", "task_id", w.t.ID, "error", err)
		}
		if ok && err == nil {
			return true
		}
		if why != shown && why != "" {
			w.t.Status, w.t.Message = task.Running, why
			_ = w.t.Save(ctx)
			shown = why
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(u.cfg.PollEvery):
		}
	}
}

func (u *Updater) mayStart(ctx context.Context, w turn) (bool, string, error) {
	var members []member
	for _, kind := range batchKinds {
		tasks, err := u.cfg.Reader.TasksInBatch(ctx, kind, w.o.Batch)
		if err != nil {
			return false, "", err
		}
		for _, t := range tasks {
			var o Origin
			var r struct {
				Admitted bool `json:"admitted"`
			}
			_ = json.Unmarshal(t.Params, &o)
			_ = json.Unmarshal(t.Result, &r)
			members = append(members, member{ID: t.ID, Group: o.Group, Admitted: r.Admitted, Finished: t.Finished()})
		}
	}
	ok, why := admit(w.t.ID, w.o.Group, w.o.Limit, members)
	return ok, why, nil
}
