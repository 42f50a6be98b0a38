package drydock

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway/slipway/testbed/testkit"
)

func TestVersionsHealthAndRequestIDs(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/versions", 200, `{"v1.0":{"path":"/api/v1.0","status":"stable"}}`},
		{"/api/v1.0/health", 204, ""},
		{"/api/v1.0/nowhere", 404, `{"title":"404 Not Found"}`},
	} {
		code, hdr, body := h.call(t, http.MethodGet, tc.path, "")
		if code != tc.code || body != tc.body || len(hdr.Get("X-Drydock-Req")) != 36 {
			t.Errorf("GET %s: %d %q X-Drydock-Req %q; want %d %q", tc.path, code, body, hdr.Get("X-Drydock-Req"), tc.code, tc.body)
		}
	}
}

func TestKeystoneAuth(t *testing.T) {
	h := newHarness(t)
	const unauth = `{"message":"Unauthenticated","retry":false,"type":"error"}`
	for _, tc := range []struct {
		name    string
		headers []string
		code    int
		body    string
	}{
		{"no token", nil, 401, unauth},
		{"a token that is not one", []string{"X-Auth-Token", "nope"}, 401, unauth},
		{"basic auth is not Keystone", []string{"Authorization", "Basic YW5uOmFubi1wYXNzd29yZA=="}, 401, unauth},
		{"a viewer", []string{"X-Auth-Token", h.viewr}, 403, `{"message":"Forbidden","retry":false,"type":"error"}`},
		{"an admin by X-Auth-Token", []string{"X-Auth-Token", h.admin}, 200, "[]"},
		{"an admin by Bearer", []string{"Authorization", "Bearer " + h.admin}, 200, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := h.call(t, http.MethodGet, "/api/v1.0/tasks", "", tc.headers...)
			if code != tc.code || body != tc.body {
				t.Errorf("%d %s; want %d %s", code, body, tc.code, tc.body)
			}
		})
	}
}

func TestValidateDesign(t *testing.T) {
	h := newHarness(t)
	broken := "---\nschema: drydock/BaremetalNode/v1\nmetadata: {name: n1}\ndata: {host_profile: missing, colour: red}\n"
	if _, err := h.dep.Design(t.Context(), "slipway:site"); err != nil {
		t.Fatal(err)
	}
	if code, body := putDesign(t, h, "broken", broken); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	for _, tc := range []struct {
		name, body string
		code       int
		has        []string
	}{
		{"a valid design", `{"rel":"design","href":"slipway:site","type":"application/x-yaml"}`, 200,
			[]string{`"status":"Success"`, `"code":200`, `"kind":"Status"`, `"level":"Info"`}},
		{"every problem with its document and field", `{"href":"slipway:broken"}`, 400,
			[]string{`"status":"Failure"`, `"code":400`, `"errorCount":2`, `"name":"data"`, `colour`, `"name":"data.host_profile"`,
				`"documents":[{"name":"n1","schema":"drydock/BaremetalNode/v1"}]`}},
		{"a design that cannot be read", `{"href":"slipway:nothing"}`, 400, []string{`"status":"failure"`, `no design by that name`}},
		{"a ref this box cannot read", `{"href":"file:///etc/passwd"}`, 400, []string{`"status":"failure"`, `over HTTP or from its own library`}},
		{"no href", `{"rel":"design"}`, 400, []string{`"message":"Missing input required value: href"`, `"type":"error"`}},
		{"no body", ``, 400, []string{`"type":"error"`}},
		{"not JSON", `{`, 400, []string{`"type":"error"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := h.asAdmin(t, http.MethodPost, "/api/v1.0/validatedesign", tc.body)
			if code != tc.code || !containsAll(body, tc.has) {
				t.Errorf("%d %s; want %d with %q", code, body, tc.code, tc.has)
			}
		})
	}
}

// putDesign uploads a design to the library (the native API's business).
func putDesign(t *testing.T, h *harness, name, text string) (int, string) {
	t.Helper()
	if _, err := h.lib.Put(name, []byte(text)); err != nil {
		return 400, err.Error()
	}
	return 200, ""
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func TestNodeFilter(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"the CLI's -n", `{"design_ref":"slipway:site","node_filter":{"filter_set_type":"intersection","filter_set":[{"filter_type":"union","node_names":["node2"],"rack_names":[]}]}}`, 200, `["node2"]`},
		{"no filter: every node", `{"design_ref":"slipway:site","node_filter":null}`, 200, `["node1","node2","node3"]`},
		{"by rack", `{"design_ref":"slipway:site","node_filter":{"filter_set_type":"union","filter_set":[{"filter_type":"union","rack_names":["rack-b"]}]}}`, 200, `["node3"]`},
		{"nothing selected", `{"design_ref":"slipway:site","node_filter":{"filter_set_type":"union","filter_set":[{"filter_type":"union","node_names":["x"]}]}}`, 200, `[]`},
		{"no design_ref", `{"node_filter":null}`, 400, `{"message":"Missing input required value: design_ref","retry":false,"type":"error"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := h.asAdmin(t, http.MethodPost, "/api/v1.0/nodefilter", tc.body)
			if code != tc.code || body != tc.want {
				t.Errorf("%d %s; want %d %s", code, body, tc.code, tc.want)
			}
		})
	}
}

func TestTaskCreationErrors(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"no action", `{"design_ref":"slipway:site"}`, 400, `{"message":"Task creation requires fields design_ref, action","retry":false,"type":"error"}`},
		{"no design_ref", `{"action":"verify_site"}`, 400, `{"message":"Task creation requires fields design_ref, action","retry":false,"type":"error"}`},
		{"a singular action, as the task doc spells it", `{"action":"deploy_node","design_ref":"slipway:site"}`, 400, `{"message":"Unsupported action deploy_node","retry":false,"type":"error"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := h.asAdmin(t, http.MethodPost, "/api/v1.0/tasks", tc.body)
			if code != tc.code || body != tc.want {
				t.Errorf("%d %s; want %d %s", code, body, tc.code, tc.want)
			}
		})
	}
	for _, path := range []string{"/api/v1.0/tasks/not-a-uuid", "/api/v1.0/tasks/8f0e3a3e-6a7d-4a40-9b6c-6ab2f4a3b2a1"} {
		code, _, body := h.asAdmin(t, http.MethodGet, path, "")
		id := path[len("/api/v1.0/tasks/"):]
		if code != 404 || body != `{"message":"Task `+id+` does not exist","retry":false,"type":"error"}` {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
		if code, _, body := h.asAdmin(t, http.MethodGet, path+"/builddata", ""); code != 404 || body != "" {
			t.Errorf("GET %s/builddata: %d %q, want 404 with an empty body", path, code, body)
		}
	}
}

// task is the part of Drydock's task object the tests read.
type taskBody struct {
	Kind       string   `json:"kind"`
	APIVersion string   `json:"apiVersion"`
	TaskID     string   `json:"task_id"`
	Action     string   `json:"action"`
	Status     string   `json:"status"`
	Subtasks   []string `json:"subtask_id_list"`
	Created    string   `json:"created"`
	CreatedBy  string   `json:"created_by"`
	Result     struct {
		Kind       string   `json:"kind"`
		APIVersion string   `json:"apiVersion"`
		Status     string   `json:"status"`
		Successes  []string `json:"successes"`
		Failures   []string `json:"failures"`
		Links      []struct {
			Rel, Href string
		} `json:"links"`
		Details struct {
			ErrorCount  int `json:"errorCount"`
			MessageList []struct {
				Message string `json:"message"`
				Error   bool   `json:"error"`
			} `json:"messageList"`
		} `json:"details"`
	} `json:"result"`
	BuildData     []map[string]any          `json:"build_data"`
	SubtaskErrors map[string]map[string]any `json:"subtask_errors"`
}

// createTask posts a task as the CLI does and checks Drydock's 201.
func (h *harness) createTask(t *testing.T, body string) taskBody {
	t.Helper()
	code, hdr, resp := h.asAdmin(t, http.MethodPost, "/api/v1.0/tasks", body)
	var tb taskBody
	if err := json.Unmarshal([]byte(resp), &tb); err != nil || code != 201 {
		t.Fatalf("create: %d %s", code, resp)
	}
	if hdr.Get("Location") != "/api/v1.0/tasks/"+tb.TaskID || tb.Status != "queued" || tb.Kind != "Task" || tb.APIVersion != "v1" ||
		tb.Result.Status != "incomplete" || tb.CreatedBy != "ann" || len(tb.Created) != len("2006-01-02 15:04:05.000000") {
		t.Fatalf("created task: Location %q, %s", hdr.Get("Location"), resp)
	}
	return tb
}

// waitTask polls GET /tasks/{id}?query until the task is complete.
func (h *harness) waitTask(t *testing.T, id, query string) (taskBody, string) {
	t.Helper()
	var tb taskBody
	var raw string
	testkit.WaitFor(t, "task "+id+" to complete", func() bool {
		_, _, raw = h.asAdmin(t, http.MethodGet, "/api/v1.0/tasks/"+id+query, "")
		tb = taskBody{}
		_ = json.Unmarshal([]byte(raw), &tb)
		return tb.Status == "complete"
	})
	return tb, raw
}

func TestSiteActions(t *testing.T) {
	h := newHarness(t)
	v := h.createTask(t, `{"action":"validate_design","design_ref":"slipway:site"}`)
	if got, raw := h.waitTask(t, v.TaskID, ""); got.Result.Status != "success" || got.Result.APIVersion != "v1.0" ||
		len(got.Result.Links) != 1 || !strings.HasSuffix(got.Result.Links[0].Href, "/api/v1.0/tasks/"+v.TaskID+"/builddata") {
		t.Errorf("validate_design: %s", raw)
	}
	p := h.createTask(t, `{"action":"prepare_site","design_ref":"slipway:site"}`)
	if got, raw := h.waitTask(t, p.TaskID, ""); got.Result.Status != "success" || len(got.Result.Successes) != 3 {
		t.Errorf("prepare_site: %s", raw)
	}
	if n := len(h.bmcs.registered); n != 3 || h.bmcs.registered[0].Endpoint != "https://10.88.1.11" || h.bmcs.registered[0].Username != "admin" {
		t.Errorf("BMCs registered: %+v", h.bmcs.registered)
	}
	code, _, body := h.asAdmin(t, http.MethodGet, "/api/v1.0/nodes", "")
	want := `{"boot_ip":null,"boot_mac":"52:54:00:00:00:11","cpu_count":2,"hostname":"node1","memory":65536,"power_address":"10.88.1.11","power_state":"on","status_name":"New"}`
	if code != 200 || !strings.Contains(body, want) {
		t.Errorf("GET /nodes: %d %s\nwant an entry %s", code, body, want)
	}
	// node1's BMC answers; node2's does not: a partial success.
	h.bmcs.mu.Lock()
	h.bmcs.reachable["node1"] = true
	h.bmcs.mu.Unlock()
	vn := h.createTask(t, `{"action":"verify_nodes","design_ref":"slipway:site","node_filter":{"filter_set_type":"union","filter_set":[{"filter_type":"union","node_names":["node1","node2"]}]}}`)
	got, raw := h.waitTask(t, vn.TaskID, "?subtaskerrors=true&builddata=true")
	if got.Result.Status != "partial_success" || len(got.Subtasks) != 2 || strings.Join(got.Result.Successes, ",") != "node1" ||
		strings.Join(got.Result.Failures, ",") != "node2" || len(got.SubtaskErrors) != 1 || len(got.BuildData) != 1 {
		t.Errorf("verify_nodes: %s", raw)
	}
	code, _, layered := h.asAdmin(t, http.MethodGet, "/api/v1.0/tasks/"+vn.TaskID+"?layers=-1", "")
	var layers map[string]json.RawMessage
	if err := json.Unmarshal([]byte(layered), &layers); code != 200 || err != nil || len(layers) != 4 || string(layers["init_task_id"]) != `"`+vn.TaskID+`"` {
		t.Errorf("layers=-1: %d %s", code, layered)
	}
	code, _, all := h.asAdmin(t, http.MethodGet, "/api/v1.0/tasks", "")
	var list []taskBody
	if err := json.Unmarshal([]byte(all), &list); code != 200 || err != nil || len(list) != 5 {
		t.Errorf("GET /tasks: %d, %d tasks (want the 3 tasks and 2 subtasks)", code, len(list))
	}
	code, _, bd := h.asAdmin(t, http.MethodGet, "/api/v1.0/nodes/node1/builddata?latest=True", "")
	if code != 200 || !strings.Contains(bd, `"generator":"redfish"`) || !strings.Contains(bd, `"data_format":"application/json"`) {
		t.Errorf("node1 build data: %d %s", code, bd)
	}
	if code, _, body := h.asAdmin(t, http.MethodGet, "/api/v1.0/nodes/node3/builddata", ""); code != 404 ||
		body != `{"message":"No build data found","retry":false,"type":"error"}` {
		t.Errorf("node3 build data: %d %s", code, body)
	}
	if code, _, body := h.asAdmin(t, http.MethodDelete, "/api/v1.0/tasks?days=0", ""); code != 200 || body != "Tables purged successfully." {
		t.Errorf("purge: %d %s", code, body)
	}
	if _, _, all := h.asAdmin(t, http.MethodGet, "/api/v1.0/tasks", ""); all != "[]" {
		t.Errorf("after the purge: %s", all)
	}
}

// untar reads a gzipped tar into path → (mode, content).
func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out := map[string]string{}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out[hdr.Name] = string(body)
		out[hdr.Name+" mode"] = fmt.Sprintf("%o", hdr.Mode)
	}
}

func TestDeployNodesWithBootActions(t *testing.T) {
	h := newHarness(t)
	d := h.createTask(t, `{"action":"deploy_nodes","design_ref":"slipway:site","node_filter":{"filter_set_type":"union","filter_set":[{"filter_type":"union","node_names":["node2","node3"]}]}}`)
	var keys = map[string]string{}
	testkit.WaitFor(t, "boot action contexts", func() bool {
		for _, n := range []string{"node2", "node3"} {
			keys[n], _ = h.dep.NodeKey(t.Context(), n)
		}
		return keys["node2"] != "" && keys["node3"] != ""
	})
	if len(keys["node2"]) != 64 || keys["node2"] == keys["node3"] {
		t.Fatalf("keys %q", keys)
	}
	// Boot data, as the node fetches it (wget --header=X-Bootaction-Key).
	for _, tc := range []struct {
		name, path string
		key        string
		code       int
		body       string
		wwwAuth    string
	}{
		{"no key", "/api/v1.0/bootactions/nodes/node3/units", "", 401, `{"description":"No X-Bootaction-Key","title":"Unauthorized"}`, "Bootaction-Key"},
		{"another node's key", "/api/v1.0/bootactions/nodes/node3/units", keys["node2"], 403, `{"description":"Invalid X-Bootaction-Key","title":"Unauthorized"}`, ""},
		{"a node without a deployment", "/api/v1.0/bootactions/nodes/node1/units", keys["node2"], 404, "", ""},
		{"an unknown kind", "/api/v1.0/bootactions/nodes/node3/disks", keys["node3"], 404, `{"title":"404 Not Found"}`, ""},
	} {
		code, hdr, body := h.call(t, http.MethodGet, tc.path, "", "X-Bootaction-Key", tc.key)
		if code != tc.code || (tc.body != "" && body != tc.body) || hdr.Get("WWW-Authenticate") != tc.wwwAuth {
			t.Errorf("%s: %d %s (WWW-Authenticate %q)", tc.name, code, body, hdr.Get("WWW-Authenticate"))
		}
	}
	for _, path := range []string{"/api/v1.0/bootactions/nodes/node3/", "/api/v1.0/bootdata/node3/"} {
		code, hdr, units := h.call(t, http.MethodGet, path+"units", "", "X-Bootaction-Key", keys["node3"])
		u := untar(t, []byte(units))
		if code != 200 || hdr.Get("Content-Type") != "application/gzip" || hdr.Get("Content-Disposition") != `attachment; filename="node3-unit.tar.gz"` ||
			!strings.Contains(u["/etc/systemd/system/hello.service"], "ExecStart=/usr/local/bin/hello.sh") || len(u) != 2 {
			t.Errorf("GET %sunits: %d %v %v", path, code, hdr, u)
		}
		code, _, files := h.call(t, http.MethodGet, path+"files", "", "X-Bootaction-Key", keys["node3"])
		f := untar(t, []byte(files))
		if code != 200 || f["/usr/local/bin/hello.sh"] != "#!/bin/sh\necho hello from node3" || f["/usr/local/bin/hello.sh mode"] != "755" ||
			!strings.HasPrefix(f["/etc/slipway-report"], "http://10.88.0.1/api/v1.0/bootactions/") || !strings.HasSuffix(f["/etc/slipway-report"], " "+keys["node3"]) {
			t.Errorf("GET %sfiles: %d %v", path, code, f)
		}
	}
	actions := map[string]map[string]string{} // node → action name → id
	for _, n := range []string{"node2", "node3"} {
		list, err := h.dep.BootActions(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		actions[n] = map[string]string{}
		for _, a := range list {
			actions[n][a.Name] = a.ID
			if len(a.ID) != 26 {
				t.Errorf("action id %q is not a ULID", a.ID)
			}
		}
	}
	hello3, report3, hello2 := actions["node3"]["hello"], actions["node3"]["report"], actions["node2"]["hello"]
	post := func(path, key, body string) (int, string) {
		code, _, resp := h.call(t, http.MethodPost, path, body, "X-Bootaction-Key", key, "Content-Type", "application/json")
		return code, resp
	}
	for _, tc := range []struct {
		name, path, key, body string
		code                  int
		want                  string
	}{
		{"baclient's start message, trailing slash", "/api/v1.0/bootactions/" + hello3 + "/", keys["node3"], `{"details":[{"message":"Bootaction starting execution.","error":false}]}`, 200, `"action_status":"incomplete"`},
		{"extra keys in a detail (a 500 upstream)", "/api/v1.0/bootactions/" + hello3, keys["node3"], `{"details":[{"message":"step 2","error":false,"step":2}]}`, 200, `"action_name":"hello"`},
		{"the seed's path", "/api/v1.0/bootaction/" + hello3, keys["node3"], `{"details":[{"message":"step 3","error":false}]}`, 200, `"node_name":"node3"`},
		{"a status Drydock does not know", "/api/v1.0/bootactions/" + hello3 + "/", keys["node3"], `{"status":"done"}`, 400, `{"description":"Error processing body.","title":"400 Bad Request"}`},
		{"a field Drydock does not know", "/api/v1.0/bootactions/" + hello3 + "/", keys["node3"], `{"state":"success"}`, 400, `{"description":"Error processing body.","title":"400 Bad Request"}`},
		{"a detail without error", "/api/v1.0/bootactions/" + hello3 + "/", keys["node3"], `{"details":[{"message":"x"}]}`, 400, `"title":"400 Bad Request"`},
		{"no key", "/api/v1.0/bootactions/" + hello3 + "/", "", `{"status":"success"}`, 401, `{"description":"No X-Bootaction-Key","title":"Unauthorized"}`},
		{"another node's key", "/api/v1.0/bootactions/" + hello3 + "/", keys["node2"], `{"status":"success"}`, 403, `{"description":"Invalid X-Bootaction-Key","title":"Unauthorized"}`},
		{"an unknown action", "/api/v1.0/bootactions/01ARZ3NDEKTSV4RRFFQ69G5FAV/", keys["node3"], `{"status":"success"}`, 404, `{"title":"404 Not Found"}`},
		{"the final status, capitalised", "/api/v1.0/bootactions/" + hello3 + "/", keys["node3"], `{"status":"Success","details":[{"message":"done","error":false}]}`, 200, `"action_status":"success"`},
		{"after the final status", "/api/v1.0/bootactions/" + hello3 + "/", keys["node3"], `{"details":[{"message":"late","error":false}]}`, 409, `{"message":"Action ` + hello3 + ` status finalized, not available for update.","retry":false,"type":"error"}`},
		{"an action that does not signal", "/api/v1.0/bootactions/" + report3 + "/", keys["node3"], `{"status":"success"}`, 409, `status finalized`},
		{"node2's action fails", "/api/v1.0/bootactions/" + hello2 + "/", keys["node2"], `{"status":"failure","details":[{"message":"hello.sh exited 1","error":true}]}`, 200, `"action_status":"failure"`},
	} {
		if code, body := post(tc.path, tc.key, tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s; want %d with %s", tc.name, code, body, tc.code, tc.want)
		}
	}
	h.machines.setReady("node2")
	h.machines.setReady("node3")
	got, raw := h.waitTask(t, d.TaskID, "?subtaskerrors=true")
	if got.Result.Status != "partial_success" || strings.Join(got.Result.Successes, ",") != "node3" || strings.Join(got.Result.Failures, ",") != "node2" ||
		len(got.SubtaskErrors) != 1 || !strings.Contains(raw, "boot action hello: failure: hello.sh exited 1") {
		t.Errorf("deploy_nodes: %s", raw)
	}
	if strings.Join(h.bmcs.provisions, ",") != "node2,node3" && strings.Join(h.bmcs.provisions, ",") != "node3,node2" {
		t.Errorf("provisioned %v", h.bmcs.provisions)
	}
	code, _, bd := h.asAdmin(t, http.MethodGet, "/api/v1.0/tasks/"+got.Subtasks[0]+"/builddata", "")
	if code != 200 || !strings.Contains(bd, `"generator":"deploy:hello"`) {
		t.Errorf("subtask build data: %d %s", code, bd)
	}
	// A node posts a hardware report with its key.
	code, _, _ = h.call(t, http.MethodPost, "/api/v1.0/bootactions/nodes/node3/builddata?generator=lshw", "<list><node id='node3'/></list>",
		"X-Bootaction-Key", keys["node3"], "Content-Type", "text/xml")
	_, _, latest := h.asAdmin(t, http.MethodGet, "/api/v1.0/nodes/node3/builddata?latest=true", "")
	if code != 201 || !strings.Contains(latest, `"generator":"lshw","data_format":"text/xml"`) && !strings.Contains(latest, `"data_format":"text/xml"`) {
		t.Errorf("hardware report: %d, build data %s", code, latest)
	}
}
