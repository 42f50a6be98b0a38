//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
)

// configureScript makes udhcpc configure the address it is given, as a
// BMC's DHCP client does.
const configureScript = `#!/bin/sh
case "$1" in
  bound|renew) ip addr add "$ip/$subnet" dev "$interface" ;;
esac
exit 0
`

// BMCs plugged into the LAN take a DHCP lease from Debian's udhcpc, then
// serve Redfish on the leased address (HTTPS with a self-signed
// certificate, as from the factory). Slipway finds them without being told
// an address: each is registered with the first configured credentials it
// accepts and linked to its host by MAC, the machine its own NIC's lease
// made is forgotten, a BMC that accepts none of the credentials is listed
// with that error, and a netbooting host that answers no Redfish is not a BMC.
func TestBMCsThatTakeALeaseAreDiscovered(t *testing.T) {
	requireCommands(t, map[string]string{"udhcpc": "udhcpc", "curl": "curl"})
	lan := newLAN(t, "10.88.0.1/24")
	dir := t.TempDir()
	for name, pw := range map[string]string{"factory": "calvin", "site": "s1te-secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := serveReady(t, lan, lanBase+fmt.Sprintf(`
dhcp: {mode: full, range: {start: 10.88.0.100, end: 10.88.0.199}}
bmc:
  poll_interval: 1s
  discovery: {credentials: [factory, site], insecure_skip_verify: true}
bmc_credentials:
  factory: {username: root, password_file: %s}
  site: {username: root, password_file: %s}
`, filepath.Join(dir, "factory"), filepath.Join(dir, "site")))

	type plugged struct{ nic, hostMAC, password, ip string }
	bmcs := []*plugged{
		{nic: "02:bb:00:00:00:01", hostMAC: "02:aa:00:00:00:01", password: "s1te-secret"},
		{nic: "02:bb:00:00:00:02", hostMAC: "02:aa:00:00:00:02", password: "someone-elses"},
	}
	for i, b := range bmcs {
		b.ip = leaseAndServeRedfish(t, lan, fmt.Sprintf("bmc%d", i), b.nic, b.hostMAC, b.password)
	}
	host := newDHCPClient(t, lan, "host", "02:cc:00:00:00:01") // a netbooting host: no Redfish
	host.udhcpc(t, "-V", "PXEClient:Arch:00000:UNDI:002001")

	type bmcStatus struct {
		ID        string `json:"bmc_id"`
		Endpoint  string `json:"endpoint"`
		MachineID string `json:"machine_id"`
		Source    string `json:"source"`
		Reachable bool   `json:"reachable"`
		LastError string `json:"last_error"`
	}
	var list struct{ BMCs []bmcStatus }
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := lan.Server.Run(context.Background(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, lanURL+"/api/v1/bmcs")
		if err == nil && json.Unmarshal([]byte(out), &list) == nil && len(list.BMCs) == 2 &&
			list.BMCs[0].MachineID != "" && list.BMCs[1].LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BMCs listed: %+v (%v)\n%s", list.BMCs, err, a.logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	byEndpoint := map[string]bmcStatus{}
	for _, s := range list.BMCs {
		byEndpoint[s.Endpoint] = s
	}
	good, wrong := byEndpoint["https://"+bmcs[0].ip], byEndpoint["https://"+bmcs[1].ip]
	if good.Source != "discovered" || !good.Reachable || good.LastError != "" || good.MachineID != "mac-02aa00000001" {
		t.Errorf("the BMC with site credentials: %+v", good)
	}
	if !strings.Contains(wrong.LastError, `wrong credentials: the BMC refused user "root"`) {
		t.Errorf("the BMC that accepts none of the credentials: %+v", wrong)
	}
	// The BMC's own NIC is not a machine; the netbooting host is.
	for mac, want := range map[string]string{"02bb00000001": "404", "02cc00000001": "200"} {
		out, _ := lan.Server.Run(context.Background(), "curl", "-s", "-u", e2eUser+":"+e2ePassword, "-o", "/dev/null", "-w", "%{http_code}", lanURL+"/api/v1/machines/mac-"+mac)
		if out != want {
			t.Errorf("machine mac-%s: HTTP %s, want %s", mac, out, want)
		}
	}
}

// leaseAndServeRedfish plugs a BMC into the LAN: its NIC takes a lease
// with udhcpc, then an emulated BMC serves HTTPS on the leased address.
func leaseAndServeRedfish(t *testing.T, lan *testbed.LAN, name, nic, hostMAC, password string) string {
	t.Helper()
	c := newDHCPClient(t, lan, name, nic)
	if err := os.WriteFile(filepath.Join(c.dir, "configure"), []byte(configureScript), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := c.host.Run(ctx, "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-s", filepath.Join(c.dir, "configure")); err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	out, err := c.host.Run(ctx, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	fields := strings.Fields(out)
	if err != nil || len(fields) < 4 {
		t.Fatalf("the BMC's address: %v %q", err, out)
	}
	ip := strings.Split(fields[3], "/")[0]
	sc, _ := emulateBMCs(t, c.host.Command(context.Background(), slipwayBinary, "emulate-bmcs", "--addr", ip+":443", "--tls",
		"--user", "root", "--password", password, "--host-mac", hostMAC))
	if !sc.Scan() || sc.Text() != "https://"+ip+":443" {
		t.Fatalf("the emulated BMC said %q", sc.Text())
	}
	return ip
}
