package nico

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/firmware"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/appliance/trays"
	"github.com/slipway/slipway/testbed/testkit"
	"github.com/slipway/slipway/web"
)

const site = "6f1c2e8a-4b0d-4c47-9d1e-2a7f3c5b8e90"

// fleet is one rack: a power shelf, a switch, two compute trays (one not
// ready), and a machine in no rack.
type fleet struct {
	mu      sync.Mutex
	started []string
	origins []firmware.Origin
}

func (f *fleet) Machines(_ context.Context, mf domain.MachineFilter) ([]domain.MachineRecord, error) {
	if mf.AfterID != "" {
		return nil, nil
	}
	m := func(id, typ string, slot int, state string) domain.MachineRecord {
		return domain.MachineRecord{ID: id, StateName: state, MachineInfo: domain.MachineInfo{Hostname: id + ".lab", RackID: "r1",
			RackName: "Rack 1", Tray: slot, TrayKnown: true, TrayType: typ}}
	}
	// spare is a node of a Drydock design: in a rack, in no known slot.
	spare := domain.MachineRecord{ID: "spare", StateName: "ready", MachineInfo: domain.MachineInfo{RackID: "r2", RackName: "Rack 2"}}
	return []domain.MachineRecord{m("c1", "compute", 3, "ready"), m("c2", "compute", 4, "hostinit"), m("ps", "powershelf", 1, "ready"),
		m("sw", "switch", 2, "ready"), {ID: "loose", StateName: "ready"}, spare}, nil
}

func (f *fleet) Statuses() []bmc.Status {
	var out []bmc.Status
	for _, id := range []string{"c1", "c2", "ps", "sw"} {
		fw := map[string][]bmc.Firmware{"c1": {{ID: "BMC"}, {ID: "BIOS"}}, "c2": {{ID: "BMC"}, {ID: "BIOS"}},
			"ps": {{ID: "PMC"}, {ID: "PSU"}}, "sw": {{ID: "BMC"}, {ID: "CPLD"}, {ID: "BIOS"}, {ID: "NVOS"}}}[id]
		out = append(out, bmc.Status{ID: "bmc-" + id, Endpoint: "https://10.0.0." + id, MachineID: id, Reachable: true,
			Inventory: bmc.Inventory{PowerState: "On", Model: "M-" + id, Serial: "S-" + id, BMCVersion: "1.0", Firmware: fw}})
	}
	return out
}

func (f *fleet) Images(context.Context) ([]firmware.Image, error) {
	var out []firmware.Image
	for i, c := range []string{"BMC", "BIOS", "PMC", "PSU", "CPLD", "NVOS"} {
		out = append(out, firmware.Image{ID: "img-" + strings.ToLower(c) + "-2", Component: c, Version: "2.0", CreatedAt: time.Unix(int64(i), 0)})
	}
	return out, nil
}

func (f *fleet) StartFor(_ context.Context, machineID, imageID string, o firmware.Origin) (task.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, machineID+":"+imageID)
	f.origins = append(f.origins, o)
	return task.Task{ID: fmt.Sprintf("t%d", len(f.started))}, nil
}

func (f *fleet) StartDPU(_ context.Context, d firmware.DPUReprovision) (task.Task, error) {
	return f.StartFor(context.Background(), d.HostID, d.ImageID, d.Origin)
}

func serve(t *testing.T, siteID string) (string, *fleet, map[string]string) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, commit := testkit.OpenStore(t)
	a, err := auth.New(context.Background(), auth.Config{DB: db, Commit: commit, KeyFile: filepath.Join(t.TempDir(), "k"), Log: quiet, HashCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for name, role := range map[string]string{"ann": auth.Admin, "otto": auth.Operator} {
		if _, err := a.AddUser(context.Background(), name, role, name+"-password"); err != nil {
			t.Fatal(err)
		}
		s, err := a.Login(context.Background(), name, name+"-password", "test")
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = s.Token
	}
	f := &fleet{}
	srv, err := web.New(web.Config{Addr: netip.MustParseAddr("127.0.0.1"), Metrics: prometheus.NewRegistry(), Logger: quiet},
		New(Services{Auth: a, Trays: &trays.Service{Machines: f, BMCs: f, Firmware: f, SiteID: siteID}}))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "http://" + srv.Addr().String(), f, tokens
}

func call(t *testing.T, method, url, token, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAuth(t *testing.T) {
	base, _, tokens := serve(t, site)
	for _, tc := range []struct {
		name, token string
		code        int
		has         string
	}{
		{"no token", "", 401, `"source":"nico"`},
		{"not a token", "nope", 401, `"source":"nico"`},
		{"an operator has no PROVIDER_ADMIN role", tokens["otto"], 403, "PROVIDER_ADMIN"},
		{"an admin", tokens["ann"], 200, `"roles":["admin","SLIPWAY_PROVIDER_ADMIN"]`},
	} {
		code, _, body := call(t, http.MethodGet, base+"/v2/org/acme/nico/user/current", tc.token, "")
		if code != tc.code || !strings.Contains(body, tc.has) {
			t.Errorf("%s: %d %s", tc.name, code, body)
		}
	}
}

func TestListTrays(t *testing.T) {
	base, _, tokens := serve(t, site)
	for _, tc := range []struct {
		query string
		code  int
		ids   string // the trays listed, in order
		page  string
	}{
		{"", 200, "ps sw c1 c2 spare", `{"orderBy":null,"pageNumber":1,"pageSize":20,"total":5}`},
		{"?type=compute", 200, "c1 c2 spare", `"total":3`},
		{"?rackName=Rack%201&pageSize=2&pageNumber=2", 200, "c1 c2", `{"orderBy":null,"pageNumber":2,"pageSize":2,"total":4}`},
		{"?ids=sw,c2", 200, "sw c2", `"total":2`},
		{"?componentIds=bmc-c1&componentIds=bmc-sw&type=switch", 200, "sw", `"total":1`},
		{"?componentIds=bmc-c1", 400, "", ""},
		{"?rackId=r1&rackName=Rack%201", 400, "", ""},
		{"?pageSize=0", 400, "", ""},
	} {
		code, hdr, body := call(t, http.MethodGet, base+"/v2/org/acme/nico/tray"+tc.query, tokens["ann"], "")
		if code != tc.code {
			t.Errorf("%s: %d %s", tc.query, code, body)
			continue
		}
		if code != 200 {
			if !strings.Contains(body, `"source":"nico"`) {
				t.Errorf("%s: error body %s", tc.query, body)
			}
			continue
		}
		var ids []string
		for _, part := range strings.Split(body, `"id":"`)[1:] {
			ids = append(ids, part[:strings.Index(part, `"`)])
		}
		if strings.Join(ids, " ") != tc.ids || !strings.Contains(hdr.Get("X-Pagination"), tc.page) {
			t.Errorf("%s: trays %v, X-Pagination %s", tc.query, ids, hdr.Get("X-Pagination"))
		}
	}
	_, _, body := call(t, http.MethodGet, base+"/v2/org/acme/nico/tray?ids=sw", tokens["ann"], "")
	want := `[{"bmcs":["https://10.0.0.sw"],"componentId":"bmc-sw","firmwareVersion":"1.0","id":"sw","manufacturer":"","model":"M-sw","name":"sw.lab","position":2,"powerState":"On","rackId":"r1","rackName":"Rack 1","serialNumber":"S-sw","type":"switch"}]`
	if body != want {
		t.Errorf("a tray:\n%s\nwant\n%s", body, want)
	}
	// A slot nobody gave is not slot 0.
	if _, _, body := call(t, http.MethodGet, base+"/v2/org/acme/nico/tray?ids=spare", tokens["ann"], ""); !strings.Contains(body, `"id":"spare"`) || strings.Contains(body, "position") {
		t.Errorf("a tray in no known slot: %s, want no position", body)
	}
}

func TestFirmwareUpdates(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		code             int
		want             string // in the body
		started          string
	}{
		{"one switch's targets", "tray", `{"siteId":"` + site + `","filter":{"ids":["sw"]},"version":"2.0","targets":["bmc","nvos"]}`, 200,
			`{"taskIds":["t1","t2"]}`, "sw:img-bmc-2 sw:img-nvos-2"},
		{"a rack, power before network before compute", "rack", `{"siteId":"` + site + `","filter":{"rackId":"r1"},"targets":["bmc","psu"],"version":"2.0","overrideReadinessCheck":true}`, 200,
			`"taskIds":["t1","t2","t3","t4"]`, "ps:img-psu-2 sw:img-bmc-2 c1:img-bmc-2 c2:img-bmc-2"},
		{"a tray that is not ready", "tray", `{"siteId":"` + site + `","filter":{"ids":["c2"]},"targets":["bios"],"version":"2.0"}`, 400,
			`tray c2 is not ready: its lifecycle state is hostinit`, ""},
		{"no image of that version", "tray", `{"siteId":"` + site + `","filter":{"ids":["c1"]},"targets":["bios"],"version":"3.1"}`, 400,
			`no BIOS firmware image of version \"3.1\"`, ""},
		{"another site", "tray", `{"siteId":"00000000-0000-4000-8000-000000000000","filter":{"ids":["c1"]}}`, 400, `is not this box's site`, ""},
		{"no siteId", "tray", `{"filter":{"ids":["c1"]}}`, 400, `siteId is required`, ""},
		{"rack-level and component-level", "tray", `{"siteId":"` + site + `","filter":{"rackId":"r1","ids":["c1"]}}`, 400, `cannot be combined`, ""},
		{"targets without version", "tray", `{"siteId":"` + site + `","targets":["bmc"]}`, 400, `"data":{"field":"version"}`, ""},
		{"an unknown field", "tray", `{"siteId":"` + site + `","filters":{}}`, 400, `unknown field`, ""},
		{"dpu without the site's DPU OS version", "tray", `{"siteId":"` + site + `","filter":{"ids":["c1"]},"targets":["dpu"]}`, 400, `nico.dpu.os_version`, ""},
		{"a rack update names a rack", "rack", `{"siteId":"` + site + `","filter":{"ids":["c1"]}}`, 400, `names its rack`, ""},
		{"nothing selected", "tray", `{"siteId":"` + site + `","filter":{"rackName":"Rack 9"}}`, 400, `selects no tray`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, f, tokens := serve(t, site)
			code, _, body := call(t, http.MethodPatch, base+"/v2/org/acme/nico/"+tc.path+"/firmware", tokens["ann"], tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s; want %d with %s", code, body, tc.code, tc.want)
			}
			if got := strings.Join(f.started, " "); got != tc.started {
				t.Errorf("started %q, want %q", got, tc.started)
			}
		})
	}
	// ruleId goes with every task of the batch, and the batch is one.
	base, f, tokens := serve(t, site)
	const rule = "0b5e3c1a-9f0e-4d6b-8a1c-2e3f4a5b6c7d"
	if code, _, body := call(t, http.MethodPatch, base+"/v2/org/acme/nico/tray/firmware", tokens["ann"],
		`{"siteId":"`+site+`","filter":{"ids":["sw"]},"version":"2.0","targets":["bmc","bios"],"ruleId":"`+rule+`"}`); code != 200 ||
		len(f.origins) != 2 || f.origins[0].RuleID != rule || f.origins[0].Batch == "" || f.origins[0].Batch != f.origins[1].Batch {
		t.Errorf("ruleId: %d %s %+v", code, body, f.origins)
	}
	base, _, tokens = serve(t, "")
	if code, _, body := call(t, http.MethodPatch, base+"/v2/org/acme/nico/tray/firmware", tokens["ann"], `{"siteId":"`+site+`"}`); code != 400 ||
		!strings.Contains(body, "nico.site_id") {
		t.Errorf("a box without a site id: %d %s", code, body)
	}
}
