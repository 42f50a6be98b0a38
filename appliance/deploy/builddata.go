package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/store"
)

// BuildData is one piece of data collected about a node: by whom
// (generator), in what format, and when.
type BuildData struct {
	Node        string
	TaskID      string
	Generator   string
	Format      string // a MIME type
	Element     string
	CollectedAt time.Time
}

// MaxBuildData is the largest report a node may post.
const MaxBuildData = 4 << 20

// AddBuildData records a piece of build data: a report a node posts
// (lshw -xml, LLDP) or one of the box's own generators.
func (s *Service) AddBuildData(ctx context.Context, b BuildData) error {
	switch {
	case b.Generator == "" || len(b.Generator) > 64 || strings.ContainsAny(b.Generator, " \t\r\n"):
		return fmt.Errorf("%w: generator %q (a short name, e.g. lshw)", ErrBadReport, b.Generator)
	case len(b.Element) > MaxBuildData:
		return fmt.Errorf("%w: %d bytes; the limit is %d", ErrBadReport, len(b.Element), MaxBuildData)
	case b.Format == "":
		b.Format = "text/plain"
	}
	return s.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		return tx.AddBuildData(store.BuildData{Node: b.Node, TaskID: b.TaskID, Generator: b.Generator, Format: b.Format, Element: b.Element})
	})
}

// NodeBuildData is a node's build data; latest keeps the newest of each
// generator.
func (s *Service) NodeBuildData(ctx context.Context, node string, latest bool) ([]BuildData, error) {
	rows, err := s.cfg.DB.BuildDataOf(ctx, node, "")
	if err != nil {
		return nil, err
	}
	out := convertBuildData(rows)
	if !latest {
		return out, nil
	}
	newest := map[string]int{}
	var kept []BuildData
	for _, b := range out {
		if i, ok := newest[b.Generator]; ok {
			kept[i] = b
			continue
		}
		newest[b.Generator] = len(kept)
		kept = append(kept, b)
	}
	return kept, nil
}

// TaskBuildData is the build data a task (or its node subtasks) collected.
func (s *Service) TaskBuildData(ctx context.Context, taskID string) ([]BuildData, error) {
	ids := []string{taskID}
	if t, err := s.tasks.Task(ctx, taskID); err == nil {
		var res Result
		_ = json.Unmarshal(t.Result, &res)
		ids = append(ids, res.Subtasks...)
	}
	var out []BuildData
	for _, id := range ids {
		rows, err := s.cfg.DB.BuildDataOf(ctx, "", id)
		if err != nil {
			return nil, err
		}
		out = append(out, convertBuildData(rows)...)
	}
	return out, nil
}

func convertBuildData(rows []store.BuildData) []BuildData {
	out := make([]BuildData, len(rows))
	for i, r := range rows {
		out[i] = BuildData(r)
	}
	return out
}

// recordNetboot keeps the DHCP fingerprint and the onboarding heartbeats
// of the machine's MACs that have them.
func (s *Service) recordNetboot(ctx context.Context, taskID, node string) {
	if s.cfg.Records == nil {
		return
	}
	m, err := s.cfg.Records.Machine(ctx, node)
	if err != nil {
		return
	}
	for _, mac := range m.MACs {
		if fp, ok := s.cfg.Machines.Fingerprint(mac); ok {
			s.addJSON(ctx, BuildData{Node: node, TaskID: taskID, Generator: "dhcp"}, fp)
		}
		if c, err := s.cfg.Machines.Client(ctx, mac); err == nil && len(c.Stages) > 0 {
			s.addJSON(ctx, BuildData{Node: node, TaskID: taskID, Generator: "heartbeats"}, c)
		}
	}
}

// addJSON records v as JSON build data.
func (s *Service) addJSON(ctx context.Context, b BuildData, v any) {
	js, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		b.Format, b.Element = "application/json", string(js)
		err = s.AddBuildData(ctx, b)
	}
	if err != nil {
		s.log.Warn("cannot record build data", "node", b.Node, "generator", b.Generator, "error", err)
	}
}

// recordRedfish keeps what a node's BMC reports of it.
func (s *Service) recordRedfish(ctx context.Context, node, taskID string, st bmc.Status) error {
	js, err := json.MarshalIndent(st.Inventory, "", "  ")
	if err != nil {
		return err
	}
	return s.AddBuildData(ctx, BuildData{Node: node, TaskID: taskID, Generator: "redfish", Format: "application/json", Element: string(js)})
}

// recordDeployData keeps, at the end of a deploy, the BMC's inventory, the
// boot NIC's DHCP fingerprint and onboarding heartbeats, and each boot
// action's messages (as Drydock keeps deploy:<script>).
func (s *Service) recordDeployData(ctx context.Context, taskID, node string) {
	if st, err := s.cfg.BMCs.ForMachine(node); err == nil {
		if err := s.recordRedfish(ctx, node, taskID, st); err != nil {
			s.log.Warn("cannot record build data", "node", node, "error", err)
		}
	}
	s.recordNetboot(ctx, taskID, node)
	actions, err := s.TaskBootActions(ctx, taskID)
	if err != nil {
		return
	}
	for _, a := range actions {
		var lines []string
		for _, d := range a.Details {
			lines = append(lines, d.At.Format(time.RFC3339)+" "+d.Message)
		}
		lines = append(lines, "status: "+a.Status)
		if err := s.AddBuildData(ctx, BuildData{Node: node, TaskID: taskID, Generator: "deploy:" + a.Name,
			Format: "text/plain", Element: strings.Join(lines, "\n")}); err != nil {
			s.log.Warn("cannot record build data", "node", node, "error", err)
		}
	}
}
