package firmware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
)

// DPU reprovisioning reinstalls the operating system of a host's DPUs (the
// BFB image of a BlueField) through each DPU's own BMC, power-cycles the
// host so that it comes up with them, and checks the version each DPU
// reports. It is one task per host: the DPUs are reinstalled together, and
// the host's one power cycle serves them all.

// DPUTaskKind is the kind of the stored tasks that reprovision a host's DPUs.
const DPUTaskKind = "dpu-reprovision"

// DPUComponent is the firmware inventory member a DPU's BMC installs its
// operating system as (BlueField BMCs call it DPU_OS); the images of the
// library for it are BFBs.
const DPUComponent = "DPU_OS"

// The steps of a DPU reprovisioning, named as the schema's ReprovisionState.
const (
	dpuStepInstall  = "installdpuos"
	dpuStepPowerOff = domain.DPUPoweringOffHost
	dpuStepOff      = domain.DPUPowerDown
	dpuStepBuffer   = domain.DPUBufferTime
	dpuStepVerify   = domain.DPUVerifyFirmware
	dpuStepDone     = domain.DPUNotUnderReprovision
	dpuStepFailed   = "failed"
)

// DPUParams say what a DPU reprovisioning does; they never change.
type dpuParams struct {
	HostID    string   `json:"host_id"`
	HostBMCID string   `json:"host_bmc_id"`
	DPUs      []dpuRef `json:"dpus"`
	ImageID   string   `json:"image_id"`
	Version   string   `json:"version"`
	ImageURI  string   `json:"image_uri"`
	// BufferSeconds is how long the host stays off.
	BufferSeconds int  `json:"buffer_seconds"`
	WasReady      bool `json:"was_ready"`
	Origin
}

type dpuRef struct {
	MachineID string `json:"machine_id"`
	BMCID     string `json:"bmc_id"`
}

// dpuResult is what a DPU reprovisioning has found and done so far.
type dpuResult struct {
	Admitted bool `json:"admitted,omitempty"`
	// DPUs are each DPU's install, by machine id.
	DPUs map[string]*dpuInstall `json:"dpus"`
	// PoweredOffAt: the host was powered off (once, even across a restart).
	PoweredOffAt time.Time `json:"powered_off_at,omitzero"`
	PoweredOn    bool      `json:"powered_on,omitempty"`
}

// dpuInstall is one DPU's install.
type dpuInstall struct {
	State       json.RawMessage `json:"state"` // its ReprovisionState
	RedfishTask string          `json:"redfish_task,omitempty"`
	// SubmittedAt is stored before SimpleUpdate is sent, as for updates.
	SubmittedAt     time.Time `json:"submitted_at,omitzero"`
	PreviousVersion string    `json:"previous_version,omitempty"`
	Installed       bool      `json:"installed,omitempty"`
}

// DPUReprovision is what StartDPU reprovisions: a host, its DPUs, and the
// DPU_OS image they get.
type DPUReprovision struct {
	HostID     string
	DPUIDs     []string
	ImageID    string
	BufferTime time.Duration
	Origin     Origin
}

// StartDPU queues the reprovisioning of a host's DPUs. The host's
// lifecycle must allow it, the image must be a DPU_OS image, and the host
// and each DPU must have a BMC.
func (u *Updater) StartDPU(ctx context.Context, d DPUReprovision) (task.Task, error) {
	im, err := u.cfg.Images.Image(ctx, d.ImageID)
	if err != nil {
		return task.Task{}, err
	}
	if !strings.EqualFold(im.Component, DPUComponent) {
		return task.Task{}, fmt.Errorf("image %s is %s firmware, not a DPU operating system (%s)", im.ID, im.Component, DPUComponent)
	}
	if len(d.DPUIDs) == 0 {
		return task.Task{}, fmt.Errorf("host %s has no DPU", d.HostID)
	}
	host, err := u.cfg.BMCs.ForMachine(d.HostID)
	if err != nil {
		return task.Task{}, err
	}
	p := dpuParams{HostID: d.HostID, HostBMCID: host.ID, ImageID: im.ID, Version: im.Version, ImageURI: u.cfg.ImageURL(im.ID),
		BufferSeconds: int(d.BufferTime / time.Second), Origin: d.Origin}
	r := dpuResult{DPUs: map[string]*dpuInstall{}}
	for _, id := range d.DPUIDs {
		b, err := u.cfg.BMCs.ForMachine(id)
		if err != nil {
			return task.Task{}, fmt.Errorf("DPU %s of %s: %w", id, d.HostID, err)
		}
		p.DPUs = append(p.DPUs, dpuRef{MachineID: id, BMCID: b.ID})
		r.DPUs[id] = &dpuInstall{State: json.RawMessage(domain.InstallingBFB())}
	}
	if err := u.cfg.Machines.Check(d.HostID, domain.Event{Kind: domain.EventDPUStart}); err != nil && !errors.Is(err, domain.ErrNoChange) {
		return task.Task{}, fmt.Errorf("DPU reprovisioning of %s: %w", d.HostID, err)
	}
	p.WasReady = u.wasReady(ctx, d.HostID)
	t, err := u.cfg.Tasks.Submit(ctx, task.New{Kind: DPUTaskKind, MachineID: d.HostID, Step: dpuStepInstall,
		Message: fmt.Sprintf("reinstall %d DPU(s) with %s %s (image %s)", len(p.DPUs), DPUComponent, im.Version, im.ID[:12]),
		Params:  p, Result: r, WaitForLocks: d.Origin.Batch != ""})
	if err != nil {
		return task.Task{}, fmt.Errorf("DPU reprovisioning of %s: %w", d.HostID, err)
	}
	u.log.Info("DPU reprovisioning queued", "task_id", t.ID, "machine_id", d.HostID, "dpus", d.DPUIDs, "version", im.Version)
	return t, nil
}

// dpuLocks: the host, its DPUs and all their BMCs.
func dpuLocks(r *task.Run) []string {
	var p dpuParams
	if r.DecodeParams(&p) != nil {
		return []string{"machine:" + r.MachineID}
	}
	locks := []string{"machine:" + p.HostID, "bmc:" + p.HostBMCID}
	for _, d := range p.DPUs {
		locks = append(locks, "machine:"+d.MachineID, "bmc:"+d.BMCID)
	}
	return locks
}

// dpuJob is one DPU reprovisioning being run.
type dpuJob struct {
	u *Updater
	t *task.Run
	p dpuParams
	r dpuResult
}

func resumeDPU(u *Updater, r *task.Run) (*dpuJob, error) {
	j := &dpuJob{u: u, t: r}
	if err := decodeRun(r, &j.p, &j.r); err != nil {
		return nil, err
	}
	if j.r.DPUs == nil {
		j.r.DPUs = map[string]*dpuInstall{}
	}
	for _, d := range j.p.DPUs {
		if j.r.DPUs[d.MachineID] == nil {
			j.r.DPUs[d.MachineID] = &dpuInstall{State: json.RawMessage(domain.InstallingBFB())}
		}
	}
	return j, nil
}

func (u *Updater) runDPU(ctx context.Context, r *task.Run) {
	j, err := resumeDPU(u, r)
	if err != nil {
		u.log.Error("DPU reprovisioning cannot resume", "task_id", r.ID, "error", err)
		return
	}
	if !u.waitTurn(ctx, turn{t: r, o: j.p.Origin, admitted: &j.r.Admitted, setResult: func() { r.SetResult(j.r) }}) {
		return
	}
	runSteps(ctx, j.t, map[string]func(context.Context) error{
		dpuStepInstall: j.install, dpuStepPowerOff: j.powerOff, dpuStepOff: j.waitOff, dpuStepBuffer: j.buffer, dpuStepVerify: j.verify,
	}, j.fail)
}

// install has every DPU's BMC install the image, and follows them all.
func (j *dpuJob) install(ctx context.Context) error {
	if j.t.Status != task.Running {
		j.t.Status, j.t.Progress = task.Running, 5
		if err := j.save(ctx, "checking the DPUs' operating system version"); err != nil {
			return err
		}
	}
	if err := j.lifecycle(ctx, domain.EventDPUStart); err != nil {
		return err
	}
	for _, d := range j.p.DPUs {
		if err := j.submit(ctx, d); err != nil {
			return fmt.Errorf("DPU %s: %w", d.MachineID, err)
		}
	}
	for {
		pending := 0
		for _, d := range j.p.DPUs {
			done, err := j.follow(ctx, d)
			if err != nil {
				return err
			}
			if !done {
				pending++
			}
		}
		if pending == 0 {
			return j.next(ctx, dpuStepPowerOff, 60, "every DPU installed "+j.p.Version+"; powering the host off")
		}
		if err := sleep(ctx, j.u.cfg.PollEvery); err != nil {
			return err
		}
	}
}

// submit starts one DPU's install, unless it was started (the BMC's task is
// followed, or found on the BMC after a restart) or is not needed.
func (j *dpuJob) submit(ctx context.Context, d dpuRef) error {
	in := j.r.DPUs[d.MachineID]
	if in.Installed || in.RedfishTask != "" {
		return nil
	}
	if !in.SubmittedAt.IsZero() {
		const clockSkew = 2 * time.Minute
		uris, err := retried(ctx, j.u.cfg.PollEvery, func() ([]string, error) {
			return j.u.cfg.BMCs.TasksSince(ctx, d.BMCID, in.SubmittedAt.Add(-clockSkew))
		})
		if err != nil {
			return err
		}
		if len(uris) > 0 {
			return j.started(ctx, in, uris[0], "found the install the DPU's BMC was given before Slipway restarted")
		}
	}
	cur, err := j.version(ctx, d)
	if err != nil {
		return err
	}
	if cur == j.p.Version {
		in.Installed, in.State = true, json.RawMessage(domain.InstalledDPUOS())
		return j.changed(ctx, fmt.Sprintf("DPU %s runs %s %s already", d.MachineID, DPUComponent, cur))
	}
	in.PreviousVersion, in.SubmittedAt = cur, time.Now().UTC().Truncate(time.Second)
	if err := j.save(ctx, fmt.Sprintf("asking DPU %s's BMC to install %s %s → %s", d.MachineID, DPUComponent, cur, j.p.Version)); err != nil {
		return err
	}
	uri, err := j.u.cfg.BMCs.SimpleUpdate(ctx, d.BMCID, j.p.ImageURI, DPUComponent)
	if err != nil {
		return err
	}
	if uri == "" {
		// Installed before the BMC answered: the verify step checks it.
		in.Installed, in.State = true, json.RawMessage(domain.InstalledDPUOS())
		return j.changed(ctx, fmt.Sprintf("DPU %s's BMC installed %s before answering", d.MachineID, DPUComponent))
	}
	return j.started(ctx, in, uri, fmt.Sprintf("DPU %s's BMC installs %s %s (task %s)", d.MachineID, DPUComponent, j.p.Version, uri))
}

func (j *dpuJob) started(ctx context.Context, in *dpuInstall, uri, msg string) error {
	in.RedfishTask, in.State = uri, json.RawMessage(domain.WaitForInstallComplete("0%", uri))
	return j.changed(ctx, msg)
}

// follow reads one DPU's install task; done when it ended well.
func (j *dpuJob) follow(ctx context.Context, d dpuRef) (done bool, err error) {
	in := j.r.DPUs[d.MachineID]
	if in.Installed {
		return true, nil
	}
	rt, err := retried(ctx, j.u.cfg.PollEvery, func() (bmc.RedfishTask, error) { return j.u.cfg.BMCs.Task(ctx, d.BMCID, in.RedfishTask) })
	if err != nil {
		return false, fmt.Errorf("DPU %s: %w", d.MachineID, err)
	}
	switch {
	case rt.Finished() && !rt.Gone && !rt.Succeeded():
		msg := fmt.Sprintf("DPU %s's BMC ended the install %s: %s", d.MachineID, rt.State, lastOr(rt.Messages, "it gave no reason"))
		in.State = json.RawMessage(domain.DPUInstallationError(msg))
		return false, errors.New(msg)
	case rt.Finished():
		in.Installed, in.State = true, json.RawMessage(domain.InstalledDPUOS())
		return true, j.changed(ctx, fmt.Sprintf("DPU %s installed %s %s", d.MachineID, DPUComponent, j.p.Version))
	}
	state := json.RawMessage(domain.WaitForInstallComplete(fmt.Sprintf("%d%%", rt.Percent), in.RedfishTask))
	if string(state) != string(in.State) {
		in.State = state
		return false, j.changed(ctx, lastOr(rt.Messages, fmt.Sprintf("DPU %s installing: %d%%", d.MachineID, rt.Percent)))
	}
	return false, nil
}

// powerOff turns the host off, once.
func (j *dpuJob) powerOff(ctx context.Context) error {
	if err := j.lifecycle(ctx, domain.EventDPUStep); err != nil {
		return err
	}
	if j.r.PoweredOffAt.IsZero() {
		if _, err := j.u.cfg.BMCs.Power(ctx, j.p.HostBMCID, bmc.PowerOff); err != nil {
			return fmt.Errorf("power the host off: %w", err)
		}
		j.r.PoweredOffAt = time.Now().UTC()
	}
	return j.next(ctx, dpuStepOff, 65, "waiting for the host's BMC to report it off")
}

// waitOff waits for the host's BMC to report it off.
func (j *dpuJob) waitOff(ctx context.Context) error {
	if err := j.lifecycle(ctx, domain.EventDPUStep); err != nil {
		return err
	}
	if err := j.hostPower(ctx, "Off", "powered off"); err != nil {
		return err
	}
	return j.next(ctx, dpuStepBuffer, 70, fmt.Sprintf("the host is off; it stays off %ds", j.p.BufferSeconds))
}

// hostPower waits for the host's BMC to report the power state want.
func (j *dpuJob) hostPower(ctx context.Context, want, after string) error {
	deadline := time.Now().Add(j.u.cfg.VerifyFor)
	for {
		s, err := j.u.cfg.BMCs.Status(j.p.HostBMCID)
		if err != nil {
			return err
		}
		if strings.EqualFold(s.Inventory.PowerState, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s after it was %s, the host's BMC reports it %q", j.u.cfg.VerifyFor, after, s.Inventory.PowerState)
		}
		if err := sleep(ctx, j.u.cfg.PollEvery); err != nil {
			return err
		}
	}
}

// buffer keeps the host off for the buffer time, then powers it on, once.
func (j *dpuJob) buffer(ctx context.Context) error {
	if err := j.lifecycle(ctx, domain.EventDPUStep); err != nil {
		return err
	}
	if !j.r.PoweredOn {
		if err := sleep(ctx, time.Until(j.r.PoweredOffAt.Add(time.Duration(j.p.BufferSeconds)*time.Second))); err != nil {
			return err
		}
		if _, err := j.u.cfg.BMCs.Power(ctx, j.p.HostBMCID, bmc.PowerOn); err != nil {
			return fmt.Errorf("power the host on: %w", err)
		}
		j.r.PoweredOn = true
	}
	return j.next(ctx, dpuStepVerify, 80, "the host is on; waiting for every DPU to report "+j.p.Version)
}

// verify waits for the host to be on and every DPU's BMC to report the
// new version.
func (j *dpuJob) verify(ctx context.Context) error {
	if err := j.lifecycle(ctx, domain.EventDPUStep); err != nil {
		return err
	}
	if err := j.hostPower(ctx, "On", "powered on"); err != nil {
		return err
	}
	deadline := time.Now().Add(j.u.cfg.VerifyFor)
	for {
		var wrong []string
		for _, d := range j.p.DPUs {
			fw, err := j.u.cfg.BMCs.Firmware(ctx, d.BMCID)
			if cur := versionOf(fw, DPUComponent); err != nil || cur != j.p.Version {
				wrong = append(wrong, fmt.Sprintf("%s reports %q", d.MachineID, cur))
			}
		}
		if len(wrong) == 0 {
			return j.complete(ctx)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s after the host was powered on, not every DPU runs %s %s: %s",
				j.u.cfg.VerifyFor, DPUComponent, j.p.Version, strings.Join(wrong, ", "))
		}
		if err := sleep(ctx, j.u.cfg.PollEvery); err != nil {
			return err
		}
	}
}

func (j *dpuJob) complete(ctx context.Context) error {
	j.t.Step, j.t.Status, j.t.Progress, j.t.FinishedAt = dpuStepDone, task.Succeeded, 100, time.Now()
	j.allAt(domain.DPUStep(dpuStepDone))
	if err := j.save(ctx, fmt.Sprintf("every DPU runs %s %s", DPUComponent, j.p.Version)); err != nil {
		return err
	}
	j.u.log.Info("DPUs reprovisioned", "task_id", j.t.ID, "machine_id", j.p.HostID, "version", j.p.Version)
	return j.lifecycle(ctx, domain.EventDPUDone)
}

// fail ends the task; the host stays in dpureprovision, each DPU showing
// where it stopped (an install that failed says why).
func (j *dpuJob) fail(ctx context.Context, cause error) {
	msg := cause.Error()
	j.t.Step, j.t.Status, j.t.FinishedAt = dpuStepFailed, task.Failed, time.Now()
	if err := j.save(ctx, msg); err != nil {
		j.u.log.Error("DPU reprovisioning: cannot record its failure", "task_id", j.t.ID, "error", err)
		return
	}
	j.u.log.Warn("DPU reprovisioning failed", "task_id", j.t.ID, "machine_id", j.p.HostID, "error", msg)
	if err := j.lifecycle(ctx, domain.EventDPUStep); err != nil {
		j.u.log.Error("DPU reprovisioning: the lifecycle did not follow its failure", "task_id", j.t.ID, "error", err)
	}
}

// cancelledDPU marks the DPUs not yet installed with why: their BMC may
// have been installing, and an operator should look.
func (u *Updater) cancelledDPU(ctx context.Context, r *task.Run) {
	j, err := resumeDPU(u, r)
	if err != nil {
		return
	}
	for _, in := range j.r.DPUs {
		if !in.Installed {
			in.State = json.RawMessage(domain.DPUInstallationError("cancelled at " + r.Step))
		}
	}
	j.t.Step = dpuStepFailed
	j.t.SetResult(j.r)
	if err := j.lifecycle(ctx, domain.EventDPUStep); err != nil {
		u.log.Warn("DPU reprovisioning cancelled: the lifecycle did not follow", "task_id", r.ID, "error", err)
	}
}

// version reads a DPU's operating system version now.
func (j *dpuJob) version(ctx context.Context, d dpuRef) (string, error) {
	fw, err := retried(ctx, j.u.cfg.PollEvery, func() ([]bmc.Firmware, error) { return j.u.cfg.BMCs.Firmware(ctx, d.BMCID) })
	if err != nil {
		return "", err
	}
	if v := versionOf(fw, DPUComponent); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("its BMC reports no %s firmware component (it has %s)", DPUComponent, firmwareNames(fw))
}

func firmwareNames(fw []bmc.Firmware) string {
	ids := make([]string, len(fw))
	for i, f := range fw {
		ids[i] = f.ID
	}
	return strings.Join(ids, ", ")
}

// next moves to a step that every DPU shows.
func (j *dpuJob) next(ctx context.Context, step string, progress int, msg string) error {
	j.t.Step, j.t.Progress = step, progress
	j.allAt(domain.DPUStep(step))
	return j.save(ctx, msg)
}

func (j *dpuJob) allAt(r domain.Reprovision) {
	for _, in := range j.r.DPUs {
		in.State = json.RawMessage(r)
	}
}

// changed stores a DPU's new state and shows it in the host's lifecycle.
func (j *dpuJob) changed(ctx context.Context, msg string) error {
	if err := j.save(ctx, msg); err != nil {
		return err
	}
	return j.lifecycle(ctx, domain.EventDPUStep)
}

// lifecycle shows the DPUs' states in the host's; a repeat is no news.
func (j *dpuJob) lifecycle(ctx context.Context, kind domain.EventKind) error {
	states := make(map[string]domain.Reprovision, len(j.r.DPUs))
	for id, in := range j.r.DPUs {
		states[id] = domain.Reprovision(in.State)
	}
	_, err := j.u.cfg.Machines.Apply(ctx, j.p.HostID, domain.Event{Kind: kind, DPUStates: states, WasReady: j.p.WasReady,
		Cause: fmt.Sprintf("DPU reprovisioning %s: %s", j.t.ID, j.t.Step)})
	if errors.Is(err, domain.ErrNoChange) {
		return nil
	}
	return err
}

func (j *dpuJob) save(ctx context.Context, msg string) error { return saveRun(ctx, j.t, j.r, msg) }
