package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/store"
)

// The actions, as Drydock's POST /tasks names them.
const (
	ValidateDesign = "validate_design"
	VerifySite     = "verify_site"
	PrepareSite    = "prepare_site"
	VerifyNodes    = "verify_nodes"
	PrepareNodes   = "prepare_nodes"
	DeployNodes    = "deploy_nodes"
	DestroyNodes   = "destroy_nodes"
	RelabelNodes   = "relabel_nodes"
)

// Actions are every action, in the order a site is built.
var Actions = []string{ValidateDesign, VerifySite, PrepareSite, VerifyNodes, PrepareNodes, DeployNodes, DestroyNodes, RelabelNodes}

// nodeActions act on the nodes a filter selects, one subtask per node.
var nodeActions = []string{VerifyNodes, PrepareNodes, DeployNodes, DestroyNodes, RelabelNodes}

// KindPrefix starts the kind of every task this package runs.
const KindPrefix = "deploy/"

// Kind is the task kind of an action; nodeKind of its per-node subtasks.
func Kind(action string) string     { return KindPrefix + action }
func nodeKind(action string) string { return KindPrefix + action + "/node" }

// ActionOf is the action a task of this package runs, "" for other tasks.
func ActionOf(kind string) string {
	a, ok := strings.CutPrefix(kind, KindPrefix)
	if !ok {
		return ""
	}
	a, _ = strings.CutSuffix(a, "/node")
	return a
}

// ErrUnsupportedAction: not one of Actions.
var ErrUnsupportedAction = errors.New("unsupported action")

// Params are what an action was asked to do; stored with its task.
type Params struct {
	Action     string             `json:"action"`
	DesignRef  string             `json:"design_ref"`
	NodeFilter *design.NodeFilter `json:"node_filter,omitempty"`
	CreatedBy  string             `json:"created_by,omitempty"`
	// Parent and Node are set on a node subtask.
	Parent string `json:"parent_task_id,omitempty"`
	Node   string `json:"node,omitempty"`
}

// Machines is what actions need of the machine inventory.
type Machines interface {
	SyncListed(ctx context.Context, machines []domain.Listed, cause string) (created, updated int, err error)
	State(id string) (domain.State, bool)
	ResetOnboarding(ctx context.Context, machineID string) (int64, error)
	// What a deployment keeps as build data: the firmware's DHCP
	// fingerprint and the onboarding heartbeats, by MAC.
	Fingerprint(mac domain.MAC) (domain.DHCPFingerprint, bool)
	Client(ctx context.Context, mac domain.MAC) (domain.Client, error)
}

// Records reads a machine's record (its MACs).
type Records interface {
	Machine(ctx context.Context, id string) (domain.MachineRecord, error)
}

// BMCs is what actions need of the BMC manager.
type BMCs interface {
	Register(ctx context.Context, r bmc.Registration) (bmc.Status, error)
	ForMachine(machineID string) (bmc.Status, error)
	Power(ctx context.Context, bmcID string, a bmc.PowerAction) (string, error)
	Provision(ctx context.Context, machineID string, o bmc.ProvisionOptions) (bmc.Provisioned, error)
}

// Check is one of the box's own services that verify_site looks at.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Config is what a Service works with.
type Config struct {
	DB       *store.Store
	Commit   *store.Committer
	Engine   *task.Engine
	Designs  *design.Library
	Machines Machines
	Records  Records
	BMCs     BMCs
	// SiteChecks are what verify_site checks.
	SiteChecks []Check
	// ReportURL is where nodes report boot actions, with a trailing
	// slash: http://<box>/api/v1.0/bootactions/.
	ReportURL string
	// DeployTimeout is how long a deploying node may take to be ready
	// (default 30 min); BootActionTimeout how long its boot actions may
	// then take to report (default 15 min, Drydock's).
	DeployTimeout     time.Duration
	BootActionTimeout time.Duration
	// Poll is how often waits look again (default 2 s).
	Poll time.Duration
	Log  *slog.Logger
}

// Service runs a site design's actions.
type Service struct {
	cfg   Config
	log   *slog.Logger
	tasks task.Reader
}

// New registers every action's task kinds with the engine.
func New(cfg Config) *Service {
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	cfg.DeployTimeout = cmp.Or(cfg.DeployTimeout, 30*time.Minute)
	cfg.BootActionTimeout = cmp.Or(cfg.BootActionTimeout, 15*time.Minute)
	cfg.Poll = cmp.Or(cfg.Poll, 2*time.Second)
	s := &Service{cfg: cfg, log: cfg.Log.With("part", "deploy"), tasks: task.Reader{DB: cfg.DB}}
	for _, a := range Actions {
		k := task.Kind{Name: Kind(a), Locks: func(*task.Run) []string { return nil }}
		if slices.Contains(nodeActions, a) {
			k.Run, k.Cancelled = s.runOverNodes, s.cancelSubtasks
			cfg.Engine.Register(task.Kind{Name: nodeKind(a), Run: s.runNode,
				Locks: func(r *task.Run) []string { return []string{"machine:" + r.MachineID} }})
		} else {
			k.Run = s.runSite
		}
		cfg.Engine.Register(k)
	}
	return s
}

// Submit queues an action.
func (s *Service) Submit(ctx context.Context, p Params) (task.Task, error) {
	if !slices.Contains(Actions, p.Action) {
		return task.Task{}, fmt.Errorf("%w %s", ErrUnsupportedAction, p.Action)
	}
	if err := design.CheckFilter(p.NodeFilter); err != nil {
		return task.Task{}, fmt.Errorf("node_filter: %w", err)
	}
	p.Parent, p.Node = "", ""
	return s.cfg.Engine.Submit(ctx, task.New{Kind: Kind(p.Action), Step: "start", Message: "queued",
		Params: p, Result: Result{Status: Incomplete}})
}

// Design loads the design a reference names, checked: its Problems say
// what is wrong with it.
func (s *Service) Design(ctx context.Context, ref string) (*design.Design, error) {
	return s.cfg.Designs.Load(ctx, ref)
}

// Select is the node names a filter selects in the design ref names.
func (s *Service) Select(ctx context.Context, ref string, f *design.NodeFilter) ([]string, error) {
	d, err := s.Design(ctx, ref)
	if err != nil {
		return nil, err
	}
	return d.Select(f)
}

// Apply makes the inventory agree with the nodes of a design: machines,
// boot MACs, racks and profiles, and their BMCs. It is prepare_site's work;
// a native endpoint calls it too.
func (s *Service) Apply(ctx context.Context, d *design.Design, nodes []string) (Result, error) {
	r := Result{Status: Incomplete}
	var listed []domain.Listed
	for _, name := range nodes {
		n, ok := d.Node(name)
		if !ok {
			continue
		}
		listed = append(listed, n.Listed(s.cfg.Designs.Profiles))
	}
	created, updated, err := s.cfg.Machines.SyncListed(ctx, listed, "listed in a site design")
	if err != nil {
		return r, err
	}
	r.say("site", "", false, fmt.Sprintf("inventory: %d machines created, %d updated", created, updated))
	for _, name := range nodes {
		n, _ := d.Node(name)
		if ep := n.BMCEndpoint(); ep != "" {
			_, err := s.cfg.BMCs.Register(ctx, bmc.Registration{Endpoint: ep, Username: n.OOB.Account, Password: n.OOB.Credential,
				Insecure: !n.BMCVerifiesTLS(), MachineID: n.Name, Source: domain.SourceDesign})
			if err != nil {
				r.say("node", n.Name, true, "BMC "+ep+": "+err.Error())
				r.fail(n.Name)
				continue
			}
			r.say("node", n.Name, false, "BMC "+ep+" registered")
		}
		r.succeed(n.Name)
	}
	if len(nodes) == 0 {
		r.Status = Success
	}
	return r, nil
}

// Purge forgets the actions that ended before before, with their boot
// actions and build data; it says how many tasks went.
func (s *Service) Purge(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) (err error) {
		n, err = tx.PurgeTasks(KindPrefix, before)
		return err
	})
	return n, err
}
