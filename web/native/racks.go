package native

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
)

// trayJSON is one machine as the racks view draws it: where it sits and
// what it is doing. It is small on purpose: a site's 10,000 come in one
// answer.
type trayJSON struct {
	MachineID     string    `json:"machine_id"`
	Hostname      string    `json:"hostname,omitempty"`
	Tray          *int      `json:"tray,omitempty"` // 0 is a slot too; none when not known
	TrayType      string    `json:"tray_type,omitempty"`
	State         string    `json:"state"` // the top-level lifecycle state
	IP            string    `json:"ip,omitempty"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	// BMC is none (no BMC), new (not polled yet), reachable or unusable.
	BMC          string `json:"bmc"`
	TasksRunning int    `json:"tasks_running,omitempty"`
}

// rackViewJSON is a rack and its trays in slot order.
type rackViewJSON struct {
	ID    string     `json:"rack_id"`
	Name  string     `json:"rack_name,omitempty"`
	Trays []trayJSON `json:"trays"`
}

// racksPage is how many machines one read of the racks view takes from
// the store: a site is read in a few pages, not one long read.
const racksPage = 2000

// racks answers the racks view: every rack with its trays, and the
// machines placed in no rack.
func racks(machines MachineReader, bmcs BMCs, tasks Tasks) fiber.Handler {
	return func(c *fiber.Ctx) error {
		all, err := allMachines(c.UserContext(), machines)
		if err != nil {
			return err
		}
		bmcOf := map[string]string{}
		if bmcs != nil {
			for _, s := range bmcs.Statuses() {
				if s.MachineID != "" {
					bmcOf[s.MachineID] = bmcWord(s.Reachable, s.LastError, !s.ChangedAt.IsZero())
				}
			}
		}
		marks, err := readTrayTasks(c.UserContext(), tasks)
		if err != nil {
			return err
		}
		byRack := map[string]*rackViewJSON{}
		unracked := []trayJSON{}
		for _, m := range all {
			t := trayJSON{MachineID: m.ID, Hostname: m.Hostname, Tray: trayOf(m), TrayType: m.TrayType, State: m.StateName,
				IP: m.IP, LastHeartbeat: m.LastHeartbeat, BMC: cmp.Or(bmcOf[m.ID], "none"), TasksRunning: marks.running[m.ID]}
			if m.RackID == "" {
				unracked = append(unracked, t)
				continue
			}
			r := byRack[m.RackID]
			if r == nil {
				r = &rackViewJSON{ID: m.RackID, Name: m.RackName}
				byRack[m.RackID] = r
			}
			r.Trays = append(r.Trays, t)
		}
		out := make([]rackViewJSON, 0, len(byRack))
		for _, r := range byRack {
			slices.SortFunc(r.Trays, func(a, b trayJSON) int {
				return cmp.Or(compareTrays(a.Tray, b.Tray), naturalCompare(a.MachineID, b.MachineID))
			})
			out = append(out, *r)
		}
		slices.SortFunc(out, func(a, b rackViewJSON) int { return naturalCompare(a.ID, b.ID) })
		slices.SortFunc(unracked, func(a, b trayJSON) int { return naturalCompare(a.MachineID, b.MachineID) })
		return c.JSON(fiber.Map{"racks": out, "unracked": unracked, "machines_total": len(all)})
	}
}

// trayOf is the machine's tray as the API gives it: nil when not known.
func trayOf(m domain.MachineRecord) *int {
	if tray, known := m.TrayPlace(); known {
		return &tray
	}
	return nil
}

// compareTrays orders trays by slot, those without one last.
func compareTrays(a, b *int) int {
	slot := func(t *int) int {
		if t == nil {
			return 0
		}
		return *t
	}
	return domain.CompareSlots(slot(a), a != nil, slot(b), b != nil)
}

// trayTasks is what tasks mark on the racks: how many each machine has
// queued or running. The racks answer and the marks the racks view
// refreshes on task events count them here, so that they agree.
type trayTasks struct {
	running    map[string]int
	unfinished []task.Task
}

func readTrayTasks(ctx context.Context, tasks Tasks) (trayTasks, error) {
	marks := trayTasks{running: map[string]int{}}
	if tasks == nil {
		return marks, nil
	}
	var err error
	if marks.unfinished, err = tasks.Unfinished(ctx); err != nil {
		return marks, err
	}
	for _, t := range marks.unfinished {
		marks.running[t.MachineID]++
	}
	return marks, nil
}

// batchMembers lists every task of each batch still under way (its
// finished ones too, for the batch's progress), however large the batch:
// only the task marks need them, not the racks answer.
func (m trayTasks) batchMembers(ctx context.Context, tasks Tasks) ([]task.Task, error) {
	type batchKey struct{ kind, batch string }
	read := map[batchKey]bool{}
	var members []task.Task
	for _, t := range m.unfinished {
		key := batchKey{t.Kind, batchOf(t)}
		if key.batch == "" || read[key] {
			continue
		}
		read[key] = true
		batch, err := tasks.TasksInBatch(ctx, key.kind, key.batch)
		if err != nil {
			return nil, err
		}
		members = append(members, batch...)
	}
	return members, nil
}

// batchOf is the batch a task's parameters name, if any.
func batchOf(t task.Task) string {
	var p struct {
		Batch string `json:"batch"`
	}
	if json.Unmarshal(t.Params, &p) != nil {
		return ""
	}
	return p.Batch
}

// rackTaskMarks answers the racks view's task marks: the running counts
// and the members of the batches under way.
func rackTaskMarks(tasks Tasks) fiber.Handler {
	return func(c *fiber.Ctx) error {
		marks, err := readTrayTasks(c.UserContext(), tasks)
		if err != nil {
			return err
		}
		members, err := marks.batchMembers(c.UserContext(), tasks)
		if err != nil {
			return err
		}
		inBatches := make([]taskJSON, len(members))
		for i, t := range members {
			inBatches[i] = toTaskJSON(t)
		}
		return c.JSON(fiber.Map{"running": marks.running, "batch_tasks": inBatches})
	}
}

// allMachines reads every machine, a page at a time.
func allMachines(ctx context.Context, machines MachineReader) ([]domain.MachineRecord, error) {
	var all []domain.MachineRecord
	for after := ""; ; {
		page, err := machines.Machines(ctx, domain.MachineFilter{AfterID: after, Limit: racksPage})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < racksPage {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

// bmcWord is a BMC's condition in one word, as the console's BMCs page
// names it.
func bmcWord(reachable bool, lastError string, polled bool) string {
	switch {
	case lastError != "":
		return "unusable"
	case !polled:
		return "new"
	case reachable:
		return "reachable"
	}
	return "unusable"
}

// naturalCompare orders names as people count: rack-2 before rack-10.
// Runs of digits compare by their value, everything else as text.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			// By value, however long: fewer significant digits is
			// smaller, then digit by digit.
			na, nb := trimZeros(a[:da]), trimZeros(b[:db])
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), cmp.Compare(na, nb)); c != 0 {
				return c
			}
			if c := cmp.Compare(da, db); c != 0 {
				return c // 02 after 2: equal values, the shorter first
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

// digitRun is how many ASCII digits s starts with.
func digitRun(s string) int {
	n := 0
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return n
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}
