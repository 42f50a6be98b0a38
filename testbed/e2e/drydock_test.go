//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
)

// TestQEMUDeployASiteThroughDrydock: on the namespace LAN, a three-node
// site design is uploaded and validated through Drydock's API, and
// deploy_nodes run; three virtual machines (QEMU's iPXE ROM, real DHCP on
// the veth LAN) netboot the test image, which onboards and then runs its
// boot actions with busybox from the standalone script: every node writes
// its templated file; node3's second action starts a unit, and there is no
// systemd in the image, so it reports failure, node3 fails, and the task
// ends partial_success with per-node results and build data.
func TestQEMUDeployASiteThroughDrydock(t *testing.T) {
	img := bootImage(t)
	lan := newLAN(t, "10.88.0.1/24")
	a := serveBootImage(t, lan, img, qemuConfig)
	macs := []string{"52:54:00:e2:e0:21", "52:54:00:e2:e0:22", "52:54:00:e2:e0:23"}
	var design strings.Builder
	for i, mac := range macs {
		fmt.Fprintf(&design, "---\nschema: drydock/BaremetalNode/v1\nmetadata: {name: node%d}\ndata:\n  oob: {type: manual}\n  metadata: {rack: rack1, boot_mac: '%s'}\n", i+1, mac)
	}
	design.WriteString(`---
schema: drydock/BootAction/v1
metadata: {name: probe}
data:
  assets:
    - {path: ` + testbed.BootActionsProbe + `, type: file, permissions: '644', data: "deployed {{ node.hostname }}", data_pipeline: [template]}
---
schema: drydock/BootAction/v1
metadata: {name: service}
data:
  node_filter: {filter_set_type: union, filter_set: [{filter_type: union, node_names: [node3]}]}
  assets:
    - {path: /etc/systemd/system/e2e.service, type: unit, data: "[Service]\nExecStart=/bin/true\n"}
`)
	file := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(file, []byte(design.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	curl := func(args ...string) string {
		t.Helper()
		out, err := a.host.Run(t.Context(), "curl", append([]string{"-sS"}, args...)...)
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return out
	}
	if out := curl("-u", e2eUser+":"+e2ePassword, "-X", "PUT", "--data-binary", "@"+file, lanURL+"/api/v1/designs/site"); !strings.Contains(out, `"valid":true`) {
		t.Fatalf("upload: %s", out)
	}
	var login struct{ Token string }
	if err := json.Unmarshal([]byte(curl("-X", "POST", "-d", `{"username":"`+e2eUser+`","password":"`+e2ePassword+`"}`, lanURL+"/api/v1/login")), &login); err != nil {
		t.Fatal(err)
	}
	drydock := func(method, path, body string) string {
		t.Helper()
		return curl("-X", method, "-H", "X-Auth-Token: "+login.Token, "-H", "Content-Type: application/json", "-d", body, lanURL+"/api/v1.0"+path)
	}
	if out := drydock("POST", "/validatedesign", `{"href":"slipway:site"}`); !strings.Contains(out, `"status":"Success"`) {
		t.Fatalf("validatedesign: %s", out)
	}
	var created struct {
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(drydock("POST", "/tasks", `{"action":"deploy_nodes","design_ref":"slipway:site"}`)), &created); err != nil || created.TaskID == "" {
		t.Fatalf("deploy_nodes: %v", err)
	}
	for i, mac := range macs {
		vm := runQEMU(t, lan, a, mac, biosIPXE, testbed.Marker, "-boot", "n")
		line := vm.serial[strings.Index(vm.serial, testbed.BootActionsMarker):]
		line, _, _ = strings.Cut(line, "\n")
		if want := fmt.Sprintf("%s deployed node%d", testbed.BootActionsMarker, i+1); strings.TrimSpace(line) != want {
			t.Errorf("node%d: %q, want %q", i+1, line, want)
		}
		t.Logf("node%d: power-on → boot actions run %.1fs (QEMU TCG)", i+1, vm.markerAt.Seconds())
	}
	var task struct {
		Status string `json:"status"`
		Result struct {
			Status    string   `json:"status"`
			Successes []string `json:"successes"`
			Failures  []string `json:"failures"`
		} `json:"result"`
	}
	var raw string
	for deadline := time.Now().Add(60 * time.Second); task.Status != "complete"; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("deploy_nodes did not complete: %s", raw)
		}
		raw = drydock("GET", "/tasks/"+created.TaskID+"?subtaskerrors=true", "")
		_ = json.Unmarshal([]byte(raw), &task)
	}
	if task.Result.Status != "partial_success" || strings.Join(task.Result.Successes, ",") != "node1,node2" ||
		strings.Join(task.Result.Failures, ",") != "node3" || !strings.Contains(raw, "no systemctl to start e2e.service") {
		t.Errorf("deploy_nodes: %s", raw)
	}
	if out := drydock("GET", "/nodes/node1/builddata?latest=True", ""); !strings.Contains(out, `"generator":"dhcp"`) || !strings.Contains(out, `"generator":"heartbeats"`) {
		t.Errorf("node1's build data: %s", out)
	}
}
