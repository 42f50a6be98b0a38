package swdeploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/appliance/release"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/store"
)

// Deploy is the deploy in progress, as stored.
type Deploy struct {
	FromReleaseID string `json:"from_release_id"` // "" when the hosts ran no release
	ToReleaseID   string `json:"to_release_id"`
	FromVersion   string `json:"from_release"` // MM.mm.pp, "" for none
	ToVersion     string `json:"to_release"`
	State         string `json:"state"`
	// Options are start's options (k=v), as given.
	Options        map[string]string `json:"options"`
	RebootRequired bool              `json:"reboot_required"`
	// Major: the release's MM.mm differs from the hosts'.
	Major bool         `json:"major_release"`
	Hosts []HostDeploy `json:"hosts"`
}

// HostDeploy is one host of the deploy.
type HostDeploy struct {
	MachineID string `json:"machine_id"`
	Hostname  string `json:"hostname"`
	// FromReleaseID is the release the host ran ("" for its profile): a
	// rollback puts it back.
	FromReleaseID string `json:"from_release_id"`
	FromVersion   string `json:"from_release"`
	State         string `json:"state"`
	TaskID        string `json:"task_id,omitempty"`
	Error         string `json:"error,omitempty"`
}

// Machines is the lifecycle and release of the box's machines.
type Machines interface {
	State(id string) (domain.State, bool)
	SetRelease(ctx context.Context, id, releaseID string) error
}

// Provisioner reinstalls a machine through its BMC.
type Provisioner interface {
	Provision(ctx context.Context, machineID string, o bmc.ProvisionOptions) (bmc.Provisioned, error)
	Statuses() []bmc.Status
}

// Announcer gives the deploy's changes their bus messages.
type Announcer interface {
	DeployMessage(d Deploy) outbox.Message
	DeployGoneMessage() outbox.Message
}

// Config is what a Service works with.
type Config struct {
	DB        *store.Store
	Commit    *store.Committer
	Announce  Announcer
	Tasks     *task.Engine
	Releases  *release.Library
	Fleet     domain.MachinePager
	Machines  Machines
	Provision Provisioner
	// DataDir is where releases are kept (its free space is checked).
	DataDir string
	Log     *slog.Logger
	// PollEvery paces waiting for a host (default 2 s); HostTimeout is how
	// long a host may take from its reprovisioning to ready (default 1 h).
	PollEvery, HostTimeout time.Duration
}

// Service is USM's deploy over Slipway's releases and machines.
type Service struct {
	cfg Config
}

// Task kinds, one per step that takes time.
const (
	kindStart    = "usm/start"
	kindHost     = "usm/host"
	kindActivate = "usm/activate"
)

// New makes the Service and registers its task kinds with the engine.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 2 * time.Second
	}
	if cfg.HostTimeout <= 0 {
		cfg.HostTimeout = time.Hour
	}
	s := &Service{cfg: cfg}
	cfg.Tasks.Register(task.Kind{Name: kindStart, Run: s.runStart, Locks: func(*task.Run) []string { return []string{"usm:deploy"} }})
	cfg.Tasks.Register(task.Kind{Name: kindHost, Run: s.runHost, Locks: hostLocks})
	cfg.Tasks.Register(task.Kind{Name: kindActivate, Run: s.runActivate, Locks: func(*task.Run) []string { return []string{"usm:deploy"} }})
	return s
}

// Current is the deploy in progress; false when there is none.
func (s *Service) Current(ctx context.Context) (Deploy, bool, error) {
	doc, err := s.cfg.DB.SWDeploy(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return Deploy{}, false, nil
	}
	if err != nil {
		return Deploy{}, false, err
	}
	d, err := decode(doc)
	return d, err == nil, err
}

func decode(doc string) (Deploy, error) {
	var d Deploy
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return d, fmt.Errorf("stored deploy: %w", err)
	}
	return d, nil
}

// update changes the deploy in one transaction: change sees it as stored
// (ErrNoDeploy refusal when there is none) and edits it.
func (s *Service) update(ctx context.Context, change func(tx *store.Tx, d *Deploy) error) (Deploy, error) {
	var d Deploy
	err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		var err error
		if d, err = loadInTx(tx); err != nil {
			return err
		}
		if err := change(tx, &d); err != nil {
			return err
		}
		return s.put(tx, d)
	})
	return d, err
}

// loadInTx reads the deploy in a transaction; a refusal when there is none.
func loadInTx(tx *store.Tx) (Deploy, error) {
	doc, err := tx.SWDeploy()
	if errors.Is(err, store.ErrNotFound) {
		return Deploy{}, Refusal("No deployment in progress")
	}
	if err != nil {
		return Deploy{}, err
	}
	return decode(doc)
}

// put stores the deploy and announces it.
func (s *Service) put(tx *store.Tx, d Deploy) error {
	doc, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if err := tx.PutSWDeploy(d.State, string(doc)); err != nil {
		return err
	}
	if s.cfg.Announce == nil {
		return nil
	}
	outbox.Enqueue(tx, s.cfg.Announce.DeployMessage(d))
	return nil
}

// operate checks op against the deploy's state, then changes it.
func (s *Service) operate(ctx context.Context, op Operation, change func(tx *store.Tx, d *Deploy) error) (Deploy, error) {
	return s.update(ctx, func(tx *store.Tx, d *Deploy) error {
		if err := Check(op, d.State); err != nil {
			return err
		}
		return change(tx, d)
	})
}

// host finds a host of the deploy by hostname or machine id.
func (d *Deploy) host(name string) (*HostDeploy, error) {
	for i := range d.Hosts {
		if d.Hosts[i].Hostname == name || d.Hosts[i].MachineID == name {
			return &d.Hosts[i], nil
		}
	}
	return nil, Refusal(fmt.Sprintf("Host %s can not be found", name))
}

// SoftwareRelease is the sw_version a host runs now: the deploy's once it
// was deployed (and until it is rolled back), else its own.
func (d *Deploy) SoftwareRelease(h HostDeploy) string {
	switch h.State {
	case HostDeployed, HostRollbackPending, HostRollbackDeploying, HostRollbackFailedSt:
		return d.ToVersion
	}
	return h.FromVersion
}

// hostStates are the hosts' states, for Aggregate.
func (d *Deploy) hostStates() []string {
	out := make([]string, len(d.Hosts))
	for i, h := range d.Hosts {
		out[i] = h.State
	}
	return out
}

// Activate checks that every host runs the release and is ready
// (asynchronous: activate-done or activate-failed).
func (s *Service) Activate(ctx context.Context) (string, error) {
	info, err := s.moveTo(ctx, OpActivate, Activate, "Deploy activate has started")
	if err != nil {
		return "", err
	}
	d, _, err := s.Current(ctx)
	if err != nil {
		return "", err
	}
	if _, err := s.cfg.Tasks.Submit(ctx, task.New{Kind: kindActivate, Step: "check", Message: "activate " + d.ToReleaseID,
		Params: map[string]string{"release_id": d.ToReleaseID}}); err != nil {
		return "", err
	}
	return info, nil
}

// ActivateRollback undoes an activation: on one box there is nothing the
// activation changed beyond the hosts, which host rollback returns.
func (s *Service) ActivateRollback(ctx context.Context) (string, error) {
	return s.moveTo(ctx, OpActivateRollback, ActivateRollbackDone, "Deploy activate-rollback has started")
}

// Complete ends an activated deploy.
func (s *Service) Complete(ctx context.Context) (string, error) {
	return s.moveTo(ctx, OpComplete, Completed, "Deployment has been completed\n")
}

// moveTo runs op, which moves the deploy to state, and answers info.
func (s *Service) moveTo(ctx context.Context, op Operation, state, info string) (string, error) {
	if _, err := s.operate(ctx, op, func(_ *store.Tx, d *Deploy) error {
		d.State = state
		return nil
	}); err != nil {
		return "", err
	}
	return info, nil
}

// Abort turns the deploy back: before activation its hosts are to be
// rolled back (a host never deployed is rolled back already); after, the
// activation first.
func (s *Service) Abort(ctx context.Context) (string, error) {
	_, err := s.operate(ctx, OpAbort, func(_ *store.Tx, d *Deploy) error {
		d.State = Aborted(d.State)
		for i := range d.Hosts {
			d.Hosts[i].State = AbortedHost(d.Hosts[i].State)
		}
		if d.State == HostRollback {
			d.State = Aggregate(d.hostStates(), true)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return "Deployment has been aborted\n", nil
}

// Delete removes the deploy. Completed, its release is deployed (and the
// one the hosts ran no longer is); otherwise its release is available
// again.
func (s *Service) Delete(ctx context.Context) (string, error) {
	err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		d, err := loadInTx(tx)
		if err != nil {
			return err
		}
		if err := Check(OpDelete, d.State); err != nil {
			return err
		}
		if d.State == StartDone || d.State == StartFailed {
			for _, h := range d.Hosts {
				if h.State == HostDeployed || h.State == HostDeploying {
					return Refusal(fmt.Sprintf("Host %s is %s: roll it back (abort) before deleting the deployment", h.Hostname, h.State))
				}
			}
		}
		if err := s.releaseStates(tx, d); err != nil {
			return err
		}
		if err := tx.DeleteSWDeploy(); err != nil || s.cfg.Announce == nil {
			return err
		}
		outbox.Enqueue(tx, s.cfg.Announce.DeployGoneMessage())
		return nil
	})
	if err != nil {
		return "", err
	}
	return "Deploy deleted with success", nil
}

// releaseStates moves the releases as a deploy's deletion does: USM's
// deploying → deployed (completed) or → available (rolled back or never
// deployed); the release the hosts ran goes unavailable after a major
// release is deployed, available after a minor one.
func (s *Service) releaseStates(tx *store.Tx, d Deploy) error {
	if d.State != Completed {
		return tx.SetReleaseState(d.ToReleaseID, release.StateAvailable)
	}
	if err := tx.SetReleaseState(d.ToReleaseID, release.StateDeployed); err != nil {
		return err
	}
	if d.FromReleaseID == "" {
		return nil
	}
	old := release.StateAvailable
	if d.Major {
		old = release.StateUnavailable
	}
	if err := tx.SetReleaseState(d.FromReleaseID, old); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// options parses USM's options, ["k=v", …].
func options(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, o := range list {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return nil, Refusal(fmt.Sprintf("option %q is not key=value", o))
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// hostsOption is the hosts= option's machines ("" for none given).
func hostsOption(opts map[string]string) []string {
	return slices.DeleteFunc(strings.Split(opts["hosts"], ","), func(s string) bool { return strings.TrimSpace(s) == "" })
}
