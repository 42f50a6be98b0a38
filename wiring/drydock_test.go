package wiring

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// siteDesign is a three-node design whose BMCs are the fleet's: every
// node runs "hello" (a script and a unit that starts it); node3 also runs
// "broken", whose unit fails.
func siteDesign(bmcURLs []string) string {
	var b strings.Builder
	b.WriteString(`---
schema: drydock/HostProfile/v1
metadata: {schema: metadata/Document/v1, name: compute}
data:
  oob: {type: redfish, account: ` + testbed.DemoBMCUser + `, credential: ` + testbed.DemoBMCPassword + `}
  metadata: {tags: [compute]}
---
schema: drydock/Rack/v1
metadata: {schema: metadata/Document/v1, name: rack1}
data: {}
`)
	for i, u := range bmcURLs {
		// node2 is known by its BMC alone, as Drydock designs mostly are:
		// its NICs come from the BMC's inventory.
		bootMAC := ", boot_mac: '" + testbed.FleetMAC(i) + "'"
		if i == 1 {
			bootMAC = ""
		}
		fmt.Fprintf(&b, `---
schema: drydock/BaremetalNode/v1
metadata: {schema: metadata/Document/v1, name: node%d}
data:
  host_profile: compute
  oob: {type: redfish, account: %s, credential: %s, endpoint: '%s'}
  metadata: {rack: rack1%s}
`, i+1, testbed.DemoBMCUser, testbed.DemoBMCPassword, u, bootMAC)
	}
	script := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hello from {{ node.hostname }}\n"))
	b.WriteString(`---
schema: drydock/BootAction/v1
metadata: {schema: metadata/Document/v1, name: hello}
data:
  assets:
    - {path: /usr/local/bin/hello.sh, type: file, permissions: '755', data: ` + script + `, data_pipeline: [base64_decode, utf8_decode, template]}
    - path: /etc/systemd/system/hello.service
      type: unit
      data: "[Service]\nType=oneshot\nExecStart=/usr/local/bin/hello.sh\n[Install]\nWantedBy=multi-user.target\n"
---
schema: drydock/BootAction/v1
metadata: {schema: metadata/Document/v1, name: broken}
data:
  node_filter:
    filter_set_type: union
    filter_set: [{filter_type: union, node_names: [node3]}]
  assets:
    - path: /etc/systemd/system/broken.service
      type: unit
      data: "[Service]\nType=oneshot\nExecStart=/bin/false\n"
`)
	return b.String()
}

// A site design deployed through Drydock's API, end to end: uploaded,
// validated, deploy_nodes drives the emulated BMCs, each simulated node
// netboots through the real doors, fetches its cloud-init (which carries
// its boot action key and manifest), fetches and unpacks its boot data,
// runs and reports its actions, and onboards; node3's failing action
// fails it, and the task ends partial_success with per-node results and
// build data.
func TestDrydockDeploysASite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir, ports := t.TempDir(), testPorts(t)
	var mu sync.Mutex
	runs := map[int]testbed.BootReport{}
	like := testbed.Node{Onboard: true, BootActions: true, DHCP: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports.DHCP}, TFTPPort: ports.TFTP}
	fleet, err := testbed.StartBMCFleet(ctx, 3, like, func(i int, r testbed.BootReport, err error) {
		if err != nil {
			t.Errorf("node%d boot: %v", i+1, err)
		}
		mu.Lock()
		runs[i] = r
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.Close)
	var bmcURLs []string
	for _, b := range fleet.Farm.BMCs {
		bmcURLs = append(bmcURLs, b.URL)
	}
	cfg, err := DemoConfig(dir, ports, DemoInventory{Users: testConfigWith(t, dir, DemoInventory{}).Users}, "console=ttyS0")
	if err != nil {
		t.Fatal(err)
	}
	if err := testbed.SeedDemoFiles(cfg.TFTPRoot(), cfg.AssetsDir(), cfg.TemplatesDir()); err != nil {
		t.Fatal(err)
	}
	urls, stop := runUntilReady(t, cfg)
	t.Cleanup(func() { _ = stop() })

	// The design goes up through the native API; Drydock's client logs in
	// with a Slipway token.
	// Every answer's shape is pinned too (see TestNativeContractsAreGolden).
	golden := map[string]string{}
	code, body := testkit.Request(t, http.MethodPut, urls.HTTP+"/api/v1/designs/site", testUser, testPassword, siteDesign(bmcURLs))
	if code != 200 || !strings.Contains(body, `"valid":true`) || !strings.Contains(body, `"nodes":["node1","node2","node3"]`) {
		t.Fatalf("upload: %d %s", code, body)
	}
	golden["http-design-put"] = body
	token := loginToken(t, urls.HTTP)
	drydock := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, urls.HTTP+"/api/v1.0"+path, strings.NewReader(body))
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Content-Type", "application/json")
		return testkit.Do(t, req)
	}
	if code, body = drydock(http.MethodPost, "/validatedesign", `{"rel":"design","href":"slipway:site","type":"application/x-yaml"}`); code != 200 {
		t.Fatalf("validatedesign: %d %s", code, body)
	}
	golden["drydock-validatedesign"] = body
	code, body = drydock(http.MethodPost, "/tasks", `{"action":"deploy_nodes","design_ref":"slipway:site"}`)
	var created struct {
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(body), &created); code != 201 || err != nil {
		t.Fatalf("deploy_nodes: %d %s", code, body)
	}
	golden["drydock-task-created"] = body
	var task struct {
		Status   string   `json:"status"`
		Subtasks []string `json:"subtask_id_list"`
		Result   struct {
			Status    string   `json:"status"`
			Successes []string `json:"successes"`
			Failures  []string `json:"failures"`
		} `json:"result"`
	}
	var raw string
	for deadline := time.Now().Add(60 * time.Second); task.Status != "complete"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("deploy_nodes did not complete: %s", raw)
		}
		_, raw = drydock(http.MethodGet, "/tasks/"+created.TaskID, "")
		_ = json.Unmarshal([]byte(raw), &task)
	}
	if task.Result.Status != "partial_success" || strings.Join(task.Result.Successes, ",") != "node1,node2" ||
		strings.Join(task.Result.Failures, ",") != "node3" || len(task.Subtasks) != 3 {
		t.Errorf("deploy_nodes ended: %s", raw)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 3 {
		r := runs[i]
		host := fmt.Sprintf("node%d", i+1)
		if !r.Onboarded || r.Actions.Files["/usr/local/bin/hello.sh"] != "#!/bin/sh\necho hello from "+host ||
			!strings.Contains(r.UserData, "/etc/slipway/bootactions.sh") {
			t.Errorf("%s: onboarded %v, files %v", host, r.Onboarded, r.Actions.Files)
		}
	}
	if got := strings.Join(runs[2].Actions.Failed, ","); got != "broken" {
		t.Errorf("node3 failed actions %q", got)
	}
	// What the console shows: a node's boot actions and build data.
	code, body = testkit.Request(t, http.MethodGet, urls.HTTP+"/api/v1/machines/node3/bootactions", testUser, testPassword, "")
	if code != 200 || !strings.Contains(body, `"name":"broken","task_id"`) || !strings.Contains(body, `"status":"failure"`) {
		t.Errorf("node3's boot actions: %d %s", code, body)
	}
	code, body = drydock(http.MethodGet, "/nodes/node1/builddata?latest=True", "")
	if code != 200 || !strings.Contains(body, `"generator":"redfish"`) || !strings.Contains(body, `"generator":"deploy:hello"`) ||
		!strings.Contains(body, `"generator":"dhcp"`) || !strings.Contains(body, `PXEClient:Arch:00007`) || !strings.Contains(body, `"generator":"heartbeats"`) {
		t.Errorf("node1's build data: %d %s", code, body)
	}
	code, body = drydock(http.MethodGet, "/nodes", "")
	if code != 200 || strings.Count(body, `"status_name":"Deployed"`) != 3 {
		t.Errorf("nodes after the deploy: %d %s", code, body)
	}
	golden["drydock-nodes"] = body
	for name, path := range map[string]string{"drydock-task": "/tasks/" + created.TaskID + "?builddata=true&subtaskerrors=true",
		"drydock-tasks": "/tasks", "drydock-task-builddata": "/tasks/" + task.Subtasks[0] + "/builddata",
		"drydock-node-builddata": "/nodes/node1/builddata?latest=true"} {
		_, golden[name] = drydock(http.MethodGet, path, "")
	}
	_, golden["drydock-nodefilter"] = drydock(http.MethodPost, "/nodefilter", `{"design_ref":"slipway:site","node_filter":null}`)
	_, golden["drydock-error"] = drydock(http.MethodGet, "/tasks/not-a-task", "")
	for name, path := range map[string]string{"http-designs": "/api/v1/designs", "http-design": "/api/v1/designs/site",
		"http-machine-bootactions": "/api/v1/machines/node3/bootactions", "http-machine-builddata": "/api/v1/machines/node1/builddata"} {
		_, golden[name] = testkit.Request(t, http.MethodGet, urls.HTTP+path, testUser, testPassword, "")
	}
	for name, doc := range golden {
		checkGolden(t, name, []byte(doc))
	}
}
