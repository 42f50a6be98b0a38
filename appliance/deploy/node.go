package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
)

func jsonDecode(raw json.RawMessage, v any) error { return json.Unmarshal(raw, v) }

// runNode runs an action on one node.
func (s *Service) runNode(ctx context.Context, r *task.Run) {
	var p Params
	var res Result
	if err := errors.Join(r.DecodeParams(&p), r.DecodeResult(&res)); err != nil {
		s.finish(ctx, r, res, err)
		return
	}
	if r.Status == task.Queued {
		r.Status = task.Running
		if err := r.Save(ctx); err != nil {
			return
		}
	}
	var err error
	switch p.Action {
	case VerifyNodes:
		err = s.verifyNode(ctx, r.ID, p.Node, &res)
	case PrepareNodes:
		err = s.prepareNode(ctx, p.Node, &res)
	case DeployNodes:
		if !s.deployNode(ctx, r, p, &res) {
			return // stopping: resumed where it was
		}
	case DestroyNodes:
		err = s.destroyNode(ctx, p.Node, &res)
	case RelabelNodes:
		err = s.relabelNode(ctx, p, &res)
	default:
		err = fmt.Errorf("%w %s", ErrUnsupportedAction, p.Action)
	}
	if err != nil {
		res.say("node", p.Node, true, err.Error())
		res.fail(p.Node)
	} else if res.Status == Incomplete {
		res.succeed(p.Node)
	}
	s.finish(ctx, r, res, nil)
}

// verifyNode: the node's BMC answers and its inventory was read.
func (s *Service) verifyNode(ctx context.Context, taskID, node string, res *Result) error {
	st, err := s.cfg.BMCs.ForMachine(node)
	if err != nil {
		return fmt.Errorf("no BMC manages %s: %w", node, err)
	}
	if !st.Reachable {
		why := st.LastError
		if why == "" {
			why = "not polled yet"
		}
		return fmt.Errorf("BMC %s is not reachable: %s", st.Endpoint, why)
	}
	inv := st.Inventory
	res.say("node", node, false, fmt.Sprintf("BMC %s reachable: %s %s, serial %s, power %s, BIOS %s",
		st.Endpoint, inv.Manufacturer, inv.Model, inv.Serial, inv.PowerState, inv.BIOSVersion))
	return s.recordRedfish(ctx, node, taskID, st)
}

// prepareNode: powered off, ready for a network boot.
func (s *Service) prepareNode(ctx context.Context, node string, res *Result) error {
	st, err := s.cfg.BMCs.ForMachine(node)
	if err != nil {
		return fmt.Errorf("no BMC manages %s: power it off by hand: %w", node, err)
	}
	reset, err := s.cfg.BMCs.Power(ctx, st.ID, bmc.PowerOff)
	if err != nil {
		return err
	}
	res.say("node", node, false, "powered off through BMC "+st.Endpoint+" ("+reset+")")
	return nil
}

// destroyNode: powered off, its onboarding forgotten, so that the next
// deploy starts afresh.
func (s *Service) destroyNode(ctx context.Context, node string, res *Result) error {
	if st, err := s.cfg.BMCs.ForMachine(node); err == nil {
		if _, err := s.cfg.BMCs.Power(ctx, st.ID, bmc.PowerOff); err != nil {
			return err
		}
		res.say("node", node, false, "powered off through BMC "+st.Endpoint)
	} else {
		res.say("node", node, false, "no BMC: the node keeps running until powered off by hand")
	}
	n, err := s.cfg.Machines.ResetOnboarding(ctx, node)
	if err != nil {
		return err
	}
	res.say("node", node, false, fmt.Sprintf("%d onboarding heartbeats forgotten", n))
	return nil
}

// relabelNode: the design's inventory fields applied to the machine again
// (the labels this box keeps: hostname, rack, profile, BMC).
func (s *Service) relabelNode(ctx context.Context, p Params, res *Result) error {
	d, err := s.Design(ctx, p.DesignRef)
	if err != nil {
		return err
	}
	applied, err := s.Apply(ctx, d, []string{p.Node})
	res.Messages = append(res.Messages, applied.Messages...)
	if err == nil && applied.Status == Failure {
		err = errors.New("the node's BMC could not be registered")
	}
	return err
}

// deployNode takes a node from its boot action context to ready with its
// boot actions reported. It says false when ctx ended first (the task is
// resumed at its stored step).
func (s *Service) deployNode(ctx context.Context, r *task.Run, p Params, res *Result) bool {
	fail := func(err error) bool {
		res.say("node", p.Node, true, err.Error())
		res.fail(p.Node)
		return true
	}
	save := func(step, msg string) bool {
		r.Step, r.Message = step, msg
		r.SetResult(*res)
		return r.Save(ctx) == nil
	}
	if r.Step == "start" {
		n, err := s.createBootActions(ctx, r.ID, p)
		if err != nil {
			return fail(err)
		}
		res.say("node", p.Node, false, fmt.Sprintf("%d boot actions prepared", n))
		if !save("provision", "provisioning") {
			return false
		}
	}
	if r.Step == "provision" {
		if !s.waitFirstPoll(ctx, p.Node) {
			return false
		}
		prov, err := s.cfg.BMCs.Provision(ctx, p.Node, bmc.ProvisionOptions{})
		if err != nil {
			return fail(err)
		}
		msg := "provisioning: one-time network boot"
		if prov.BMCID == "" {
			msg = "no BMC: the node deploys at its next network boot"
		}
		res.say("node", p.Node, false, msg)
		res.Since = time.Now().UTC()
		if !save("netboot", "waiting for the node to netboot and onboard") {
			return false
		}
	}
	if r.Step == "netboot" {
		ok, err := s.waitReady(ctx, p.Node, res.Since)
		if ctx.Err() != nil {
			return false
		}
		if err != nil {
			return fail(err)
		}
		if ok {
			res.say("node", p.Node, false, "the node is ready")
			res.Since = time.Now().UTC()
			if !save("bootactions", "waiting for boot action reports") {
				return false
			}
		}
	}
	if r.Step == "bootactions" {
		err := s.waitBootActions(ctx, r.ID, p.Node, res)
		if ctx.Err() != nil {
			return false
		}
		s.recordDeployData(ctx, r.ID, p.Node)
		if err != nil {
			return fail(err)
		}
	}
	return true
}

// firstPollWait bounds how long a deploy waits for a new BMC's first poll.
const firstPollWait = 30 * time.Second

// waitFirstPoll waits until the node's BMC (if it has one) has been polled:
// a node a design knows by its BMC alone learns its NICs there, and must
// before it netboots, or its DHCP request would make it a stranger. It says
// false when ctx ended.
func (s *Service) waitFirstPoll(ctx context.Context, node string) bool {
	tick := time.NewTicker(s.cfg.Poll / 4)
	defer tick.Stop()
	deadline := time.Now().Add(firstPollWait)
	for time.Now().Before(deadline) {
		st, err := s.cfg.BMCs.ForMachine(node)
		if err != nil || st.Reachable || st.LastError != "" {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// waitReady waits for a node to reach ready; failed or the deploy timeout
// is an error.
func (s *Service) waitReady(ctx context.Context, node string, since time.Time) (bool, error) {
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		st, ok := s.cfg.Machines.State(node)
		switch {
		case !ok:
			return false, fmt.Errorf("machine %s is gone", node)
		case st.State == domain.StateReady:
			return true, nil
		case st.State == domain.StateFailed:
			return false, fmt.Errorf("the node failed while deploying (%s)", st.JSON())
		case time.Since(since) > s.cfg.DeployTimeout:
			return false, fmt.Errorf("the node was not ready within %s (it is %s)", s.cfg.DeployTimeout, st.State)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick.C:
		}
	}
}
