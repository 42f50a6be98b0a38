package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/task"
)

// runSite runs an action on the site as a whole.
func (s *Service) runSite(ctx context.Context, r *task.Run) {
	var p Params
	if err := r.DecodeParams(&p); err != nil {
		s.finish(ctx, r, Result{}, err)
		return
	}
	r.Status, r.Message = task.Running, p.Action
	if err := r.Save(ctx); err != nil {
		return
	}
	var res Result
	var err error
	switch p.Action {
	case ValidateDesign:
		res, err = s.validateDesign(ctx, p.DesignRef)
	case VerifySite:
		res, err = s.verifySite(ctx, p.DesignRef)
	case PrepareSite:
		res, err = s.prepareSite(ctx, p.DesignRef)
	default:
		err = fmt.Errorf("%w %s", ErrUnsupportedAction, p.Action)
	}
	s.finish(ctx, r, res, err)
}

// finish stores a task's end: its result, and failed when the result
// failed or err says why it could not run.
func (s *Service) finish(ctx context.Context, r *task.Run, res Result, err error) {
	if err != nil {
		res.say("task", r.ID, true, err.Error())
		res.Status = Failure
	}
	if res.Status == "" || res.Status == Incomplete {
		res.Status = Success
	}
	r.Status, r.Step, r.Progress, r.FinishedAt = task.Succeeded, "done", 100, time.Now()
	if res.Status == Failure {
		r.Status = task.Failed
	}
	r.Message = res.Status
	if n := res.Errors(); n > 0 {
		r.Message = fmt.Sprintf("%s, %d errors", res.Status, n)
	}
	r.SetResult(res)
	if err := r.Save(ctx); err != nil {
		s.log.Error("cannot store a finished task", "task_id", r.ID, "error", err)
	}
}

func (s *Service) validateDesign(ctx context.Context, ref string) (Result, error) {
	d, err := s.Design(ctx, ref)
	if err != nil {
		return Result{}, err
	}
	r := Result{Status: Incomplete}
	for _, p := range d.Problems {
		r.say("document", p.Document.String(), p.Level == design.Error, p.String())
	}
	if d.Valid() {
		r.Status = Success
	} else {
		r.Status = Failure
	}
	return r, nil
}

func (s *Service) verifySite(ctx context.Context, ref string) (Result, error) {
	r := Result{Status: Incomplete}
	if _, err := s.Design(ctx, ref); err != nil {
		r.say("site", "design", true, err.Error())
		r.fail("")
	} else {
		r.say("site", "design", false, "design "+ref+" reads")
		r.succeed("")
	}
	for _, c := range s.cfg.SiteChecks {
		if err := c.Run(ctx); err != nil {
			r.say("site", c.Name, true, c.Name+": "+err.Error())
			r.fail("")
			continue
		}
		r.say("site", c.Name, false, c.Name+": ok")
		r.succeed("")
	}
	return r, nil
}

func (s *Service) prepareSite(ctx context.Context, ref string) (Result, error) {
	d, err := s.Design(ctx, ref)
	if err != nil {
		return Result{}, err
	}
	if !d.Valid() {
		return Result{}, fmt.Errorf("the design has %d errors; validate_design lists them", len(d.Errors()))
	}
	nodes, _ := d.Select(nil)
	return s.Apply(ctx, d, nodes)
}

// runOverNodes runs an action over the nodes its filter selects: the
// nodes are listed in the inventory, a subtask per node is submitted, and
// the task ends when every subtask has.
func (s *Service) runOverNodes(ctx context.Context, r *task.Run) {
	var p Params
	var res Result
	if err := errors.Join(r.DecodeParams(&p), r.DecodeResult(&res)); err != nil {
		s.finish(ctx, r, res, err)
		return
	}
	if r.Step == "start" {
		r.Status, r.Message = task.Running, "selecting nodes"
		d, err := s.Design(ctx, p.DesignRef)
		if err == nil && !d.Valid() {
			err = fmt.Errorf("the design has %d errors; validate_design lists them", len(d.Errors()))
		}
		if err != nil {
			s.finish(ctx, r, res, err)
			return
		}
		if res.Nodes, err = d.Select(p.NodeFilter); err != nil {
			s.finish(ctx, r, res, err)
			return
		}
		if len(res.Nodes) == 0 {
			res.say("task", r.ID, false, "the node filter selects no node")
			s.finish(ctx, r, res, nil)
			return
		}
		applied, err := s.Apply(ctx, d, res.Nodes)
		if err != nil {
			s.finish(ctx, r, res, err)
			return
		}
		res.Messages = append(res.Messages, applied.Messages...)
		r.Step = "subtasks"
		r.SetResult(res)
		if err := r.Save(ctx); err != nil {
			return
		}
	}
	if r.Step == "subtasks" {
		s.submitSubtasks(ctx, r, p, &res)
		r.Step, r.Message = "waiting", fmt.Sprintf("%d nodes", len(res.Nodes))
		r.SetResult(res)
		if err := r.Save(ctx); err != nil {
			return
		}
	}
	s.waitSubtasks(ctx, r, &res)
}

// submitSubtasks submits the subtasks not submitted yet, saving the parent
// after each so that a resumed parent does not submit one twice.
func (s *Service) submitSubtasks(ctx context.Context, r *task.Run, p Params, res *Result) {
	for _, node := range res.Nodes[res.Submitted:] {
		sub := p
		sub.Parent, sub.Node = r.ID, node
		t, err := s.cfg.Engine.Submit(ctx, task.New{Kind: nodeKind(p.Action), MachineID: node, Step: "start",
			Message: "queued", Params: sub, Result: Result{Status: Incomplete}})
		if err != nil {
			res.say("node", node, true, "not started: "+err.Error())
			res.fail(node)
		} else {
			res.Subtasks = append(res.Subtasks, t.ID)
		}
		res.Submitted++
		r.SetResult(*res)
		if err := r.Save(ctx); err != nil {
			return
		}
	}
}

// waitSubtasks follows the subtasks until every one has ended, then ends
// with their results merged.
func (s *Service) waitSubtasks(ctx context.Context, r *task.Run, res *Result) {
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		merged, done, err := s.mergeSubtasks(ctx, *res)
		if ctx.Err() != nil {
			return // stopping: the resumed parent follows them again
		}
		if err != nil {
			s.finish(ctx, r, *res, err)
			return
		}
		if done {
			s.finish(ctx, r, merged, nil)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Service) mergeSubtasks(ctx context.Context, parent Result) (Result, bool, error) {
	out := parent
	out.Status = Incomplete
	for _, f := range parent.Failures {
		out.fail(f)
	}
	for _, id := range parent.Subtasks {
		t, err := s.tasks.Task(ctx, id)
		if err != nil {
			return out, false, err
		}
		if !t.Finished() {
			return out, false, nil
		}
		var sub Result
		_ = jsonDecode(t.Result, &sub)
		out.Messages = append(out.Messages, sub.Messages...)
		switch {
		case t.Status == task.Cancelled:
			out.say("node", t.MachineID, true, "cancelled")
			out.fail(t.MachineID)
		case sub.Status == Success || sub.Status == Unreported:
			out.succeed(t.MachineID)
		default:
			out.fail(t.MachineID)
		}
	}
	return out, true, nil
}

// cancelSubtasks cancels a cancelled action's subtasks.
func (s *Service) cancelSubtasks(ctx context.Context, r *task.Run) {
	var res Result
	if err := r.DecodeResult(&res); err != nil {
		return
	}
	for _, id := range res.Subtasks {
		if _, err := s.cfg.Engine.Cancel(ctx, id, "its parent task's cancel"); err != nil && !errors.Is(err, task.ErrFinished) {
			s.log.Warn("cannot cancel a subtask", "task_id", id, "error", err)
		}
	}
}
