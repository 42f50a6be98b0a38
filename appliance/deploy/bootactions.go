package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/store"
)

// Errors of boot action reports.
var (
	// ErrFinal: the action has its final status (or never takes one).
	ErrFinal = errors.New("status finalized, not available for update")
	// ErrBadReport: the report is not one Drydock accepts.
	ErrBadReport = errors.New("bad boot action report")
	// ErrNoContext: the node has no deployment with boot actions.
	ErrNoContext = errors.New("no boot action context")
)

// BootAction is one boot action of one node's deployment, as the doors
// show it (never with its key).
type BootAction struct {
	ID        string
	TaskID    string // the node's deploy task
	Node      string
	Name      string
	Status    string // incomplete | unreported | success | failure
	Details   []Detail
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Detail is one message a node reported for an action.
type Detail struct {
	Message string         `json:"message"`
	Error   bool           `json:"error"`
	Extra   map[string]any `json:"extra,omitempty"`
	At      time.Time      `json:"ts"`
}

func fromStored(b store.BootAction) BootAction {
	out := BootAction{ID: b.ID, TaskID: b.TaskID, Node: b.Node, Name: b.Name, Status: b.Status, CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
	_ = json.Unmarshal([]byte(b.Details), &out.Details)
	return out
}

// createBootActions gives a node's deployment its key and one record per
// boot action the design gives the node. Called again for the same task
// (a resumed task), it keeps what is there.
func (s *Service) createBootActions(ctx context.Context, taskID string, p Params) (int, error) {
	existing, err := s.cfg.DB.BootActionsOfTask(ctx, taskID)
	if err != nil || len(existing) > 0 {
		return len(existing), err
	}
	d, err := s.Design(ctx, p.DesignRef)
	if err != nil {
		return 0, err
	}
	actions := d.ActionsFor(p.Node)
	if len(actions) == 0 {
		return 0, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return 0, err
	}
	hexKey := hex.EncodeToString(key)
	err = s.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		for _, a := range actions {
			status := Incomplete
			if !a.Signaling {
				status = Unreported
			}
			if err := tx.PutBootAction(store.BootAction{ID: ulid.Make().String(), TaskID: taskID, Node: p.Node, Name: a.Name,
				Key: hexKey, Status: status}); err != nil {
				return err
			}
		}
		return nil
	})
	return len(actions), err
}

// BootActions are the boot actions of a node's newest deployment.
func (s *Service) BootActions(ctx context.Context, node string) ([]BootAction, error) {
	return convertActions(s.cfg.DB.LatestBootActions(ctx, node))
}

// TaskBootActions are a node deploy task's boot actions.
func (s *Service) TaskBootActions(ctx context.Context, taskID string) ([]BootAction, error) {
	return convertActions(s.cfg.DB.BootActionsOfTask(ctx, taskID))
}

func convertActions(rows []store.BootAction, err error) ([]BootAction, error) {
	out := make([]BootAction, len(rows))
	for i, b := range rows {
		out[i] = fromStored(b)
	}
	return out, err
}

// NodeKey is the key of a node's newest deployment, "" when it has none.
func (s *Service) NodeKey(ctx context.Context, node string) (string, error) {
	rows, err := s.cfg.DB.LatestBootActions(ctx, node)
	if err != nil || len(rows) == 0 {
		return "", err
	}
	return rows[0].Key, nil
}

// ActionKey is the key an action's reports must carry; store.ErrNotFound
// for an action nobody made.
func (s *Service) ActionKey(ctx context.Context, id string) (string, error) {
	b, err := s.cfg.DB.BootAction(ctx, id)
	return b.Key, err
}

// BootData is the gzipped tar of a node's assets of one type (file or
// unit) from its newest deployment, rendered for it.
func (s *Service) BootData(ctx context.Context, node, assetType string) ([]byte, error) {
	files, err := s.renderAssets(ctx, node, assetType)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := design.WriteTarball(&buf, files); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Packages are the packages the pkg_list assets of a node's newest
// deployment name ("name" or "name=version"); cloud-init installs them.
func (s *Service) Packages(ctx context.Context, node string) ([]string, error) {
	files, err := s.renderAssets(ctx, node, design.AssetPkgList)
	if errors.Is(err, ErrNoContext) {
		return nil, nil
	}
	var out []string
	for _, f := range files {
		out = append(out, strings.Fields(string(f.Data))...)
	}
	return out, err
}

func (s *Service) renderAssets(ctx context.Context, node, assetType string) ([]design.File, error) {
	dep, err := s.latestDeployment(ctx, node)
	if err != nil {
		return nil, err
	}
	return s.render(ctx, dep, assetType)
}

// deployment is a node's newest deployment as its boot actions need it:
// their records, its task, and the node in the task's design, read once.
type deployment struct {
	records []store.BootAction
	task    task.Task
	ref     string
	design  *design.Design
	node    design.Node
}

// latestDeployment reads a node's newest deployment; ErrNoContext when it
// has none, or the node is no longer in its design.
func (s *Service) latestDeployment(ctx context.Context, node string) (deployment, error) {
	records, err := s.cfg.DB.LatestBootActions(ctx, node)
	if err != nil {
		return deployment{}, err
	}
	if len(records) == 0 {
		return deployment{}, fmt.Errorf("node %s: %w", node, ErrNoContext)
	}
	t, err := s.tasks.Task(ctx, records[0].TaskID)
	if err != nil {
		return deployment{}, err
	}
	var p Params
	if err := json.Unmarshal(t.Params, &p); err != nil {
		return deployment{}, err
	}
	d, err := s.Design(ctx, p.DesignRef)
	if err != nil {
		return deployment{}, err
	}
	n, ok := d.Node(node)
	if !ok {
		return deployment{}, fmt.Errorf("node %s is no longer in design %s: %w", node, p.DesignRef, ErrNoContext)
	}
	return deployment{records: records, task: t, ref: p.DesignRef, design: d, node: n}, nil
}

// render is a deployment's assets of one type, rendered for its node.
func (s *Service) render(ctx context.Context, dep deployment, assetType string) ([]design.File, error) {
	byName := map[string]store.BootAction{}
	for _, r := range dep.records {
		byName[r.Name] = r
	}
	var files []design.File
	for _, a := range dep.design.ActionsFor(dep.node.Name) {
		rec, ok := byName[a.Name]
		if !ok {
			continue // added to the design after this deployment began
		}
		vars := design.Vars{Node: design.NodeVars(dep.node), Action: map[string]any{"action_id": rec.ID, "action_key": rec.Key,
			"key": rec.Key, "report_url": s.cfg.ReportURL, "design_ref": dep.ref, "name": a.Name}}
		for _, asset := range a.Assets {
			if asset.Type != assetType {
				continue
			}
			data, err := asset.Render(ctx, vars, s.cfg.Designs)
			if err != nil {
				return nil, fmt.Errorf("boot action %s, asset %s: %w", a.Name, asset.Path, err)
			}
			files = append(files, design.File{Path: asset.Path, Mode: asset.Mode(), Data: data})
		}
	}
	return files, nil
}

// Report records what a node says of a boot action: messages, and with
// status (success or failure, any case) its final word. After that, or
// for an action that does not signal, ErrFinal.
func (s *Service) Report(ctx context.Context, id, status string, details []Detail) (BootAction, error) {
	status = strings.ToLower(status)
	if status != "" && status != Success && status != Failure {
		return BootAction{}, fmt.Errorf("%w: status %q (Success or Failure)", ErrBadReport, status)
	}
	var out store.BootAction
	err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		b, err := tx.BootAction(id)
		if err != nil {
			return err
		}
		if b.Status != Incomplete {
			return fmt.Errorf("action %s %w", id, ErrFinal)
		}
		var all []Detail
		_ = json.Unmarshal([]byte(b.Details), &all)
		for _, d := range details {
			d.At = tx.Now()
			all = append(all, d)
		}
		js, _ := json.Marshal(all)
		b.Details = string(js)
		if status != "" {
			b.Status = status
		}
		out = b
		return tx.PutBootAction(b)
	})
	if err != nil {
		return BootAction{}, err
	}
	s.log.Info("boot action reported", "action_id", id, "node", out.Node, "action", out.Name, "status", out.Status, "messages", len(details))
	return fromStored(out), nil
}

// waitBootActions waits until none of a node's actions is incomplete; an
// action still incomplete when the timeout runs out is failed so.
func (s *Service) waitBootActions(ctx context.Context, taskID, node string, res *Result) error {
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		actions, err := s.TaskBootActions(ctx, taskID)
		if err != nil {
			return err
		}
		pending := 0
		for _, a := range actions {
			if a.Status == Incomplete {
				pending++
			}
		}
		if pending > 0 && time.Since(res.Since) > s.cfg.BootActionTimeout {
			for _, a := range actions {
				if a.Status == Incomplete {
					if _, err := s.Report(ctx, a.ID, Failure, []Detail{{Message: fmt.Sprintf("no final status within %s", s.cfg.BootActionTimeout), Error: true}}); err != nil && !errors.Is(err, ErrFinal) {
						return err
					}
				}
			}
			continue
		}
		if pending == 0 {
			return judge(node, actions, res)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// judge records each action's outcome; any failure fails the node.
func judge(node string, actions []BootAction, res *Result) error {
	var failed []string
	for _, a := range actions {
		msg := fmt.Sprintf("boot action %s: %s", a.Name, a.Status)
		if n := len(a.Details); n > 0 {
			msg += ": " + a.Details[n-1].Message
		}
		res.say("node", node, a.Status == Failure, msg)
		if a.Status == Failure {
			failed = append(failed, a.Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("boot actions failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// NodeContext is what a deploying node needs to run its boot actions: its
// key, where to fetch and report, each action with the units it enables,
// and the packages its pkg_list assets name.
type NodeContext struct {
	Node      string
	Key       string
	ReportURL string // …/api/v1.0/bootactions/
	Actions   []ContextAction
	Packages  []string
}

// ContextAction is one boot action of a node's deployment.
type ContextAction struct {
	ID        string
	Name      string
	Signaling bool
	Units     []string // unit names (the base names of its unit assets)
}

// DeployingContext is the boot action context of a node whose deployment
// is under way; ok is false when the node is not being deployed.
func (s *Service) DeployingContext(ctx context.Context, node string) (NodeContext, bool, error) {
	dep, err := s.latestDeployment(ctx, node)
	if errors.Is(err, ErrNoContext) || err == nil && dep.task.Finished() {
		return NodeContext{}, false, nil
	}
	if err != nil {
		return NodeContext{}, false, err
	}
	units := map[string][]string{}
	for _, a := range dep.design.ActionsFor(node) {
		for _, asset := range a.Assets {
			if asset.Type == design.AssetUnit {
				units[a.Name] = append(units[a.Name], path.Base(asset.Path))
			}
		}
	}
	nc := NodeContext{Node: node, Key: dep.records[0].Key, ReportURL: s.cfg.ReportURL}
	for _, r := range dep.records {
		nc.Actions = append(nc.Actions, ContextAction{ID: r.ID, Name: r.Name, Signaling: r.Status != Unreported, Units: units[r.Name]})
	}
	pkgs, err := s.render(ctx, dep, design.AssetPkgList)
	if err != nil {
		return NodeContext{}, false, err
	}
	for _, f := range pkgs {
		nc.Packages = append(nc.Packages, strings.Fields(string(f.Data))...)
	}
	return nc, true, nil
}
