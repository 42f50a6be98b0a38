package firmware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/store"
)

// BMCs is what an update needs of the BMC manager.
type BMCs interface {
	ForMachine(machineID string) (bmc.Status, error)
	Firmware(ctx context.Context, bmcID string) ([]bmc.Firmware, error)
	SimpleUpdate(ctx context.Context, bmcID, imageURI, component string) (string, error)
	Task(ctx context.Context, bmcID, uri string) (bmc.RedfishTask, error)
	Power(ctx context.Context, bmcID string, a bmc.PowerAction) (string, error)
	ResetBMC(ctx context.Context, bmcID string) error
	TasksSince(ctx context.Context, bmcID string, since time.Time) ([]string, error)
}

// Machines is the lifecycle an update moves.
type Machines interface {
	State(id string) (domain.State, bool)
	Check(id string, ev domain.Event) error
	Apply(ctx context.Context, id string, ev domain.Event) (domain.State, error)
}

// Announcer turns a task into its event-bus message.
type Announcer interface {
	TaskMessage(t task.Task) outbox.Message
}

// Config is what an Updater works with.
type Config struct {
	DB       *store.Store
	Commit   *store.Committer
	Images   *Library
	BMCs     BMCs
	Machines Machines
	Announce Announcer // nil: no bus messages
	// OutboxFilled is called after a commit that added to the outbox.
	OutboxFilled func()
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

// Updater runs firmware updates as stored, resumable tasks.
type Updater struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	running map[string]bool // task ids with a runner
	busy    map[string]bool // machine ids being updated
	run     context.Context // set by Run: runners stop with it
	started chan struct{}   // closed by Run, see Started
	wg      sync.WaitGroup
}

// NewUpdater makes an Updater; Run resumes and runs its tasks.
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
	return &Updater{cfg: cfg, log: cfg.Log, running: map[string]bool{}, busy: map[string]bool{}, started: make(chan struct{})}
}

// ErrBusy is an update asked for a machine already being updated.
var ErrBusy = errors.New("an update of this machine is already running")

// Start begins updating a machine's firmware with an image. It is refused
// before anything is written if the image, the BMC or the lifecycle says
// no.
func (u *Updater) Start(ctx context.Context, machineID, imageID string) (task.Task, error) {
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
	u.mu.Lock()
	if u.busy[machineID] {
		u.mu.Unlock()
		return task.Task{}, fmt.Errorf("machine %s: %w", machineID, ErrBusy)
	}
	u.busy[machineID] = true
	u.mu.Unlock()
	st, _ := u.cfg.Machines.State(machineID)
	p := params{MachineID: machineID, BMCID: b.ID, WasReady: st.State == domain.StateReady, ImageID: im.ID, Component: im.Component, Version: im.Version,
		FirmwareType: domain.FirmwareComponentType(im.Component), ImageURI: u.cfg.ImageURL(im.ID)}
	pj, _ := json.Marshal(p)
	j := &job{u: u, t: store.Task{ID: uuid.NewString(), Kind: TaskKind, MachineID: machineID, Status: "queued",
		Step: stepCheck, Params: string(pj)}, p: p}
	j.r.Substate = substate(stepCheck, p, result{})
	if err := j.save(ctx, fmt.Sprintf("update %s to %s with image %s", im.Component, im.Version, im.ID[:12])); err != nil {
		u.release(machineID)
		return task.Task{}, err
	}
	u.log.Info("firmware update queued", "task_id", j.t.ID, "machine_id", machineID, "bmc_id", b.ID,
		"component", im.Component, "version", im.Version)
	u.spawn(j.t)
	return task.FromStored(j.t), nil
}

func (u *Updater) release(machineID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.busy, machineID)
}

// Run resumes the updates a stop interrupted, runs new ones until ctx
// ends, then waits for their runners (which stop between two steps).
func (u *Updater) Run(ctx context.Context) error {
	u.mu.Lock()
	u.run = ctx
	u.mu.Unlock()
	unfinished, err := u.cfg.DB.UnfinishedTasks(ctx)
	close(u.started)
	if err != nil {
		return fmt.Errorf("resume firmware updates: %w", err)
	}
	for _, t := range unfinished {
		if t.Kind == TaskKind {
			u.log.Info("firmware update resumed", "task_id", t.ID, "machine_id", t.MachineID, "step", t.Step)
			u.spawn(t)
		}
	}
	<-ctx.Done()
	u.wg.Wait()
	return nil
}

// Started is closed once Run takes new updates and has found the
// interrupted ones (or failed to read them: Run then returns the error).
func (u *Updater) Started() <-chan struct{} { return u.started }

// spawn starts a task's runner, once, if Run runs.
func (u *Updater) spawn(t store.Task) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.run == nil || u.run.Err() != nil || u.running[t.ID] {
		return
	}
	u.running[t.ID], u.busy[t.MachineID] = true, true
	ctx := u.run
	u.wg.Go(func() {
		defer func() {
			u.mu.Lock()
			delete(u.running, t.ID)
			u.mu.Unlock()
		}()
		j, err := resume(u, t)
		if err != nil {
			u.log.Error("firmware update cannot resume", "task_id", t.ID, "error", err)
			return
		}
		j.run(ctx)
		if ctx.Err() == nil {
			u.release(t.MachineID)
		}
	})
}
