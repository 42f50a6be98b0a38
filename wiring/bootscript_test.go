package wiring

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/slipway/slipway/netboot/cloudinit"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// The boot action script Slipway's cloud-init gives a deploying node is
// run for real, by sh with Debian's curl and tar, against the running
// appliance: it fetches the node's boot data with its key, unpacks it with
// each asset's mode, enables and starts each action's units (systemctl is
// a stand-in that fails one unit), and reports each action, so that the
// good action ends success and the one whose unit failed, failure.
func TestBootActionScriptRunsOnANode(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			testkit.MissingPeer(t, "%s is missing: install Debian's %s", tool, map[string]string{"sh": "dash", "curl": "curl", "tar": "tar"}[tool])
		}
	}
	root := t.TempDir() // where the node's "filesystem" is: assets are absolute paths under it
	design := `---
schema: drydock/BaremetalNode/v1
metadata: {name: node1}
data:
  oob: {type: manual}
  metadata: {boot_mac: '52:54:00:aa:00:01'}
---
schema: drydock/BootAction/v1
metadata: {name: hello}
data:
  assets:
    - {path: ` + root + `/usr/local/bin/hello.sh, type: file, permissions: '750', data: "echo hello from {{ node.hostname }}", data_pipeline: [template]}
    - {path: ` + root + `/etc/systemd/system/hello.service, type: unit, data: "[Service]\nExecStart=` + root + `/usr/local/bin/hello.sh\n"}
---
schema: drydock/BootAction/v1
metadata: {name: broken}
data:
  assets:
    - {path: ` + root + `/etc/systemd/system/broken.service, type: unit, data: "[Service]\nExecStart=/bin/false\n"}
`
	cfg := testConfigWith(t, t.TempDir(), DemoInventory{})
	if err := testbed.SeedDemoFiles(cfg.TFTPRoot(), cfg.AssetsDir(), cfg.TemplatesDir()); err != nil {
		t.Fatal(err)
	}
	urls, stop := runUntilReady(t, cfg)
	t.Cleanup(func() { _ = stop() })
	if code, body := testkit.Request(t, http.MethodPut, urls.HTTP+"/api/v1/designs/one", testUser, testPassword, design); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, urls.HTTP+"/api/v1.0/tasks", strings.NewReader(`{"action":"deploy_nodes","design_ref":"slipway:one"}`))
	req.Header.Set("X-Auth-Token", loginToken(t, urls.HTTP))
	req.Header.Set("Content-Type", "application/json")
	if code, body := testkit.Do(t, req); code != 201 {
		t.Fatalf("deploy_nodes: %d %s", code, body)
	}
	// The node has no BMC: its deploy waits for it to netboot, and its
	// cloud-init carries its boot actions from then on.
	var userData string
	testkit.WaitFor(t, "the node's cloud-init to carry its boot actions", func() bool {
		_, userData = testkit.Request(t, http.MethodGet, urls.HTTP+"/cloud-init/user-data?mac=52:54:00:aa:00:01", "", "", "")
		return strings.Contains(userData, cloudinit.ScriptFile)
	})
	if err := cloudinit.CheckUserData([]byte(userData)); err != nil {
		t.Fatalf("user-data: %v\n%s", err, userData)
	}
	var doc struct {
		WriteFiles []struct{ Path, Permissions, Content string } `yaml:"write_files"`
		Runcmd     []any                                         `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal([]byte(userData), &doc); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range doc.WriteFiles {
		files[f.Path] = f.Content
	}
	if last, ok := doc.Runcmd[len(doc.Runcmd)-1].([]any); !ok || len(last) != 1 || last[0] != cloudinit.ScriptFile {
		t.Errorf("runcmd does not end with the script: %v", doc.Runcmd)
	}
	// The same script stands alone for installers without cloud-init, its
	// key in it; a machine that is not deploying has none.
	if code, body := testkit.Request(t, http.MethodGet, urls.HTTP+"/cloud-init/bootactions.sh?mac=52:54:00:aa:00:01", "", "", ""); code != 200 ||
		!strings.Contains(body, "key='"+strings.TrimSpace(files[cloudinit.KeyFile])+"'") {
		t.Errorf("standalone script: %d %s", code, body)
	}
	if code, body := testkit.Request(t, http.MethodGet, urls.HTTP+"/cloud-init/bootactions.sh?mac=52:54:00:aa:00:99", "", "", ""); code != 404 {
		t.Errorf("a stranger's script: %d %s", code, body)
	}
	dir := t.TempDir()
	keyFile, script, log := filepath.Join(dir, "key"), filepath.Join(dir, "bootactions.sh"), filepath.Join(dir, "systemctl.log")
	bin := filepath.Join(dir, "bin")
	fakeSystemctl := "#!/bin/sh\necho \"$@\" >> " + log + "\n[ \"$1 $2\" = \"start broken.service\" ] && exit 1\nexit 0\n"
	for path, content := range map[string]string{keyFile: files[cloudinit.KeyFile], script: files[cloudinit.ScriptFile], filepath.Join(bin, "systemctl"): fakeSystemctl} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := exec.CommandContext(ctx, "sh", script)
	run.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "SLIPWAY_BOOTACTION_KEY_FILE="+keyFile, "SLIPWAY_BOOTACTION_DIR="+filepath.Join(dir, "work"))
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("the script: %v\n%s", err, out)
	}
	hello, err := os.ReadFile(root + "/usr/local/bin/hello.sh")
	if st, _ := os.Stat(root + "/usr/local/bin/hello.sh"); err != nil || string(hello) != "echo hello from node1" || st.Mode().Perm() != 0o750 {
		t.Errorf("hello.sh: %q %v", hello, err)
	}
	calls, _ := os.ReadFile(log)
	for _, want := range []string{"daemon-reload", "enable hello.service", "start hello.service", "enable broken.service", "start broken.service"} {
		if !strings.Contains(string(calls), want+"\n") {
			t.Errorf("systemctl was not called with %q:\n%s", want, calls)
		}
	}
	_, actions := testkit.Request(t, http.MethodGet, urls.HTTP+"/api/v1/machines/node1/bootactions", testUser, testPassword, "")
	var got struct {
		BootActions []struct {
			Name, Status string
			Details      []struct{ Message string }
		} `json:"boot_actions"`
	}
	_ = json.Unmarshal([]byte(actions), &got)
	status := map[string]string{}
	for _, a := range got.BootActions {
		status[a.Name] = a.Status
		if a.Name == "broken" && (len(a.Details) != 1 || a.Details[0].Message != "boot action broken: unit broken.service failed to start") {
			t.Errorf("broken's report: %+v", a.Details)
		}
	}
	if status["hello"] != "success" || status["broken"] != "failure" {
		t.Errorf("reported: %s", actions)
	}
}
