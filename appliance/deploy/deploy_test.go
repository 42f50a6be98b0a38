package deploy

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

func TestResultMerge(t *testing.T) {
	for _, tc := range []struct {
		steps []string // s: a success, f: a failure
		want  string
	}{
		{nil, ""},
		{[]string{"s"}, Success},
		{[]string{"f"}, Failure},
		{[]string{"s", "s"}, Success},
		{[]string{"s", "f"}, PartialSuccess},
		{[]string{"f", "s"}, PartialSuccess},
		{[]string{"f", "s", "f"}, PartialSuccess},
	} {
		var r Result
		for i, s := range tc.steps {
			node := string(rune('a' + i))
			if s == "s" {
				r.succeed(node)
			} else {
				r.fail(node)
			}
		}
		if r.Status != tc.want {
			t.Errorf("%v: %q, want %q", tc.steps, r.Status, tc.want)
		}
	}
}

// node is a fake machine and BMC world: provisions are counted, a node is
// ready when the test says so.
type world struct {
	*domain.Inventory
	mu         sync.Mutex
	ready      map[string]bool
	provisions int
}

func (w *world) State(id string) (domain.State, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ready[id] {
		return domain.Ready(), true
	}
	return w.Inventory.State(id)
}

func (w *world) Register(_ context.Context, r bmc.Registration) (bmc.Status, error) {
	return bmc.Status{ID: bmc.IDFor(r.Endpoint)}, nil
}
func (w *world) ForMachine(string) (bmc.Status, error) { return bmc.Status{}, bmc.ErrUnknownBMC }
func (w *world) Power(context.Context, string, bmc.PowerAction) (string, error) {
	return "", nil
}
func (w *world) Provision(_ context.Context, id string, _ bmc.ProvisionOptions) (bmc.Provisioned, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.provisions++
	return bmc.Provisioned{MachineID: id}, nil
}

// start runs an engine and a deployment service over db until the
// returned stop is called.
func start(t *testing.T, db *store.Store, commit *store.Committer, w *world, lib *design.Library) (*Service, func()) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := task.NewEngine(task.EngineConfig{DB: db, Commit: commit, Log: quiet})
	svc := New(Config{DB: db, Commit: commit, Engine: engine, Designs: lib, Machines: w, BMCs: w, Poll: 10 * time.Millisecond, Log: quiet})
	stop := testkit.RunUntilStopped(t, engine.Run)
	<-engine.Started()
	return svc, stop
}

// A deploy stopped while its node netboots resumes where it was: the node
// is not provisioned twice, its boot actions and key stay, and the
// reports made meanwhile count.
func TestDeployResumesAfterAStop(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	inv, err := domain.NewInventory(context.Background(), domain.InventoryConfig{DB: db, Commit: commit})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{Inventory: inv, ready: map[string]bool{}}
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	lib := &design.Library{Dir: root}
	site, err := os.ReadFile("../design/testdata/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Put("site", site); err != nil {
		t.Fatal(err)
	}
	svc, stop := start(t, db, commit, w, lib)
	filter := &design.NodeFilter{FilterSetType: design.Union, FilterSet: []design.FilterSet{{FilterType: design.Union, NodeNames: []string{"node3"}}}}
	parent, err := svc.Submit(context.Background(), Params{Action: DeployNodes, DesignRef: "slipway:site", NodeFilter: filter})
	if err != nil {
		t.Fatal(err)
	}
	reader := task.Reader{DB: db}
	testkit.WaitFor(t, "node3 to netboot", func() bool {
		subs, _ := reader.TasksOfKind(context.Background(), nodeKind(DeployNodes), 10)
		return len(subs) == 1 && subs[0].Step == "netboot"
	})
	before, _ := svc.BootActions(context.Background(), "node3")
	stop() // as a stop of Slipway would

	svc, stop = start(t, db, commit, w, lib)
	defer stop()
	after, _ := svc.BootActions(context.Background(), "node3")
	if len(before) != 2 || len(after) != 2 || before[0].ID != after[0].ID {
		t.Fatalf("boot actions changed over the stop: %+v → %+v", before, after)
	}
	for _, a := range after {
		if a.Name == "hello" {
			if _, err := svc.Report(context.Background(), a.ID, "Success", []Detail{{Message: "ok"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.mu.Lock()
	w.ready["node3"] = true
	w.mu.Unlock()
	var done task.Task
	testkit.WaitFor(t, "the deploy to end", func() bool {
		done, _ = reader.Task(context.Background(), parent.ID)
		return done.Finished()
	})
	var res Result
	_ = jsonDecode(done.Result, &res)
	if done.Status != task.Succeeded || res.Status != Success || w.provisions != 1 {
		t.Errorf("after the resume: %s %s, %d provisions; %s", done.Status, res.Status, w.provisions, done.Result)
	}
}
