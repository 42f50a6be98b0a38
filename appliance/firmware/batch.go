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

// admitted waits until the job's batch lets it start, and stores that it
// did; it says false when ctx ended first. Admission is decided under one
// lock, so that two waiting updates never take the last turn together.
func (j *job) admitted(ctx context.Context) bool {
	if j.p.Batch == "" || j.r.Admitted {
		return true
	}
	u := j.u
	shown := ""
	for {
		u.batchMu.Lock()
		ok, why, err := u.mayStart(ctx, j)
		if ok {
			j.r.Admitted = true
			j.t.SetResult(j.r)
			err = j.t.Save(ctx)
		}
		u.batchMu.Unlock()
		if err != nil {
			u.log.Warn("firmware batch: cannot decide", "task_id", j.t.ID, "error", err)
		}
		if ok && err == nil {
			return true
		}
		if why != shown && why != "" {
			j.t.Status, j.t.Message = task.Running, why
			_ = j.t.Save(ctx)
			shown = why
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(u.cfg.PollEvery):
		}
	}
}

func (u *Updater) mayStart(ctx context.Context, j *job) (bool, string, error) {
	tasks, err := u.cfg.Reader.TasksInBatch(ctx, TaskKind, j.p.Batch)
	if err != nil {
		return false, "", err
	}
	members := make([]member, 0, len(tasks))
	for _, t := range tasks {
		var p params
		var r result
		_ = json.Unmarshal(t.Params, &p)
		_ = json.Unmarshal(t.Result, &r)
		members = append(members, member{ID: t.ID, Group: p.Group, Admitted: r.Admitted, Finished: t.Finished()})
	}
	ok, why := admit(j.t.ID, j.p.Group, j.p.Limit, members)
	return ok, why, nil
}
