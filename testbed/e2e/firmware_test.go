//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/bmcemu"
	"github.com/slipway/slipway/testbed/testkit"
)

// counted is an emulated BMC on loopback that counts the firmware updates
// it was asked for.
type counted struct {
	emu       *bmcemu.Emulator
	url       string
	submitted atomic.Int64
}

func countedBMC(t *testing.T, cfg bmcemu.Config) *counted {
	t.Helper()
	emu, err := bmcemu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &counted{emu: emu}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "UpdateService.SimpleUpdate") {
			c.submitted.Add(1)
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); emu.Close() })
	c.url = srv.URL
	return c
}

// loopbackBMCConfig is a config serving on loopback on free ports, DHCP
// off, BMCs polled every second, with rest (YAML) appended; and its HTTP
// base URL. The kill -9 tests of firmware batches share it.
func loopbackBMCConfig(t *testing.T, rest string) (string, string) {
	t.Helper()
	tcp := testkit.FreePorts(t, "tcp", 2)
	httpPort := tcp[0]
	return fmt.Sprintf(`
lan: {interface: lo, address: 127.0.0.1/8}
data_dir: DATA_DIR
http: {port: %d}
https: {port: 0}
tftp: {root: TFTP_ROOT, port: %d}
mqtt: {port: %d, websocket_port: 0}
dhcp: {mode: "off"}
netboot: {router_advertisements: false}
bmc: {poll_interval: 1s}
`, httpPort, testkit.FreePort(t, "udp"), tcp[1]) + rest, fmt.Sprintf("http://127.0.0.1:%d", httpPort)
}

// kill -9 while a BMC flashes new firmware, then start again: the update
// resumes at its stored step, follows the task the BMC is running instead
// of starting another, restarts the BMC to run the new firmware, and
// verifies the version. The image goes up with curl, as an operator would.
func TestKill9DuringAFirmwareUpdate(t *testing.T) {
	requireCommands(t, map[string]string{"curl": "curl"})
	bmc := countedBMC(t, bmcemu.Config{Username: "root", Password: "calvin", HostMACs: []string{"52:54:00:f1:00:01"},
		UpdateDuration: 4 * time.Second, PowerDelay: 500 * time.Millisecond, BMCUpdateNeedsReset: true})
	emu, submitted := bmc.emu, &bmc.submitted

	dir := t.TempDir()
	pwFile := filepath.Join(dir, "bmc.password")
	if err := os.WriteFile(pwFile, []byte("calvin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("admin-pw"), bcrypt.MinCost)
	cfg, url := loopbackBMCConfig(t, fmt.Sprintf(`bmc_credentials:
  lab: {username: root, password_file: %s}
users:
  - {name: admin, role: admin, password_hash: '%s'}
`+e2eUserYAML+`machines:
  - id: m1
    macs: ['52:54:00:f1:00:01']
    bmc: {endpoint: '%s', credentials: lab}
`, pwFile, hash, bmc.url))
	a := startServe(t, testbed.Host{}, cfg)
	a.url = url
	waitReady(t, a)

	image := filepath.Join(dir, "bmc-9.9.9.bin")
	body := []byte("FIRMWARE BMC 9.9.9\n" + strings.Repeat("firmware bytes ", 1<<16))
	if err := os.WriteFile(image, body, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	out, err := testbed.Host{}.Run(context.Background(), "curl", "-fsS", "-u", "admin:admin-pw", "--data-binary", "@"+image,
		a.url+"/api/v1/firmware?component=BMC&version=9.9.9&filename=bmc-9.9.9.bin&sha256="+digest)
	if err != nil || !strings.Contains(out, digest) {
		t.Fatalf("upload with curl: %v\n%s", err, out)
	}
	out, err = testbed.Host{}.Run(context.Background(), "curl", "-fsS", "-u", "admin:admin-pw", "-d", `{"image_id":"`+digest+`"}`,
		a.url+"/api/v1/machines/m1/firmware")
	var task struct {
		ID       string `json:"task_id"`
		Status   string `json:"status"`
		Step     string `json:"step"`
		Progress int    `json:"progress"`
		Message  string `json:"message"`
	}
	if err != nil || json.Unmarshal([]byte(out), &task) != nil || task.ID == "" {
		t.Fatalf("start the update: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for task.Step != "waitforupdatecompletion" || task.Progress <= 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the update never got to flashing: %+v", task)
		}
		time.Sleep(100 * time.Millisecond)
		getJSON(t, a.url+"/api/v1/tasks/"+task.ID, &task)
	}
	a.cmd.Process.Kill() // SIGKILL while the BMC flashes
	<-a.done
	t.Logf("killed at %s, %d%%: %s", task.Step, task.Progress, task.Message)

	a.launch(t)
	waitReady(t, a)
	deadline = time.Now().Add(time.Minute)
	for task.Status != "succeeded" {
		if time.Now().After(deadline) || task.Status == "failed" {
			t.Fatalf("after the restart: %+v\n%s", task, a.logs())
		}
		time.Sleep(200 * time.Millisecond)
		getJSON(t, a.url+"/api/v1/tasks/"+task.ID, &task)
	}
	if v := emu.FirmwareVersion("BMC"); v != "9.9.9" {
		t.Errorf("the BMC runs %s", v)
	}
	if n := submitted.Load(); n != 1 {
		t.Errorf("%d updates submitted to the BMC, want 1", n)
	}
	var detail struct {
		History []struct {
			To    string          `json:"to"`
			State json.RawMessage `json:"managed_host_state"`
		} `json:"history"`
	}
	getJSON(t, a.url+"/api/v1/machines/m1", &detail)
	var story []string
	for _, h := range detail.History {
		story = append(story, string(h.State))
	}
	joined := strings.Join(story, "\n")
	for _, want := range []string{`"checkingfirmware"`, `"waitingforfirmwareupgrade"`, `"resetfornewfirmware"`, `"newfirmwarereportedwait"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("the machine's history lacks %s:\n%s", want, joined)
		}
	}
	if last := detail.History[len(detail.History)-1].To; last != "created" {
		t.Errorf("after the update the machine is %s, want created (it was never installed)", last)
	}
	a.stop(t)
}
