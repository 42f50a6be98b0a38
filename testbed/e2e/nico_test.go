//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/bmcemu"
)

// kill -9 in the middle of a NICo batch of two trays paced one at a time:
// after the restart the first tray's update follows the flash its BMC is
// running, the second starts only then, and each BMC is flashed once.
func TestKill9DuringANICoBatch(t *testing.T) {
	requireCommands(t, map[string]string{"curl": "curl"})
	const site = "6f1c2e8a-4b0d-4c47-9d1e-2a7f3c5b8e90"
	var bmcs [2]*counted
	for i := range bmcs {
		bmcs[i] = countedBMC(t, bmcemu.Config{Username: "root", Password: "calvin", HostMACs: []string{fmt.Sprintf("52:54:00:f2:00:0%d", i+1)},
			UpdateDuration: 4 * time.Second, PowerDelay: 300 * time.Millisecond})
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "bmc.password")
	if err := os.WriteFile(pwFile, []byte("calvin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, url := loopbackBMCConfig(t, fmt.Sprintf(`nico: {site_id: %s, parallel_updates: 1}
bmc_credentials:
  lab: {username: root, password_file: %s}
users:
`+e2eUserYAML+`machines:
  - {id: t1, macs: ['52:54:00:f2:00:01'], rack: {id: r1, name: Rack 1, tray: 1, tray_type: compute}, bmc: {endpoint: '%s', credentials: lab}}
  - {id: t2, macs: ['52:54:00:f2:00:02'], rack: {id: r1, name: Rack 1, tray: 2, tray_type: compute}, bmc: {endpoint: '%s', credentials: lab}}
`, site, pwFile, bmcs[0].url, bmcs[1].url))
	a := startServe(t, testbed.Host{}, cfg)
	a.url = url
	waitReady(t, a)

	curl := func(args ...string) string {
		t.Helper()
		out, err := testbed.Host{}.Run(context.Background(), "curl", append([]string{"-fsS"}, args...)...)
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return out
	}
	image := filepath.Join(dir, "bmc.bin")
	body := []byte("FIRMWARE BMC 9.9.9\n" + strings.Repeat("firmware bytes ", 1<<12))
	if err := os.WriteFile(image, body, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	curl("-u", e2eUser+":"+e2ePassword, "--data-binary", "@"+image, a.url+"/api/v1/firmware?component=BMC&version=9.9.9&sha256="+hex.EncodeToString(sum[:]))
	var login struct{ Token string }
	if err := json.Unmarshal([]byte(curl("-d", `{"username":"`+e2eUser+`","password":"`+e2ePassword+`"}`, a.url+"/api/v1/login")), &login); err != nil {
		t.Fatal(err)
	}
	// The BMCs must have been polled (their firmware inventory read).
	var patch struct {
		TaskIDs []string `json:"taskIds"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(patch.TaskIDs) == 0 {
		out, _ := testbed.Host{}.Run(context.Background(), "curl", "-sS", "-X", "PATCH", "-H", "Authorization: Bearer "+login.Token,
			"-H", "Content-Type: application/json", "-d", `{"siteId":"`+site+`","filter":{"rackId":"r1"},"targets":["bmc"],"version":"9.9.9","overrideReadinessCheck":true}`,
			a.url+"/v2/org/acme/nico/tray/firmware")
		_ = json.Unmarshal([]byte(out), &patch)
		if time.Now().After(deadline) {
			t.Fatalf("PATCH: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(patch.TaskIDs) != 2 {
		t.Fatalf("task ids %v", patch.TaskIDs)
	}
	type taskJSON struct {
		Status   string `json:"status"`
		Step     string `json:"step"`
		Progress int    `json:"progress"`
		Message  string `json:"message"`
	}
	// The two trays are of one group: either may take the one turn.
	var tasks [2]taskJSON
	flashing := -1
	for deadline = time.Now().Add(30 * time.Second); flashing < 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no tray got to flashing: %+v", tasks)
		}
		for i, id := range patch.TaskIDs {
			getJSON(t, a.url+"/api/v1/tasks/"+id, &tasks[i])
			if tasks[i].Step == "waitforupdatecompletion" && tasks[i].Progress > 20 {
				flashing = i
			}
		}
	}
	first, other := tasks[flashing], 1-flashing
	second := tasks[other]
	getJSON(t, a.url+"/api/v1/tasks/"+patch.TaskIDs[other], &second)
	if bmcs[other].submitted.Load() != 0 || !strings.Contains(second.Message, "waiting for a turn") {
		t.Fatalf("tray %d did not wait its turn: %d submissions, %+v", other+1, bmcs[other].submitted.Load(), second)
	}
	a.cmd.Process.Kill() // SIGKILL while the first BMC flashes
	<-a.done
	t.Logf("killed with the first tray at %s %d%%, the second %q", first.Step, first.Progress, second.Message)

	a.launch(t)
	waitReady(t, a)
	for i, id := range patch.TaskIDs {
		var task taskJSON
		for deadline = time.Now().Add(time.Minute); task.Status != "succeeded"; time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) || task.Status == "failed" {
				t.Fatalf("tray %d after the restart: %+v\n%s", i+1, task, a.logs())
			}
			getJSON(t, a.url+"/api/v1/tasks/"+id, &task)
		}
	}
	for i, b := range bmcs {
		if v := b.emu.FirmwareVersion("BMC"); v != "9.9.9" || b.submitted.Load() != 1 {
			t.Errorf("tray %d's BMC runs %s after %d submissions, want 9.9.9 after 1", i+1, v, b.submitted.Load())
		}
	}
	a.stop(t)
}
