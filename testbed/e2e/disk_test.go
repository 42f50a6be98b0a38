//go:build e2e

package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// mountTmpfs mounts a tmpfs of size at a new directory, with options.
func mountTmpfs(t *testing.T, size string, options ...string) string {
	t.Helper()
	dir := t.TempDir()
	opts := strings.Join(append([]string{"size=" + size}, options...), ",")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// loopbackConfig is an appliance on loopback with its data in dataDir, on
// free HTTP and MQTT ports.
func loopbackConfig(t *testing.T, dataDir string) (config string, httpPort, mqttPort int) {
	tcp := testkit.FreePorts(t, "tcp", 2)
	httpPort, mqttPort = tcp[0], tcp[1]
	return fmt.Sprintf(`
lan: {interface: lo, address: 127.0.0.1/8}
data_dir: %s
log: {level: warn}
http: {port: %d}
https: {port: 0}
tftp: {root: TFTP_ROOT, port: %d}
mqtt: {port: %d, websocket_port: 0, users: [{name: e2e, password_hash: '`+e2ePasswordHash+`', acl: [{topic: "e2e/#", access: readwrite}]}]}
dhcp: {mode: "off"}
netboot: {router_advertisements: false}
discovery: {doors: [dhcp, boot, heartbeat]}
users:
`+e2eUserYAML, dataDir, httpPort, testkit.FreePort(t, "udp"), mqttPort), httpPort, mqttPort
}

// A data directory on a read-only disk stops the start with a message that
// says so; a disk that fills up while serving answers each write with 507
// and what to do, loses nothing acknowledged, and serves again once there
// is room, with the store intact.
func TestFullAndReadOnlyDisks(t *testing.T) {
	t.Run("read-only", func(t *testing.T) {
		dir := mountTmpfs(t, "4m", "ro")
		config, _, _ := loopbackConfig(t, dir)
		a := startServe(t, testbed.Host{}, config)
		select {
		case <-a.done:
		case <-time.After(20 * time.Second):
			t.Fatal("slipway serves on a read-only data directory")
		}
		t.Logf("slipway says: %s", strings.TrimSpace(a.logs()))
		if logs := a.logs(); !strings.Contains(logs, "read-only") {
			t.Fatalf("the start failed without saying the data directory is read-only:\n%s", logs)
		}
	})
	t.Run("full", func(t *testing.T) {
		dir := mountTmpfs(t, "24m")
		config, httpPort, _ := loopbackConfig(t, dir)
		a := startServe(t, testbed.Host{}, config)
		a.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
		waitReady(t, a)
		// Fill the disk but for a little.
		filler := filepath.Join(dir, "filler")
		exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=1M", "count=64").Run()
		os.Truncate(filler, mustSize(t, filler)-512<<10)
		acked, full := 0, ""
		for i := 0; i < 2000 && full == ""; i++ {
			body := fmt.Sprintf(`{"mac":"02:ee:00:00:%02x:%02x","stage":"install","phase":"running","detail":%q}`, i>>8, i&0xff, strings.Repeat("x", 3000))
			switch code, answer := testkit.Request(t, "POST", a.url+"/heartbeat", "", "", body); code {
			case 200:
				acked++
			case 507:
				full = answer
			default:
				t.Fatalf("heartbeat %d on a filling disk: %d %s", i, code, answer)
			}
		}
		if !strings.Contains(full, "full") || !strings.Contains(full, "free space") {
			t.Fatalf("no clear answer once the disk was full (%d acknowledged): %q", acked, full)
		}
		if code, _ := testkit.Request(t, "GET", a.url+"/readyz", "", "", ""); code != 200 {
			t.Errorf("a full disk took the appliance down: /readyz %d", code)
		}
		os.Remove(filler)
		if code, answer := testkit.Request(t, "POST", a.url+"/heartbeat", "", "", `{"mac":"02:ee:00:00:ff:ff","stage":"install","phase":"running"}`); code != 200 {
			t.Fatalf("once there is room again: %d %s", code, answer)
		}
		a.stop(t)
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "slipway.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var integrity string
		var kept int
		db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity)
		db.QueryRow(`SELECT count(*) FROM stage_events WHERE mac LIKE '02:ee:00:00:%' AND mac != '02:ee:00:00:ff:ff'`).Scan(&kept)
		if integrity != "ok" || kept != acked {
			t.Fatalf("after the disk filled: integrity %q, %d of %d acknowledged heartbeats kept", integrity, kept, acked)
		}
		t.Logf("%d heartbeats acknowledged before the disk filled, all kept; then: %s", acked, strings.TrimSpace(full))
		a.launch(t)
		waitReady(t, a)
	})
}

func mustSize(t *testing.T, path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}
