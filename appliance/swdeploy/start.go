package swdeploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/release"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/store"
)

// Precheck is a precheck's findings, in USM's "System Health:" form.
type Precheck struct {
	ReleaseID      string
	Info           string
	Healthy        bool
	RebootRequired bool
	Major          bool
}

// UnhealthyError is a precheck that found what prevents the deploy.
type UnhealthyError struct{ Precheck }

func (e *UnhealthyError) Error() string {
	return "The following issues have been detected, which prevent deploying " + e.ReleaseID + "\n" + e.Info
}

// minFreeBytes is the free space a deploy wants where releases are kept.
const minFreeBytes = 1 << 30

// check is one line of a precheck: critical ones fail it even when forced.
type check struct {
	text     string
	ok       bool
	critical bool
	details  []string
}

// Precheck checks that the release can be deployed to the hosts (every
// host ready unless force; hosts= in options names them, else every ready
// or assigned machine that is not a DPU).
func (s *Service) Precheck(ctx context.Context, releaseID string, force bool, optionList []string) (Precheck, error) {
	opts, err := options(optionList)
	if err != nil {
		return Precheck{}, err
	}
	pre, _, err := s.precheck(ctx, releaseID, force, opts)
	return pre, err
}

// plan is what a precheck read, and a start deploys: the release, the one
// the hosts run now, and the hosts.
type plan struct {
	rel, from release.Release
	hosts     []domain.MachineRecord
}

func (s *Service) precheck(ctx context.Context, releaseID string, force bool, opts map[string]string) (Precheck, plan, error) {
	var pl plan
	var err error
	pl.rel, err = s.cfg.Releases.Release(ctx, releaseID)
	if errors.Is(err, release.ErrNotFound) {
		return Precheck{}, pl, Refusal(fmt.Sprintf("Release %s can not be found", releaseID))
	}
	if err != nil {
		return Precheck{}, pl, err
	}
	if pl.from, err = s.deployedRelease(ctx); err != nil {
		return Precheck{}, pl, err
	}
	rel, from := pl.rel, pl.from
	checks := []check{
		{text: fmt.Sprintf("Release %s is available", releaseID), ok: rel.State == release.StateAvailable, critical: true,
			details: detailIf(rel.State != release.StateAvailable, "it is "+rel.State)},
		s.filesCheck(rel),
		s.requiresCheck(ctx, rel),
		s.inProgressCheck(ctx),
	}
	hosts, missing, err := s.candidates(ctx, opts)
	if err != nil {
		return Precheck{}, pl, err
	}
	pl.hosts = hosts
	checks = append(checks, hostChecks(hosts, missing, s.cfg.Provision.Statuses())...)
	checks = append(checks, s.diskCheck())
	pre := Precheck{ReleaseID: releaseID, RebootRequired: rel.RebootRequired == nil || *rel.RebootRequired,
		Major: from.ReleaseID == "" || from.MajorMinor() != rel.MajorMinor(), Healthy: true}
	var info strings.Builder
	info.WriteString("System Health:\n")
	for _, c := range checks {
		status := "[OK]"
		if !c.ok {
			status = "[Fail]"
			if c.critical || !force {
				pre.Healthy = false
			}
		}
		fmt.Fprintf(&info, "%s: %s\n", c.text, status)
		for _, d := range c.details {
			fmt.Fprintf(&info, "  -> %s\n", d)
		}
	}
	pre.Info = info.String()
	return pre, pl, nil
}

func detailIf(cond bool, d string) []string {
	if cond {
		return []string{d}
	}
	return nil
}

func (s *Service) filesCheck(rel release.Release) check {
	c := check{text: fmt.Sprintf("Release %s files are present", rel.ReleaseID), ok: true, critical: true}
	for _, p := range []string{rel.Boot.Kernel, rel.Boot.Initrd, rel.Boot.RootFS} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(filepath.Join(s.cfg.Releases.Dir(), rel.ReleaseID, filepath.FromSlash(p))); err != nil || !st.Mode().IsRegular() {
			c.ok, c.details = false, append(c.details, p+" is missing: delete the release and upload it again")
		}
	}
	return c
}

func (s *Service) requiresCheck(ctx context.Context, rel release.Release) check {
	c := check{text: "Required releases are deployed", ok: true, critical: true}
	for _, id := range rel.Requires {
		r, err := s.cfg.Releases.Release(ctx, id)
		if err != nil || (r.State != release.StateDeployed && r.State != release.StateCommitted) {
			c.ok, c.details = false, append(c.details, id+" is not deployed")
		}
	}
	return c
}

func (s *Service) inProgressCheck(ctx context.Context) check {
	d, ok, err := s.Current(ctx)
	if err != nil || !ok {
		return check{text: "No deployment in progress", ok: err == nil, critical: true, details: detailIf(err != nil, fmt.Sprint(err))}
	}
	return check{text: fmt.Sprintf("Deployment in progress: %s to %s", d.FromVersion, d.ToVersion), critical: true}
}

func hostChecks(hosts []domain.MachineRecord, missing []string, bmcs []bmc.Status) []check {
	known := check{text: "All hosts are known and ready", ok: len(missing) == 0 && len(hosts) > 0}
	if len(hosts) == 0 && len(missing) == 0 {
		known.details = append(known.details, "no machine is ready: onboard the hosts first, or name them with the option hosts=a,b")
	}
	for _, m := range missing {
		known.details = append(known.details, m+" is not a machine of this box")
	}
	failed := check{text: "No failed machines", ok: true}
	reach := check{text: "All hosts' BMCs are reachable", ok: true}
	byMachine := map[string]bmc.Status{}
	for _, b := range bmcs {
		byMachine[b.MachineID] = b
	}
	for _, h := range hosts {
		switch h.StateName {
		case domain.StateReady, domain.StateAssigned:
		case domain.StateFailed:
			failed.ok, failed.details = false, append(failed.details, h.ID+" is failed")
			fallthrough
		default:
			known.ok, known.details = false, append(known.details, h.ID+" is "+h.StateName)
		}
		switch b, ok := byMachine[h.ID]; {
		case !ok:
			reach.ok, reach.details = false, append(reach.details, h.ID+" has no BMC: it would have to be rebooted by hand")
		case !b.Reachable:
			reach.ok, reach.details = false, append(reach.details, h.ID+"'s BMC did not answer its last poll: "+b.LastError)
		}
	}
	return []check{known, failed, reach}
}

func (s *Service) diskCheck() check {
	var st syscall.Statfs_t
	c := check{text: "Free space for the deploy", ok: true}
	if err := syscall.Statfs(s.cfg.DataDir, &st); err != nil {
		c.ok, c.details = false, []string{err.Error()}
	} else if free := int64(st.Bavail) * int64(st.Bsize); free < minFreeBytes {
		c.ok, c.details = false, []string{fmt.Sprintf("%d MiB free in %s; a deploy wants %d MiB", free>>20, s.cfg.DataDir, minFreeBytes>>20)}
	}
	return c
}

// candidates are the deploy's hosts: those hosts= names (missing: the
// names no machine has), else every ready or assigned machine not a DPU.
func (s *Service) candidates(ctx context.Context, opts map[string]string) (hosts []domain.MachineRecord, missing []string, err error) {
	all, err := domain.AllMachines(ctx, s.cfg.Fleet)
	if err != nil {
		return nil, nil, err
	}
	named := hostsOption(opts)
	if len(named) == 0 {
		for _, m := range all {
			if m.DPUOf == "" && (m.StateName == domain.StateReady || m.StateName == domain.StateAssigned) {
				hosts = append(hosts, m)
			}
		}
		return hosts, nil, nil
	}
	for _, name := range named {
		i := slices.IndexFunc(all, func(m domain.MachineRecord) bool { return m.ID == name || m.Hostname == name })
		if i < 0 {
			missing = append(missing, name)
			continue
		}
		hosts = append(hosts, all[i])
	}
	return hosts, missing, nil
}

// deployedRelease is the release the box's hosts run now (USM's deployed
// one); the zero Release when none is.
func (s *Service) deployedRelease(ctx context.Context) (release.Release, error) {
	list, err := s.cfg.Releases.Releases(ctx, release.StateDeployed, "")
	if err != nil || len(list) == 0 {
		return release.Release{}, err
	}
	return list[len(list)-1], nil
}

// Start begins a deploy of the release (asynchronous: start-done or
// start-failed): the precheck first, an unhealthy one refusing it with its
// findings (*UnhealthyError); then the hosts are pending and the release
// deploying.
func (s *Service) Start(ctx context.Context, releaseID string, force bool, optionList []string) (string, error) {
	if d, ok, err := s.Current(ctx); err != nil || ok {
		if err != nil {
			return "", err
		}
		return "", Check(OpStart, d.State)
	}
	opts, err := options(optionList)
	if err != nil {
		return "", err
	}
	pre, pl, err := s.precheck(ctx, releaseID, force, opts)
	if err != nil {
		return "", err
	}
	if !pre.Healthy {
		return "", &UnhealthyError{pre}
	}
	d := Deploy{FromReleaseID: pl.from.ReleaseID, FromVersion: pl.from.SWVersion, ToReleaseID: releaseID, ToVersion: pl.rel.SWVersion,
		State: Start, Options: opts, RebootRequired: pre.RebootRequired, Major: pre.Major}
	versions := map[string]string{"": ""} // a host's release → its sw_version, each read once
	for _, h := range pl.hosts {
		if _, ok := versions[h.ReleaseID]; !ok {
			r, _ := s.cfg.Releases.Release(ctx, h.ReleaseID) // gone: no version
			versions[h.ReleaseID] = r.SWVersion
		}
		d.Hosts = append(d.Hosts, HostDeploy{MachineID: h.ID, Hostname: hostname(h), FromReleaseID: h.ReleaseID,
			FromVersion: versions[h.ReleaseID], State: HostPending})
	}
	err = s.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		if _, err := tx.SWDeploy(); err == nil {
			return Check(OpStart, "start")
		}
		if err := tx.SetReleaseState(releaseID, release.StateDeploying); err != nil {
			return err
		}
		return s.put(tx, d)
	})
	if err != nil {
		return "", err
	}
	if _, err := s.cfg.Tasks.Submit(ctx, task.New{Kind: kindStart, Step: "prepare", Message: "start the deploy of " + releaseID,
		Params: map[string]string{"release_id": releaseID}}); err != nil {
		return "", err
	}
	s.cfg.Log.Info("deploy started", "release_id", releaseID, "hosts", len(d.Hosts))
	return fmt.Sprintf("['%s'] is now starting, await for the states: [deploy-start-done | deploy-start-failed] in 'software deploy show'\n", releaseID), nil
}

func hostname(m domain.MachineRecord) string {
	if m.Hostname != "" {
		return m.Hostname
	}
	return m.ID
}

// runStart checks the release's files once more and ends the start.
func (s *Service) runStart(ctx context.Context, r *task.Run) {
	var p struct {
		ReleaseID string `json:"release_id"`
	}
	_ = r.DecodeParams(&p)
	state, msg := StartDone, "the release's files are in place; the hosts are pending"
	rel, err := s.cfg.Releases.Release(ctx, p.ReleaseID)
	if err == nil {
		if c := s.filesCheck(rel); !c.ok {
			err = errors.New(strings.Join(c.details, "; "))
		}
	}
	if ctx.Err() != nil {
		return // stopping: resumed later
	}
	if err != nil {
		state, msg = StartFailed, err.Error()
	}
	if _, err := s.update(ctx, func(_ *store.Tx, d *Deploy) error {
		if d.State == Start {
			d.State = state
		}
		return nil
	}); err != nil {
		s.cfg.Log.Warn("deploy start: cannot record its end", "error", err)
		return
	}
	finish(ctx, r, state == StartDone, msg)
}

// finish ends a task.
func finish(ctx context.Context, r *task.Run, ok bool, msg string) {
	r.Status, r.Progress, r.Message, r.FinishedAt = task.Succeeded, 100, msg, time.Now()
	if !ok {
		r.Status = task.Failed
	}
	r.Step = "done"
	_ = r.Save(ctx)
}
