package firmware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
)

// BMCs is what an update needs of the BMC manager.
type BMCs interface {
	ForMachine(machineID string) (bmc.Status, error)
	Firmware(ctx context.Context, bmcID string) ([]bmc.Firmware, error)
	SimpleUpdate(ctx context.Context, bmcID, imageURI, component string) (string, error)
	Task(ctx context.Context, bmcID, uri string) (bmc.RedfishTask, error)
	Power(ctx context.Context, bmcID string, a bmc.PowerAction) (string, error)
	ResetBMC(ctx context.Context, bmcID string) error
	Status(bmcID string) (bmc.Status, error)
	TasksSince(ctx context.Context, bmcID string, since time.Time) ([]string, error)
}

// Machines is the lifecycle an update moves.
type Machines interface {
	State(id string) (domain.State, bool)
	Check(id string, ev domain.Event) error
	Apply(ctx context.Context, id string, ev domain.Event) (domain.State, error)
}

// Config is what an Updater works with.
type Config struct {
	// Tasks runs the updates, as the stored tasks of kind TaskKind.
	Tasks    *task.Engine
	Images   *Library
	BMCs     BMCs
	Machines Machines
	// Reader reads a batch's tasks (to pace it).
	Reader task.Reader
	// ImageURL is where a BMC fetches an image: the box's own HTTP.
	ImageURL func(imageID string) string
	Log      *slog.Logger
	// PollEvery paces following a BMC's task and waiting for a version
	// (default 2 s); VerifyFor is how long, after a reset, the new version
	// may take to be reported (default 15 min).
	PollEvery time.Duration
	VerifyFor time.Duration
}

// TaskKind is the kind of the stored tasks an Updater runs.
const TaskKind = "firmware-update"

// Updater runs firmware updates as stored, resumable tasks of the engine.
type Updater struct {
	cfg Config
	log *slog.Logger
	// batchMu makes a batch's admissions one at a time.
	batchMu sync.Mutex
}

// NewUpdater makes an Updater and registers its kind with the engine,
// which runs its tasks and resumes them after a restart.
func NewUpdater(cfg Config) *Updater {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 2 * time.Second
	}
	if cfg.VerifyFor <= 0 {
		cfg.VerifyFor = 15 * time.Minute
	}
	u := &Updater{cfg: cfg, log: cfg.Log}
	cfg.Tasks.Register(task.Kind{Name: TaskKind, Run: u.run, Locks: locks, Cancelled: u.cancelled})
	cfg.Tasks.Register(task.Kind{Name: DPUTaskKind, Run: u.runDPU, Locks: dpuLocks, Cancelled: u.cancelledDPU})
	return u
}

// Start queues an update of machineID's firmware with image imageID.
// The machine's lifecycle must allow it (it is refused before anything is
// stored), and no other task may be working on the machine or its BMC.
func (u *Updater) Start(ctx context.Context, machineID, imageID string) (task.Task, error) {
	return u.StartFor(ctx, machineID, imageID, Origin{})
}

// StartFor is Start for an update some larger operation asked for (a NICo
// batch): its origin is stored with the task.
func (u *Updater) StartFor(ctx context.Context, machineID, imageID string, o Origin) (task.Task, error) {
	im, err := u.cfg.Images.Image(ctx, imageID)
	if err != nil {
		return task.Task{}, err
	}
	b, err := u.cfg.BMCs.ForMachine(machineID)
	if err != nil {
		return task.Task{}, err
	}
	if err := u.cfg.Machines.Check(machineID, domain.Event{Kind: domain.EventFirmwareStart}); err != nil && !errors.Is(err, domain.ErrNoChange) {
		return task.Task{}, fmt.Errorf("firmware update of %s: %w", machineID, err)
	}
	p := params{MachineID: machineID, BMCID: b.ID, WasReady: u.wasReady(ctx, machineID), ImageID: im.ID, Component: im.Component, Version: im.Version,
		FirmwareType: domain.FirmwareComponentType(im.Component), ImageURI: u.cfg.ImageURL(im.ID), Origin: o}
	t, err := u.cfg.Tasks.Submit(ctx, task.New{Kind: TaskKind, MachineID: machineID, Step: stepCheck,
		Message: fmt.Sprintf("update %s to %s with image %s", im.Component, im.Version, im.ID[:12]),
		Params:  p, Result: result{Substate: substate(stepCheck, p, result{})},
		// A batch's updates of one machine run one after another.
		WaitForLocks: o.Batch != ""})
	if err != nil {
		return task.Task{}, fmt.Errorf("firmware update of %s: %w", machineID, err)
	}
	u.log.Info("firmware update queued", "task_id", t.ID, "machine_id", machineID, "bmc_id", b.ID,
		"component", im.Component, "version", im.Version)
	return t, nil
}

// wasReady says whether a machine returns to ready when its reprovisioning
// ends: it is ready now, or it is still in the reprovisioning a task began
// from ready (a second attempt after a failure keeps the first one's word).
func (u *Updater) wasReady(ctx context.Context, machineID string) bool {
	st, _ := u.cfg.Machines.State(machineID)
	switch st.State {
	case domain.StateReady:
		return true
	case domain.StateHostReprovision, domain.StateDPUReprovision:
	default:
		return false
	}
	tasks, err := u.cfg.Reader.Tasks(ctx, machineID, 50)
	if err != nil {
		u.log.Warn("cannot tell whether the machine was ready before its reprovisioning", "machine_id", machineID, "error", err)
		return false
	}
	for _, t := range tasks {
		if t.Kind == TaskKind || t.Kind == DPUTaskKind {
			var p struct {
				WasReady bool `json:"was_ready"`
			}
			_ = json.Unmarshal(t.Params, &p)
			return p.WasReady
		}
	}
	return false
}

// locks are what an update drives: the machine and its BMC.
func locks(r *task.Run) []string {
	var p params
	if r.DecodeParams(&p) != nil {
		return []string{"machine:" + r.MachineID}
	}
	return []string{"machine:" + p.MachineID, "bmc:" + p.BMCID}
}

// run takes an update from its stored step to its end.
func (u *Updater) run(ctx context.Context, r *task.Run) {
	j, err := resume(u, r)
	if err != nil {
		u.log.Error("firmware update cannot resume", "task_id", r.ID, "error", err)
		return
	}
	if !u.waitTurn(ctx, turn{t: r, o: j.p.Origin, admitted: &j.r.Admitted, setResult: func() { r.SetResult(j.r) }}) {
		return // stopping: it waits again when resumed
	}
	j.run(ctx)
}

// cancelled leaves the machine in failedfirmwareupgrade, saying so: the
// BMC may have been flashing, and an operator should look before it goes
// back into service.
func (u *Updater) cancelled(ctx context.Context, r *task.Run) {
	j, err := resume(u, r)
	if err != nil {
		return
	}
	msg := "cancelled at " + r.Step
	j.t.Step = stepFailed
	j.r.Substate = substate(stepFailed, j.p, j.r, msg)
	j.t.SetResult(j.r)
	if err := j.lifecycle(ctx, domain.EventFirmwareStep, domain.FailedFirmwareUpgrade(j.p.FirmwareType, msg, time.Now())); err != nil {
		u.log.Warn("firmware update cancelled: the lifecycle did not follow", "task_id", r.ID, "error", err)
	}
}
