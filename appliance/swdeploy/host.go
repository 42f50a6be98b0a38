package swdeploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/store"
)

// hostParams say what a host task does.
type hostParams struct {
	MachineID string `json:"machine_id"`
	Hostname  string `json:"hostname"`
	// ReleaseID is the release the host is put on ("" for its profile).
	ReleaseID string `json:"release_id"`
	Rollback  bool   `json:"rollback"`
}

// hostResult is how far a host task has come.
type hostResult struct {
	// Requested: the release was set and provisioning asked for (a resume
	// provisions again only if the machine never left ready).
	Requested bool `json:"requested"`
}

func hostLocks(r *task.Run) []string { return []string{"machine:" + r.MachineID} }

// DeployHost reprovisions a pending (or failed) host into the deploy's
// release (asynchronous: the host ends deployed or failed). Unless force,
// the host must be ready.
func (s *Service) DeployHost(ctx context.Context, name string, force bool) (string, error) {
	return s.hostOp(ctx, name, force, false)
}

// RollbackHost reprovisions a host back to the release it ran.
func (s *Service) RollbackHost(ctx context.Context, name string, force bool) (string, error) {
	return s.hostOp(ctx, name, force, true)
}

func (s *Service) hostOp(ctx context.Context, name string, force, rollback bool) (string, error) {
	op, may, busy, want := OpHost, HostMayDeploy, HostDeploying, "pending or failed"
	if rollback {
		op, may, busy, want = OpHostRollback, HostMayRollBack, HostRollbackDeploying, "rollback-pending or rollback-failed"
	}
	var p hostParams
	var previous string
	_, err := s.operate(ctx, op, func(_ *store.Tx, d *Deploy) error {
		h, err := d.host(name)
		if err != nil {
			return err
		}
		if !may(h.State) {
			return Refusal(fmt.Sprintf("Host %s is %s: it can be %s when it is %s", h.Hostname, h.State, verb(rollback), want))
		}
		if st, _ := s.cfg.Machines.State(h.MachineID); !force && st.State != domain.StateReady && st.State != domain.StateAssigned && !rollback {
			return Refusal(fmt.Sprintf("Host %s is not ready (%s): deploy it with force to proceed anyway", h.Hostname, st.Label()))
		}
		p = hostParams{MachineID: h.MachineID, Hostname: h.Hostname, ReleaseID: d.ToReleaseID, Rollback: rollback}
		if rollback {
			p.ReleaseID = h.FromReleaseID
			d.State = HostRollback
		} else {
			d.State = Host
		}
		previous, h.State, h.Error = h.State, busy, ""
		return nil
	})
	if err != nil {
		return "", err
	}
	t, err := s.cfg.Tasks.Submit(ctx, task.New{Kind: kindHost, MachineID: p.MachineID, Step: "provision",
		Message: fmt.Sprintf("%s %s", verb(rollback), p.Hostname), Params: p, Result: hostResult{}})
	if err != nil {
		_, _ = s.update(ctx, func(_ *store.Tx, d *Deploy) error { return d.setHost(p.MachineID, previous, err.Error(), rollback) })
		return "", err
	}
	_, _ = s.update(ctx, func(_ *store.Tx, d *Deploy) error {
		if h, err := d.host(p.MachineID); err == nil {
			h.TaskID = t.ID
		}
		return nil
	})
	if rollback {
		return fmt.Sprintf("Host rollback request sent to %s.\n", p.Hostname), nil
	}
	return fmt.Sprintf("Host deployment request sent to %s.\n", p.Hostname), nil
}

func verb(rollback bool) string {
	if rollback {
		return "rolled back"
	}
	return "deployed"
}

// setHost records a host's new state and what the deploy's state adds up
// to, while the deploy is deploying (or rolling back) hosts.
func (d *Deploy) setHost(machineID, state, errText string, rollback bool) error {
	h, err := d.host(machineID)
	if err != nil {
		return err
	}
	h.State, h.Error = state, errText
	busy := []string{StartDone, Host, HostFailed}
	if rollback {
		busy = []string{ActivateRollbackDone, HostRollback, HostRollbackFailed}
	}
	if slices.Contains(busy, d.State) {
		d.State = Aggregate(d.hostStates(), rollback)
	}
	return nil
}

// runHost puts the host on its release, reprovisions it through its BMC,
// and waits for it to onboard to ready.
func (s *Service) runHost(ctx context.Context, r *task.Run) {
	var p hostParams
	var res hostResult
	if err := r.DecodeParams(&p); err != nil {
		return
	}
	_ = r.DecodeResult(&res)
	if r.Status != task.Running {
		r.Status, r.Progress = task.Running, 5
	}
	err := s.provisionHost(ctx, r, p, &res)
	if err == nil {
		err = s.waitReady(ctx, r, p)
	}
	if ctx.Err() != nil {
		return // stopping: resumed at the stored step
	}
	state, msg := HostDeployed, p.Hostname+" runs its release and is ready"
	if p.Rollback {
		state = HostRollbackDeployed
	}
	if err != nil {
		state, msg = HostFailedState, err.Error()
		if p.Rollback {
			state = HostRollbackFailedSt
		}
	}
	errText := ""
	if err != nil {
		errText = msg
	}
	if _, uerr := s.update(ctx, func(_ *store.Tx, d *Deploy) error { return d.setHost(p.MachineID, state, errText, p.Rollback) }); uerr != nil {
		s.cfg.Log.Warn("deploy host: cannot record its end", "machine_id", p.MachineID, "error", uerr)
	}
	s.cfg.Log.Info("deploy host ended", "machine_id", p.MachineID, "state", state, "detail", msg)
	finish(ctx, r, err == nil, msg)
}

func (s *Service) provisionHost(ctx context.Context, r *task.Run, p hostParams, res *hostResult) error {
	if r.Step != "provision" {
		return nil
	}
	if st, _ := s.cfg.Machines.State(p.MachineID); res.Requested && st.State != domain.StateReady && st.State != domain.StateAssigned {
		r.Step = "wait" // provisioned before a restart: it is on its way
		return r.Save(ctx)
	}
	if err := s.cfg.Machines.SetRelease(ctx, p.MachineID, p.ReleaseID); err != nil {
		return err
	}
	res.Requested = true
	r.SetResult(res)
	r.Message = "asking " + p.Hostname + "'s BMC to netboot it"
	if err := r.Save(ctx); err != nil {
		return err
	}
	prov, err := s.cfg.Provision.Provision(ctx, p.MachineID, bmc.ProvisionOptions{})
	if err != nil {
		return fmt.Errorf("reprovision %s: %w", p.Hostname, err)
	}
	r.Step, r.Progress = "wait", 20
	r.Message = fmt.Sprintf("%s netboots (%s %s); waiting for it to be ready", p.Hostname, prov.Target, prov.Reset)
	return r.Save(ctx)
}

// errHostFailed: the host's onboarding failed.
var errHostFailed = errors.New("the host failed")

func (s *Service) waitReady(ctx context.Context, r *task.Run, p hostParams) error {
	deadline := time.Now().Add(s.cfg.HostTimeout)
	shown := ""
	for {
		st, _ := s.cfg.Machines.State(p.MachineID)
		switch st.State {
		case domain.StateReady:
			return nil
		case domain.StateFailed:
			cause := st.Label()
			if st.Details != nil {
				cause = st.Details.Cause.Err
			}
			return fmt.Errorf("%w: %s", errHostFailed, cause)
		}
		if label := st.Label(); label != shown {
			shown, r.Message = label, p.Hostname+" is "+label
			_ = r.Save(ctx)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready %s after it was reprovisioned (it is %s)", p.Hostname, s.cfg.HostTimeout, st.Label())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.cfg.PollEvery):
		}
	}
}

// runActivate checks that every host runs the release and is ready.
func (s *Service) runActivate(ctx context.Context, r *task.Run) {
	var p struct {
		ReleaseID string `json:"release_id"`
	}
	_ = r.DecodeParams(&p)
	all, err := domain.AllMachines(ctx, s.cfg.Fleet)
	if ctx.Err() != nil {
		return // stopping: resumed later
	}
	if err != nil {
		finish(ctx, r, false, err.Error())
		return
	}
	var problems []string
	d, err := s.update(ctx, func(_ *store.Tx, d *Deploy) error {
		for _, h := range d.Hosts {
			i := slices.IndexFunc(all, func(m domain.MachineRecord) bool { return m.ID == h.MachineID })
			switch {
			case i < 0:
				problems = append(problems, h.Hostname+" is gone")
			case all[i].ReleaseID != p.ReleaseID:
				problems = append(problems, fmt.Sprintf("%s runs %q", h.Hostname, all[i].ReleaseID))
			case all[i].StateName != domain.StateReady && all[i].StateName != domain.StateAssigned:
				problems = append(problems, h.Hostname+" is "+all[i].StateName)
			}
		}
		d.State = ActivateDone
		if len(problems) > 0 {
			d.State = ActivateFailed
		}
		return nil
	})
	if err != nil {
		finish(ctx, r, false, err.Error())
		return
	}
	msg := fmt.Sprintf("every host runs %s and is ready", p.ReleaseID)
	if d.State == ActivateFailed {
		msg = fmt.Sprint(problems)
	}
	finish(ctx, r, d.State == ActivateDone, msg)
}
