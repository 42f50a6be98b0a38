//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/bmcemu"
	"github.com/slipway/slipway/testbed/testkit"
	"github.com/slipway/slipway/wiring"
)

// kill -9 while a USM deploy reprovisions a host: the host's BMC has been
// told to netboot it, and its power cycle is still under way. After the
// restart the host's deploy resumes waiting (it is not reprovisioned a
// second time), the host netboots the release against the new process,
// onboards, and is deployed. The release goes up with curl as multipart,
// the way StarlingX's CLI sends it.
func TestKill9DuringAUSMHostDeploy(t *testing.T) {
	requireCommands(t, map[string]string{"curl": "curl", "gpg": "gnupg"})
	signer := testkit.NewSigner(t, "e2e-releases")
	tcp, udp := testkit.FreePorts(t, "tcp", 3), testkit.FreePorts(t, "udp", 2)
	ports := wiring.DemoPorts{HTTP: tcp[0], MQTT: tcp[1], USM: tcp[2], TFTP: udp[0], DHCP: udp[1]}
	var boots atomic.Int32
	like := testbed.Node{Onboard: true, DHCP: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports.DHCP}, TFTPPort: ports.TFTP,
		Timeout: 3 * time.Second}
	fleet, err := testbed.StartBMCFleetWith(t.Context(), 1, like, func(_ int, r testbed.BootReport, err error) {
		boots.Add(1)
		t.Logf("boot %d: kernel %d bytes, onboarded %v, %v", boots.Load(), r.KernelBytes, r.Onboarded, err)
	}, func(_ int, c *bmcemu.Config) { c.PowerDelay = 3 * time.Second })
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	dir := t.TempDir()
	machines, creds, err := fleet.Inventory(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := wiring.DemoConfig("/DATA_DIR", ports, wiring.DemoInventory{Machines: machines, BMCCredentials: creds,
		Users: []config.User{{Name: e2eUser, Role: "admin", PasswordHash: "$2a$04$zvBe6ezz//8Hlf.cFF4R0.xBhDtXDRcjmjaxsR8eJ8gvA8PrzRqMG"}}}, "console=ttyS0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.USM.TrustedKeys = []string{signer.PublicKey}
	cfg.Netboot.RouterAdvertisements = false
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// prepareServe puts its data directory where the placeholder is.
	a := prepareServe(t, testbed.Host{}, strings.ReplaceAll(string(text), "/DATA_DIR", "DATA_DIR"), func(data string) {
		if err := testbed.SeedDemoFiles(filepath.Join(data, "tftp"), filepath.Join(data, "assets"), filepath.Join(data, "templates")); err != nil {
			t.Fatal(err)
		}
	})
	a.url = fmt.Sprintf("http://127.0.0.1:%d", ports.HTTP)
	usm := fmt.Sprintf("http://127.0.0.1:%d/v1", ports.USM)
	waitReady(t, a)
	host := machines[0]

	curl := func(args ...string) string {
		t.Helper()
		out, err := testbed.Host{}.Run(context.Background(), "curl", append([]string{"-sS"}, args...)...)
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return out
	}
	var login struct{ Token string }
	if err := json.Unmarshal([]byte(curl("-d", `{"username":"`+e2eUser+`","password":"`+e2ePassword+`"}`, a.url+"/api/v1/login")), &login); err != nil {
		t.Fatal(err)
	}
	auth := "X-Auth-Token: " + login.Token
	// The host is onboarded first (a deploy takes ready hosts).
	testkit.WaitForWithin(t, 20*time.Second, "the BMC polled", func() bool {
		return strings.Contains(curl("-u", e2eUser+":"+e2ePassword, "-X", "POST", "-d", "{}", a.url+"/api/v1/machines/"+host.ID+"/provision"), `"boot_target"`)
	})
	machineState := func() string {
		var m struct {
			Machine struct {
				State struct{ State string } `json:"managed_host_state"`
			} `json:"machine"`
		}
		_ = json.Unmarshal([]byte(curl("-u", e2eUser+":"+e2ePassword, a.url+"/api/v1/machines/"+host.ID)), &m)
		return m.Machine.State.State
	}
	testkit.WaitForWithin(t, time.Minute, host.ID+" ready", func() bool { return machineState() == "ready" })

	archive := testkit.ReleaseArchive(t, dir, "slipway-os-3.0.0.patch", testkit.ReleaseFiles("slipway-os-3.0.0", "3.0.0"))
	sig := signer.Sign(t, archive, filepath.Join(dir, "slipway-os-3.0.0.sig"))
	if out := curl("-H", auth, "-F", archive+"=@"+archive, "-F", sig+"=@"+sig, usm+"/release"); !strings.Contains(out, `"sw_release":"3.0.0"`) {
		t.Fatalf("upload: %s", out)
	}
	if out := curl("-H", auth, "-H", "Content-Type: application/json", "-d", `{}`, usm+"/deploy/slipway-os-3.0.0/start"); !strings.Contains(out, "is now starting") {
		t.Fatalf("start: %s", out)
	}
	hostState := func() string {
		var hosts []struct {
			HostState string `json:"host_state"`
		}
		_ = json.Unmarshal([]byte(curl("-H", auth, usm+"/deploy_host")), &hosts)
		if len(hosts) != 1 {
			return ""
		}
		return hosts[0].HostState
	}
	testkit.WaitForWithin(t, 20*time.Second, "deploy-start-done", func() bool { return strings.Contains(curl("-H", auth, usm+"/deploy"), `"state":"start-done"`) })
	curl("-X", "POST", "-H", auth, usm+"/deploy_host/"+host.Hostname)
	// Killed once the BMC was told to netboot the host: the power cycle
	// (3 s a step) is still under way.
	testkit.WaitForWithin(t, 10*time.Second, "the host reprovisioned", func() bool { return machineState() == "hostinit" })
	a.cmd.Process.Kill()
	<-a.done
	if n := boots.Load(); n != 1 {
		t.Fatalf("the host booted %d times before the kill: the kill came too late to prove anything", n)
	}
	a.launch(t)
	waitReady(t, a)
	testkit.WaitForWithin(t, 90*time.Second, "the host deployed", func() bool { return hostState() == "deployed" })
	if n := boots.Load(); n != 2 {
		t.Errorf("the host netbooted %d times, want 2 (onboarding, then the release once)", n)
	}
	if out := curl("-u", e2eUser+":"+e2ePassword, a.url+"/api/v1/machines/"+host.ID); !strings.Contains(out, `"release_id":"slipway-os-3.0.0"`) {
		t.Errorf("the host after the deploy: %s", out)
	}
	a.stop(t)
}
