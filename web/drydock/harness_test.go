package drydock

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/deploy"
	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/testbed/testkit"
	"github.com/slipway/slipway/web"
)

// harness is the Drydock API over the real model (store, inventory, task
// engine, design library, deployments) on a loopback port. Only the BMCs
// are a fake, and a node reaches ready when the test says so.
type harness struct {
	url          string
	admin, viewr string // tokens
	bmcs         *fakeBMCs
	machines     *readyMachines
	dep          *deploy.Service
	lib          *design.Library
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, commit := testkit.OpenStore(t)
	inv, err := domain.NewInventory(ctx, domain.InventoryConfig{DB: db, Commit: commit, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	authSvc, err := auth.New(ctx, auth.Config{DB: db, Commit: commit, KeyFile: filepath.Join(t.TempDir(), "session.key"), Log: quiet, HashCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{bmcs: &fakeBMCs{reachable: map[string]bool{}}, machines: &readyMachines{Inventory: inv, ready: map[string]bool{}}}
	for name, role := range map[string]string{"ann": auth.Admin, "vic": auth.Viewer} {
		if _, err := authSvc.AddUser(ctx, name, role, name+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	h.admin = login(t, authSvc, "ann")
	h.viewr = login(t, authSvc, "vic")
	engine := task.NewEngine(task.EngineConfig{DB: db, Commit: commit, Log: quiet})
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	lib := &design.Library{Dir: root, Profiles: []string{"default"}}
	h.lib = lib
	site, err := os.ReadFile("testdata/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Put("site", site); err != nil {
		t.Fatal(err)
	}
	h.dep = deploy.New(deploy.Config{DB: db, Commit: commit, Engine: engine, Designs: lib, Machines: h.machines, Records: domain.Fleet{DB: db}, BMCs: h.bmcs,
		ReportURL: "http://10.88.0.1/api/v1.0/bootactions/", Poll: 20 * time.Millisecond, BootActionTimeout: time.Hour, Log: quiet})
	testkit.RunUntilStopped(t, engine.Run)
	<-engine.Started()
	srv, err := web.New(web.Config{Addr: netip.MustParseAddr("127.0.0.1"), Metrics: prometheus.NewRegistry(), Logger: quiet},
		New(Services{Auth: authSvc, Deploy: h.dep, Tasks: task.Reader{DB: db}, Machines: domain.Fleet{DB: db}, BMCs: h.bmcs,
			Health: db.Ping})...)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	h.url = "http://" + srv.Addr().String()
	return h
}

func login(t *testing.T, a *auth.Service, name string) string {
	s, err := a.Login(context.Background(), name, name+"-password", "test")
	if err != nil {
		t.Fatal(err)
	}
	return s.Token
}

// call sends a request with the given headers and returns status, headers
// and body.
func (h *harness) call(t *testing.T, method, path, body string, headers ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// asAdmin is a request as the Drydock CLI sends it: X-Auth-Token, JSON.
func (h *harness) asAdmin(t *testing.T, method, path, body string) (int, http.Header, string) {
	// As drydock_client sends them: its session adds X-Context-Marker.
	return h.call(t, method, path, body, "X-Auth-Token", h.admin, "Content-Type", "application/json", "X-Context-Marker", "test-marker")
}

// readyMachines is the real inventory, except that a node is ready when
// the test marks it so (its netboot is the wiring tests' business).
type readyMachines struct {
	*domain.Inventory
	mu    sync.Mutex
	ready map[string]bool
}

func (m *readyMachines) State(id string) (domain.State, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready[id] {
		return domain.Ready(), true
	}
	return m.Inventory.State(id)
}

func (m *readyMachines) setReady(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ready[id] = true
}

// fakeBMCs remembers registrations and powers nothing.
type fakeBMCs struct {
	mu         sync.Mutex
	registered []bmc.Registration
	reachable  map[string]bool
	provisions []string
}

func (f *fakeBMCs) Register(_ context.Context, r bmc.Registration) (bmc.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registered = append(f.registered, r)
	return bmc.Status{ID: bmc.IDFor(r.Endpoint), Endpoint: r.Endpoint, MachineID: r.MachineID}, nil
}

func (f *fakeBMCs) ForMachine(id string) (bmc.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.registered {
		if r.MachineID == id {
			return bmc.Status{ID: bmc.IDFor(r.Endpoint), Endpoint: r.Endpoint, MachineID: id, Reachable: f.reachable[id],
				LastError: "connection refused", Inventory: bmc.Inventory{PowerState: "On", MemoryMiB: 65536, CPUCount: 2, Serial: "SN-" + id}}, nil
		}
	}
	return bmc.Status{}, bmc.ErrUnknownBMC
}

func (f *fakeBMCs) Statuses() []bmc.Status {
	var out []bmc.Status
	for _, id := range []string{"node1", "node2", "node3"} {
		if s, err := f.ForMachine(id); err == nil {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeBMCs) Power(context.Context, string, bmc.PowerAction) (string, error) {
	return "ForceOff", nil
}

func (f *fakeBMCs) Provision(_ context.Context, id string, _ bmc.ProvisionOptions) (bmc.Provisioned, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.provisions = append(f.provisions, id)
	if id == "" {
		return bmc.Provisioned{}, errors.New("no machine")
	}
	return bmc.Provisioned{MachineID: id, BMCID: "b-" + id, Target: "Pxe"}, nil
}
