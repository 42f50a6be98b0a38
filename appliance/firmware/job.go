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

// The steps of an update, named as NICo's BmcFirmwareUpgradeSubstate.
const (
	stepCheck     = "checkfwversion"
	stepWait      = "waitforupdatecompletion"
	stepReboot    = "reboot"         // the BMC restarts to run its new firmware
	stepPowerCyle = "hostpowercycle" // the host power-cycles to run its new firmware
	stepCompleted = "fwupdatecompleted"
	stepFailed    = "failed"
)

// params say what a task updates; they never change.
type params struct {
	MachineID    string `json:"machine_id"`
	BMCID        string `json:"bmc_id"`
	ImageID      string `json:"image_id"`
	Component    string `json:"component"`
	Version      string `json:"version"`
	FirmwareType string `json:"firmware_type"` // the schema's FirmwareComponentType
	ImageURI     string `json:"image_uri"`
	// WasReady: the machine returns to ready after the update (else to
	// created: known, not installed).
	WasReady bool `json:"was_ready"`
	Origin
}

// Origin says what asked for an update, beyond who: the NICo operation
// rule it is pinned to, and the batch (one request over many trays) it is
// part of.
type Origin struct {
	RuleID string `json:"rule_id,omitempty"`
	Batch  string `json:"batch,omitempty"`
	// Group orders a batch: no update starts while one of a lower group
	// has not ended (a rack's power shelves, then switches, then compute).
	Group int `json:"group,omitempty"`
	// Limit is how many updates of the batch run at once (0: no limit).
	Limit int `json:"limit,omitempty"`
}

// result is what a task has found and done so far.
type result struct {
	// Substate is the step as NICo's BmcFirmwareUpgradeSubstate.
	Substate    json.RawMessage `json:"substate"`
	RedfishTask string          `json:"redfish_task,omitempty"`
	// SubmittedAt is stored before SimpleUpdate is sent: a resume that
	// finds it without RedfishTask looks for the task on the BMC.
	SubmittedAt     time.Time `json:"submitted_at,omitzero"`
	PreviousVersion string    `json:"previous_version,omitempty"`
	// Admitted: its batch let it start (an update outside a batch starts
	// at once).
	Admitted    bool     `json:"admitted,omitempty"`
	Resets      uint32   `json:"resets,omitempty"`
	BMCMessages []string `json:"bmc_messages,omitempty"`
}

// substate encodes a step as the schema's BmcFirmwareUpgradeSubstate.
func substate(step string, p params, r result, details ...string) json.RawMessage {
	v := map[string]any{"bmcfirmwareupdatesubstate": step}
	switch step {
	case stepWait:
		v["firmware_type"], v["task_id"] = p.FirmwareType, r.RedfishTask
	case stepReboot:
		v["count"] = r.Resets
	case stepFailed:
		v["failure_details"] = strings.Join(details, "; ")
	}
	b, _ := json.Marshal(v)
	return b
}

// job is one update being run: its task, as the engine runs it, and what
// the task's params and result say.
type job struct {
	u *Updater
	t *task.Run
	p params
	r result
}

func resume(u *Updater, r *task.Run) (*job, error) {
	j := &job{u: u, t: r}
	return j, decodeRun(r, &j.p, &j.r)
}

// decodeRun reads a task's params and result.
func decodeRun(r *task.Run, params, result any) error {
	if err := r.DecodeParams(params); err != nil {
		return err
	}
	return r.DecodeResult(result)
}

func (j *job) target() domain.FirmwareTarget {
	return domain.FirmwareTarget{Type: j.p.FirmwareType, FinalVersion: j.p.Version}
}

// run takes the task from its stored step to its end, or until ctx ends
// (then it resumes from the stored step later).
func (j *job) run(ctx context.Context) {
	runSteps(ctx, j.t, map[string]func(context.Context) error{
		stepCheck: j.checkOrResume, stepWait: j.wait, stepReboot: j.reset, stepPowerCyle: j.reset,
	}, j.fail)
}

// runSteps runs a task's steps, each stored before the next, until the
// task reaches a step steps lacks (its end) or ctx ends; a step's error
// fails the task.
func runSteps(ctx context.Context, t *task.Run, steps map[string]func(context.Context) error, fail func(context.Context, error)) {
	for ctx.Err() == nil {
		step, ok := steps[t.Step]
		if !ok {
			return
		}
		if err := step(ctx); err != nil && ctx.Err() == nil {
			fail(ctx, err)
		}
	}
}

// checkOrResume submits the update, or, after a restart, follows or finds
// the one already submitted.
func (j *job) checkOrResume(ctx context.Context) error {
	switch {
	case j.r.RedfishTask != "":
		j.t.Step = stepWait // submitted before a restart: follow it
		return nil
	case !j.r.SubmittedAt.IsZero():
		return j.findSubmitted(ctx)
	}
	return j.check(ctx)
}

// check compares versions and submits the update.
func (j *job) check(ctx context.Context) error {
	if err := j.begin(ctx); err != nil {
		return err
	}
	cur, err := j.version(ctx)
	if err != nil {
		return err
	}
	if cur == j.p.Version {
		return j.complete(ctx, fmt.Sprintf("%s is at %s already: nothing to do", j.p.Component, cur))
	}
	j.r.PreviousVersion = cur
	// Stored first: if Slipway dies between the BMC accepting the update
	// and the commit of its task, the resume finds the task on the BMC.
	j.r.SubmittedAt = time.Now().UTC().Truncate(time.Second)
	if err := j.save(ctx, fmt.Sprintf("asking the BMC to flash %s %s → %s", j.p.Component, cur, j.p.Version)); err != nil {
		return err
	}
	return j.submit(ctx, cur)
}

// submit sends SimpleUpdate and follows the task it starts.
func (j *job) submit(ctx context.Context, cur string) error {
	uri, err := j.u.cfg.BMCs.SimpleUpdate(ctx, j.p.BMCID, j.p.ImageURI, j.p.Component)
	if err != nil {
		return err
	}
	if uri == "" {
		// The BMC flashed before it answered: the version says how it went.
		j.t.Progress = 80
		if err := j.save(ctx, "the BMC applied the update before answering, with no task: checking the version"); err != nil {
			return err
		}
		return j.afterFlash(ctx)
	}
	j.r.RedfishTask = uri
	j.t.Step, j.t.Progress = stepWait, 10
	if err := j.saveStep(ctx, fmt.Sprintf("the BMC is flashing %s %s → %s (task %s)", j.p.Component, cur, j.p.Version, uri)); err != nil {
		return err
	}
	return j.lifecycle(ctx, domain.EventFirmwareStep, domain.WaitingForFirmwareUpgrade(j.target(), uri, time.Now()))
}

// findSubmitted resumes an update that was being submitted when Slipway
// stopped: the task the BMC started since then is followed; with none, an
// update already applied is checked, else it is submitted (the BMC never
// got it).
func (j *job) findSubmitted(ctx context.Context) error {
	if err := j.begin(ctx); err != nil {
		return err
	}
	const clockSkew = 2 * time.Minute // the BMC's clock is not ours
	uris, err := retried(ctx, j.u.cfg.PollEvery, func() ([]string, error) {
		return j.u.cfg.BMCs.TasksSince(ctx, j.p.BMCID, j.r.SubmittedAt.Add(-clockSkew))
	})
	if err != nil {
		return err
	}
	if len(uris) > 0 {
		j.r.RedfishTask = uris[0]
		j.t.Step, j.t.Progress = stepWait, 10
		return j.saveStep(ctx, "found the update the BMC was given before Slipway restarted: "+uris[0])
	}
	cur, err := j.version(ctx)
	if err != nil {
		return err
	}
	if cur == j.p.Version {
		return j.complete(ctx, fmt.Sprintf("%s updated %s → %s", j.p.Component, j.r.PreviousVersion, cur))
	}
	return j.submit(ctx, cur)
}

// begin marks the task running and the machine in hostreprovision.
func (j *job) begin(ctx context.Context) error {
	if j.t.Status != task.Running {
		j.t.Status, j.t.Progress = task.Running, 5
		if err := j.save(ctx, "checking the firmware version"); err != nil {
			return err
		}
	}
	return j.lifecycle(ctx, domain.EventFirmwareStart, domain.CheckingFirmware())
}

// wait follows the BMC's task to its end, mirroring its progress.
func (j *job) wait(ctx context.Context) error {
	for {
		rt, err := retried(ctx, j.u.cfg.PollEvery, func() (bmc.RedfishTask, error) { return j.u.cfg.BMCs.Task(ctx, j.p.BMCID, j.r.RedfishTask) })
		if err != nil {
			return err
		}
		if progress := 10 + rt.Percent*70/100; progress != j.t.Progress && !rt.Finished() {
			j.t.Progress = progress
			if err := j.save(ctx, lastOr(rt.Messages, fmt.Sprintf("flashing %s: %d%%", j.p.Component, rt.Percent))); err != nil {
				return err
			}
		}
		if rt.Finished() {
			j.r.BMCMessages = rt.Messages
			if !rt.Gone && !rt.Succeeded() {
				return fmt.Errorf("the BMC's update task ended %s: %s", rt.State, strings.Join(rt.Messages, "; "))
			}
			return j.afterFlash(ctx)
		}
		if err := sleep(ctx, j.u.cfg.PollEvery); err != nil {
			return err
		}
	}
}

// afterFlash finishes if the new version shows, else resets what must run
// it: the host for host firmware, the BMC for its own.
func (j *job) afterFlash(ctx context.Context) error {
	cur, err := j.version(ctx)
	if err != nil {
		return err
	}
	if cur == j.p.Version {
		return j.complete(ctx, fmt.Sprintf("%s updated %s → %s", j.p.Component, j.r.PreviousVersion, cur))
	}
	j.t.Step = stepReboot
	if j.p.FirmwareType == "uefi" {
		j.t.Step = stepPowerCyle
	}
	j.t.Progress = 85
	return j.saveStep(ctx, fmt.Sprintf("flashed; %s still reports %s until it restarts", j.p.Component, cur))
}

// reset restarts the host or the BMC (once, even across a restart of
// Slipway) and waits for the new version to be reported.
func (j *job) reset(ctx context.Context) error {
	if err := j.lifecycle(ctx, domain.EventFirmwareStep, domain.ResetForNewFirmware(j.target())); err != nil {
		return err
	}
	if j.r.Resets == 0 {
		var err error
		if j.t.Step == stepPowerCyle {
			_, err = j.u.cfg.BMCs.Power(ctx, j.p.BMCID, bmc.PowerRestart)
		} else {
			err = j.u.cfg.BMCs.ResetBMC(ctx, j.p.BMCID)
		}
		if err != nil {
			return err
		}
		j.r.Resets = 1
		j.t.Progress = 90
		if err := j.saveStep(ctx, "restarted to run the new firmware; waiting for it to report "+j.p.Version); err != nil {
			return err
		}
	}
	if err := j.lifecycle(ctx, domain.EventFirmwareStep, domain.NewFirmwareReportedWait(j.target())); err != nil {
		return err
	}
	deadline := time.Now().Add(j.u.cfg.VerifyFor)
	cur := ""
	for time.Now().Before(deadline) {
		if err := sleep(ctx, j.u.cfg.PollEvery); err != nil {
			return err
		}
		fw, err := j.u.cfg.BMCs.Firmware(ctx, j.p.BMCID)
		if err != nil {
			continue // a restarting BMC does not answer for a while
		}
		if cur = versionOf(fw, j.p.Component); cur == j.p.Version {
			return j.complete(ctx, fmt.Sprintf("%s updated %s → %s", j.p.Component, j.r.PreviousVersion, cur))
		}
	}
	return fmt.Errorf("%s after the restart, the BMC reports %s %q, not %s", j.u.cfg.VerifyFor, j.p.Component, cur, j.p.Version)
}

// version reads the component's version now.
func (j *job) version(ctx context.Context) (string, error) {
	fw, err := retried(ctx, j.u.cfg.PollEvery, func() ([]bmc.Firmware, error) { return j.u.cfg.BMCs.Firmware(ctx, j.p.BMCID) })
	if err != nil {
		return "", err
	}
	v := versionOf(fw, j.p.Component)
	if v == "" {
		return "", fmt.Errorf("the BMC has no firmware component %q (it has %s)", j.p.Component, firmwareNames(fw))
	}
	return v, nil
}

func versionOf(fw []bmc.Firmware, component string) string {
	for _, f := range fw {
		if f.ID == component {
			return f.Version
		}
	}
	return ""
}

func (j *job) complete(ctx context.Context, msg string) error {
	j.t.Step, j.t.Status, j.t.Progress, j.t.FinishedAt = stepCompleted, task.Succeeded, 100, time.Now()
	if err := j.saveStep(ctx, msg); err != nil {
		return err
	}
	j.u.log.Info("firmware updated", "task_id", j.t.ID, "machine_id", j.p.MachineID, "component", j.p.Component, "version", j.p.Version)
	return j.lifecycle(ctx, domain.EventFirmwareDone, nil)
}

// fail ends the task; the machine shows failedfirmwareupgrade with why.
func (j *job) fail(ctx context.Context, cause error) {
	msg := cause.Error()
	j.t.Step, j.t.Status, j.t.FinishedAt = stepFailed, task.Failed, time.Now()
	j.r.Substate = substate(stepFailed, j.p, j.r, msg)
	if err := j.save(ctx, msg); err != nil {
		j.u.log.Error("firmware update: cannot record its failure", "task_id", j.t.ID, "error", err)
		return
	}
	j.u.log.Warn("firmware update failed", "task_id", j.t.ID, "machine_id", j.p.MachineID, "error", msg)
	if err := j.lifecycle(ctx, domain.EventFirmwareStep, domain.FailedFirmwareUpgrade(j.p.FirmwareType, msg, time.Now())); err != nil {
		j.u.log.Error("firmware update: the lifecycle did not follow its failure", "task_id", j.t.ID, "error", err)
	}
}

// lifecycle moves the machine; a repeat (after a resume) is no news.
func (j *job) lifecycle(ctx context.Context, kind domain.EventKind, r domain.Reprovision) error {
	_, err := j.u.cfg.Machines.Apply(ctx, j.p.MachineID, domain.Event{Kind: kind, Reprovision: r, WasReady: j.p.WasReady,
		Cause: fmt.Sprintf("firmware update %s: %s", j.t.ID, j.t.Step)})
	if errors.Is(err, domain.ErrNoChange) {
		return nil
	}
	return err
}

func (j *job) saveStep(ctx context.Context, msg string) error {
	j.r.Substate = substate(j.t.Step, j.p, j.r)
	return j.save(ctx, msg)
}

func (j *job) save(ctx context.Context, msg string) error { return saveRun(ctx, j.t, j.r, msg) }

// saveRun stores a task, with msg and its result so far, and its bus
// message: updates and DPU reprovisionings alike.
func saveRun(ctx context.Context, t *task.Run, result any, msg string) error {
	t.Message = msg
	t.SetResult(result)
	return t.Save(ctx)
}

// retried calls a read a few times, every apart: a BMC that misses one
// answer does not fail an update.
func retried[T any](ctx context.Context, every time.Duration, read func() (T, error)) (T, error) {
	var v T
	var err error
	for range 5 {
		if v, err = read(); err == nil || ctx.Err() != nil {
			return v, err
		}
		if serr := sleep(ctx, every); serr != nil {
			return v, serr
		}
	}
	return v, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func lastOr(msgs []string, def string) string {
	if len(msgs) == 0 {
		return def
	}
	return msgs[len(msgs)-1]
}
