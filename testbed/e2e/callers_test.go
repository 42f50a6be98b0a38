//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const callersConfig = lanBase + `
dhcp:
  mode: full
  range: {start: 10.88.0.100, end: 10.88.0.199}
profiles:
  debian: {kernel: debian/vmlinuz, cmdline: "console=ttyS0 slipway.token={{.Token}}"}
default_profile: debian
machines:
  - {id: r1-t1, macs: ["02:00:00:00:0a:01"]}
`

// The user-data hands the machine its node token, as an operator's
// template would for heartbeats from an installed system.
const tokenTemplate = `#cloud-config
hostname: {{.Hostname}}
write_files:
  - path: /etc/slipway-token
    content: "{{.Token}}"
`

// A host on the LAN cannot speak for a machine it is not: Debian's
// dhclient takes a lease for the machine's MAC, and from that address the
// machine's heartbeats, cloud-init, iPXE script and GRUB config (HTTP and
// tftp-hpa) are served; from another host on the LAN each is refused,
// counted and logged, and the machine's state does not move; with the
// machine's node token (from its own user-data) the other host is heard.
func TestNodeDoorsProveTheirCaller(t *testing.T) {
	requireCommands(t, map[string]string{"dhclient": "isc-dhcp-client", "curl": "curl", "tftp": "tftp-hpa"})
	lan := newLAN(t, "10.88.0.1/24")
	a := prepareServe(t, lan.Server, callersConfig, func(dataDir string) {
		os.MkdirAll(filepath.Join(dataDir, "templates"), 0o755)
		os.WriteFile(filepath.Join(dataDir, "templates", "debian.yaml"), []byte(tokenTemplate), 0o644)
	})
	waitReady(t, a)
	const mac = "02:00:00:00:0a:01"
	machine := newDHCPClient(t, lan, "node", mac)
	leased := machine.dhclient(t)["ip"]
	if out, err := machine.host.Run(context.Background(), "ip", "addr", "add", leased+"/24", "dev", "eth0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	before := machineState(t, a, "r1-t1") // its lease moved it on
	intruder, err := lan.AddHost(context.Background(), "intruder", "10.88.0.66/24")
	if err != nil {
		t.Fatal(err)
	}

	heartbeat := func(stage, phase, token string) string {
		return `{"mac":"` + mac + `","stage":"` + stage + `","phase":"` + phase + `","token":"` + token + `"}`
	}
	fetches := []struct {
		what string
		args []string
	}{
		{"heartbeat", []string{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
			"-d", heartbeat("boot", "started", ""), lanURL + "/heartbeat"}},
		{"user-data", []string{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", lanURL + "/cloud-init/user-data?mac=" + mac}},
		{"iPXE script", []string{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", lanURL + "/boot.ipxe?mac=" + mac}},
		{"GRUB config over HTTP", []string{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", lanURL + "/boot/grub/grub.cfg-01-02-00-00-00-0a-01"}},
	}
	for _, f := range fetches {
		if code, err := intruder.Run(context.Background(), f.args[0], f.args[1:]...); code != "403" {
			t.Errorf("another host's %s for the machine: %s %v, want 403", f.what, code, err)
		}
	}
	grub := filepath.Join(t.TempDir(), "grub.cfg")
	if out, _ := intruder.Run(context.Background(), "tftp", "10.88.0.1", "-c", "get", "grub/grub.cfg-01-02-00-00-00-0a-01", grub); !strings.Contains(out, "not this machine's file") {
		t.Errorf("another host's TFTP fetch of the machine's GRUB config: %q, want an access violation", out)
	}
	if state := machineState(t, a, "r1-t1"); state != before {
		t.Fatalf("refused heartbeats moved the machine from %s to %s", before, state)
	}

	// From its leased address the machine is served everything.
	for _, f := range fetches {
		if code, err := machine.host.Run(context.Background(), f.args[0], f.args[1:]...); code != "200" {
			t.Errorf("the machine's own %s: %s %v, want 200", f.what, code, err)
		}
	}
	out, err := machine.host.Run(context.Background(), "tftp", "10.88.0.1", "-c", "get", "grub/grub.cfg-01-02-00-00-00-0a-01", grub)
	if got, _ := os.ReadFile(grub); err != nil || !strings.Contains(string(got), "r1-t1") {
		t.Errorf("the machine's TFTP fetch of its GRUB config: %q %v, got %q", out, err, got)
	}
	script, err := machine.host.Run(context.Background(), "curl", "-fsS", lanURL+"/boot.ipxe?mac="+mac)
	userData, err2 := machine.host.Run(context.Background(), "curl", "-fsS", lanURL+"/cloud-init/user-data?mac="+mac)
	token := regexp.MustCompile(`content: "?([A-Za-z0-9_-]{20,})`).FindStringSubmatch(userData)
	if err != nil || err2 != nil || token == nil || !strings.Contains(script, "slipway.token="+token[1]) {
		t.Fatalf("the machine's token is not in its user-data and iPXE script alike (%v, %v):\n%s\n%s", err, err2, userData, script)
	}

	// With the token, another address is heard (an installed system with
	// an address of its own); a wrong token (its last character changed:
	// to "x", or to "y" when it already ends in "x") is not.
	wrong := token[1][:len(token[1])-1] + "x"
	if strings.HasSuffix(token[1], "x") {
		wrong = token[1][:len(token[1])-1] + "y"
	}
	if code, _ := intruder.Run(context.Background(), "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
		"-d", heartbeat("install", "running", wrong), lanURL+"/heartbeat"); code != "403" {
		t.Errorf("a wrong token: %s, want 403", code)
	}
	if code, err := intruder.Run(context.Background(), "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
		"-d", heartbeat("install", "running", token[1]), lanURL+"/heartbeat"); code != "200" {
		t.Errorf("the machine's token from another address: %s %v, want 200", code, err)
	}
	if state := machineState(t, a, "r1-t1"); state != "validation" {
		t.Errorf("the machine is %s after its own heartbeats, want validation", state)
	}
	metrics, err := lan.Server.Run(context.Background(), "curl", "-fsS", lanURL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^slipway_node_requests_refused_total (\d+)`).FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("no refusal counter in /metrics")
	}
	if n, _ := strconv.Atoi(m[1]); n < 6 {
		t.Errorf("%d refusals counted, want at least 6 (4 HTTP, TFTP, a wrong token)", n)
	}
	if !strings.Contains(a.logs(), "10.88.0.66 may not speak for "+mac) {
		t.Errorf("no refusal in the log naming the host and the MAC")
	}
}

// machineState is a machine's state label as the API reports it.
func machineState(t *testing.T, a *appliance, id string) string {
	t.Helper()
	out, err := a.host.Run(context.Background(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, lanURL+"/api/v1/machines/"+id)
	if err != nil {
		t.Fatalf("machine %s: %v %s", id, err, out)
	}
	var got struct {
		Machine struct {
			State struct {
				State string `json:"state"`
			} `json:"managed_host_state"`
		} `json:"machine"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Machine.State.State == "" {
		t.Fatalf("machine %s has no state (%v): %s", id, err, out)
	}
	return got.Machine.State.State
}
